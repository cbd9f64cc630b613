"""Admin site for the retry models. All of them are projections written only
by the services (attempts, phases, native runs, retired ids, idempotent
responses), so here they are read-only: to change an attempt, rerun or
repair its task (actions on the task list)."""

from __future__ import annotations

from django.contrib import admin

from planning.admin import ReadOnlyAdmin, ReadOnlyInline

from .models import Attempt, IdempotencyKey, NativeRun, PhaseOutcome, RetiredNativeId


class CurrentFilter(admin.SimpleListFilter):
    title = "current or superseded"
    parameter_name = "current"

    def lookups(self, request, model_admin):
        return (("yes", "current"), ("no", "superseded"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(superseded_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(superseded_at__isnull=False)
        return queryset


class PhaseOutcomeInline(ReadOnlyInline):
    model = PhaseOutcome
    fields = ("phase", "outcome", "at", "message")
    readonly_fields = fields


class NativeRunInline(ReadOnlyInline):
    model = NativeRun
    fk_name = "attempt"
    fields = ("executor", "native_task_id", "native_run_id", "status", "binding", "binding_reason", "last_seen_at")
    readonly_fields = fields


@admin.register(Attempt)
class AttemptAdmin(ReadOnlyAdmin):
    list_display = (
        "__str__", "task", "number", "kind", "status", "is_current", "requested_by", "requested_at",
        "requested_assignee", "native_run_id", "imported",
    )
    list_select_related = ("task", "requested_assignee")
    list_filter = ("status", "kind", CurrentFilter, "imported")
    search_fields = ("task__slug", "native_task_id", "native_run_id", "requested_by")
    date_hierarchy = "requested_at"
    show_full_result_count = False
    inlines = (PhaseOutcomeInline, NativeRunInline)
    fields = (
        "id", "task", "number", "kind", "status", "requested_by", "requested_at", "reason", "requested_assignee",
        "resume_phase", "superseded_at", "superseded_by", "native_task_id", "native_run_id", "failure_kind",
        "failure_phase", "failure_message", "started_at", "finished_at", "last_heartbeat_at", "imported",
    )
    readonly_fields = fields

    @admin.display(description="current", boolean=True)
    def is_current(self, obj):
        return obj.superseded_at is None


@admin.register(PhaseOutcome)
class PhaseOutcomeAdmin(ReadOnlyAdmin):
    list_display = ("attempt", "phase", "outcome", "at")
    list_select_related = ("attempt",)
    list_filter = ("outcome", "phase")
    search_fields = ("attempt__task__slug", "phase")
    show_full_result_count = False
    fields = ("attempt", "phase", "outcome", "at", "message")
    readonly_fields = fields


@admin.register(NativeRun)
class NativeRunAdmin(ReadOnlyAdmin):
    list_display = (
        "__str__", "native_task_id", "task", "status", "binding", "binding_reason", "attempt", "created_at",
        "last_seen_at",
    )
    list_select_related = ("task", "attempt")
    list_filter = ("binding", "status", "executor", "binding_reason")
    search_fields = ("native_run_id", "native_task_id", "task_slug")
    show_full_result_count = False
    fields = (
        "executor", "native_task_id", "native_run_id", "task_slug", "task", "claimed_attempt_id", "status", "phase",
        "created_at", "first_seen_at", "last_seen_at", "message", "binding", "attempt", "binding_reason",
    )
    readonly_fields = fields


@admin.register(RetiredNativeId)
class RetiredNativeIdAdmin(ReadOnlyAdmin):
    list_display = ("value", "kind", "task", "attempt", "retired_at")
    list_select_related = ("task", "attempt")
    list_filter = ("kind",)
    search_fields = ("value", "task__slug")
    show_full_result_count = False
    fields = ("kind", "value", "task", "attempt", "retired_at")
    readonly_fields = fields


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdmin):
    list_display = ("key", "task", "attempt", "response_status", "created_at")
    list_select_related = ("task", "attempt")
    search_fields = ("key", "task__slug")
    fields = ("task", "key", "fingerprint", "attempt", "response_status", "response_body", "created_at")
    readonly_fields = fields
