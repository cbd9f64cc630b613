"""Admin site for tasks and the retry models.

Tasks (a planning model) are administered here because their rerun and
repair actions go through the retry services, behind a confirmation page
that asks for the reason. The retry models are projections written only by
the services (attempts, phases, native runs, retired ids, idempotent
responses), so here they are read-only: to change an attempt, rerun or
repair its task (actions on the task list)."""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from missioncontrol.errors import ServiceError
from missioncontrol.roles import OPERATOR, actor_name
from planning import services as planning_services
from planning.admin import ReadOnlyAdmin, ReadOnlyInline, ServiceAdmin, error_text
from planning.models import Agent, PlanningTask

from . import services as retry_services
from .models import Attempt, IdempotencyKey, NativeRun, PhaseOutcome, RetiredNativeId
from .selectors import current_attempts_prefetch, task_current_attempt

ACTION_TEMPLATE = "admin/missioncontrol/task_action.html"

# --- Tasks ------------------------------------------------------------------------------


class AttemptInline(ReadOnlyInline):
    model = Attempt
    fk_name = "task"
    ordering = ("-number",)
    fields = (
        "number",
        "kind",
        "status",
        "requested_by",
        "requested_at",
        "requested_assignee",
        "reason",
        "resume_phase",
        "native_task_id",
        "native_run_id",
        "failure_kind",
        "failure_phase",
        "superseded_at",
        "imported",
    )
    readonly_fields = fields
    verbose_name_plural = "attempts (newest first)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("requested_assignee")


class InconsistentFilter(admin.SimpleListFilter):
    title = "ledger check"
    parameter_name = "inconsistent"

    def lookups(self, request, model_admin):
        return (("yes", "inconsistent: waits for repair"), ("no", "consistent"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(inconsistent_since__isnull=False)
        if self.value() == "no":
            return queryset.filter(inconsistent_since__isnull=True)
        return queryset


class TaskForm(forms.ModelForm):
    class Meta:
        model = PlanningTask
        fields = ("slug", "title", "project", "procedure", "plan", "params", "assignee", "max_attempts")
        help_texts = {
            "assignee": "The default for the next attempt; attempts already requested keep their frozen assignee.",
            "max_attempts": "Retry budget. Left empty on a new task, the procedure's is used.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "max_attempts" in self.fields and self.instance.pk is None:
            self.fields["max_attempts"].required = False
        if "params" in self.fields:
            self.fields["params"].required = False

    def clean_params(self):
        params = self.cleaned_data.get("params")
        if params in (None, ""):
            return {}
        if not isinstance(params, dict):
            raise forms.ValidationError("Give a JSON object.")
        return params

    def clean_assignee(self):
        assignee = self.cleaned_data.get("assignee")
        if assignee is not None and "assignee" in self.changed_data and not assignee.active:
            raise forms.ValidationError(f"Agent {assignee.name} is not active.")
        return assignee

    def clean(self):
        cleaned = super().clean()
        plan, project = self.cleaned_data.get("plan"), self.cleaned_data.get("project")
        if plan is not None and project is not None and plan.project_id != project.id:
            self.add_error("plan", "The plan belongs to another project.")
        return cleaned


class RepairForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=retry_services.REASON_MAX_LENGTH,
        help_text="Kept in the ledger.",
    )
    assignee = forms.ModelChoiceField(
        queryset=Agent.objects.filter(active=True),
        to_field_name="name",
        required=False,
        help_text="Frozen on the new attempts. Empty: each task keeps its frozen assignee.",
    )


class RerunForm(RepairForm):
    override_budget = forms.BooleanField(required=False, help_text="Go past the retry budget of a task that spent it.")
    supersede_active = forms.BooleanField(
        required=False, help_text="Cancel and replace an attempt still launching or running."
    )
    # Made when the confirmation page is rendered: submitting the same page
    # twice (a double click, a resent POST) reruns the tasks once.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=200, required=False)

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("idempotency_key", str(uuid.uuid4()))
        super().__init__(*args, **kwargs)


@admin.register(PlanningTask)
class PlanningTaskAdmin(ServiceAdmin):
    edit_role = OPERATOR
    form = TaskForm
    list_display = (
        "slug",
        "title",
        "status",
        "ledger_check",
        "current_attempt",
        "attempts",
        "assignee",
        "project",
        "procedure",
        "updated_at",
    )
    list_select_related = ("project", "procedure", "plan", "assignee")
    list_filter = ("status", InconsistentFilter, "procedure", "project")
    search_fields = ("slug", "title")
    date_hierarchy = "updated_at"
    inlines = (AttemptInline,)
    actions = ("rerun_tasks", "repair_tasks")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related(current_attempts_prefetch())

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("slug", "title", "project", "procedure", "plan", "params", "assignee", "max_attempts")
        return (
            "slug",
            "title",
            "project",
            "procedure",
            "plan",
            "status",
            "current_attempt",
            "attempt_count",
            "max_attempts",
            "assignee",
            "params",
            "inconsistent_since",
            "inconsistency",
            "created_at",
            "updated_at",
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        # Identity and every projection are read-only; the status only moves
        # through launch, rerun, repair and cancel.
        return (
            "slug",
            "project",
            "procedure",
            "plan",
            "status",
            "current_attempt",
            "attempt_count",
            "inconsistent_since",
            "inconsistency",
            "created_at",
            "updated_at",
        )

    @admin.display(description="current attempt")
    def current_attempt(self, obj):
        attempt = task_current_attempt(obj)
        if attempt is None:
            return "—"
        assignee = attempt.requested_assignee.name if attempt.requested_assignee is not None else "nobody"
        return f"#{attempt.number} {attempt.kind}, {attempt.status}, for {assignee}"

    @admin.display(description="attempts")
    def attempts(self, obj):
        return f"{obj.attempt_count} of {obj.max_attempts}"

    @admin.display(description="ledger", boolean=True)
    def ledger_check(self, obj):
        return obj.inconsistent_since is None

    def save_via_service(self, *, actor, obj, form, change):
        if not change:
            return planning_services.task_create(
                slug=obj.slug,
                title=obj.title,
                project=obj.project.slug,
                procedure=obj.procedure.slug,
                plan=obj.plan_id,
                params=obj.params or {},
                assignee=obj.assignee.name if obj.assignee else None,
                max_attempts=form.cleaned_data.get("max_attempts"),
                actor=actor,
            )
        changes = {}
        for field in ("title", "params", "max_attempts"):
            if field in form.changed_data:
                changes[field] = form.cleaned_data[field]
        if "assignee" in form.changed_data:
            changes["assignee"] = obj.assignee.name if obj.assignee else None
        return planning_services.task_update(slug=obj.slug, actor=actor, **changes)

    # --- Rerun and repair: an intermediate page asks for the reason ---------------

    @admin.action(description="Rerun selected tasks…", permissions=["operate"])
    def rerun_tasks(self, request, queryset):
        return self._task_action(request, queryset, kind="rerun")

    @admin.action(description="Repair selected tasks…", permissions=["operate"])
    def repair_tasks(self, request, queryset):
        return self._task_action(request, queryset, kind="repair")

    def _task_action(self, request, queryset, *, kind: str):
        tasks = list(queryset.select_related("assignee").order_by("slug"))
        form_class = RerunForm if kind == "rerun" else RepairForm
        refusals: dict[str, list[str]] = {}
        if "apply" in request.POST:
            form = form_class(request.POST)
            if form.is_valid():
                if kind == "repair":
                    self._repair(request, tasks, data=form.cleaned_data)
                    return None  # back to the changelist, with one message per task
                try:
                    self._rerun(request, tasks, data=form.cleaned_data)
                    return None
                except ServiceError as exc:
                    # All or nothing: nothing was rerun. The page stays, with
                    # each refusal beside its task, so the operator can go
                    # back and leave those out or tick an option.
                    form.add_error(None, exc.detail)
                    refusals = exc.errors or {}
        else:
            form = form_class()
        previews = {p.slug: p for p in self._previews(kind, tasks, form)}
        rows = [
            {
                "task": task,
                "plan": previews[task.slug].summary(),
                "refused": " ".join(refusals.get(task.slug, [])),
            }
            for task in tasks
        ]
        # Refusals of the request as a whole (too many tasks, an unknown
        # assignee) are not about one task.
        shown = {t.slug for t in tasks}
        for key, msgs in refusals.items():
            if key not in shown:
                form.add_error(None, f"{key}: {' '.join(msgs)}")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"{kind.title()} {len(tasks)} task(s)",
            "kind": kind,
            "rows": rows,
            "form": form,
            "action": f"{kind}_tasks",
            "selected": [t.pk for t in tasks],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, ACTION_TEMPLATE, context)

    @staticmethod
    def _previews(kind: str, tasks: list[PlanningTask], form) -> list:
        """What the action would do per task: the action's own decision,
        for the options the operator gave (when the form is valid)."""
        data = form.cleaned_data if form.is_bound and form.is_valid() else {}
        assignee = data.get("assignee") or None
        slugs = [t.slug for t in tasks]
        if kind == "repair":
            return retry_services.task_repair_previews(slugs=slugs, assignee=assignee)
        return retry_services.task_rerun_previews(
            slugs=slugs,
            assignee=assignee,
            override_budget=bool(data.get("override_budget")),
            supersede_active=bool(data.get("supersede_active")),
        )

    def _rerun(self, request, tasks: list[PlanningTask], *, data: dict) -> None:
        """All the selected tasks in one transaction (``task_rerun_many``),
        as the API's bulk rerun and the plans page do: a selection is rerun
        whole or not at all, never half."""
        results = retry_services.task_rerun_many(
            slugs=[t.slug for t in tasks],
            actor=actor_name(request.user),
            reason=data["reason"],
            assignee=data["assignee"].name if data.get("assignee") else None,
            override_budget=data["override_budget"],
            supersede_active=data["supersede_active"],
            idempotency_key=data["idempotency_key"] or None,
        )
        verb = "already rerun by this page:" if results[0].replayed else "rerun started"
        for result in results:
            self._started(request, result.attempt, verb)

    def _repair(self, request, tasks: list[PlanningTask], *, data: dict) -> None:
        """One repair per task, each its own transaction with its own
        message: a repair is a deliberate, per-task correction (rule 9)."""
        actor = actor_name(request.user)
        assignee = data["assignee"].name if data.get("assignee") else None
        for task in tasks:
            try:
                result = retry_services.task_repair(
                    slug=task.slug, actor=actor, reason=data["reason"], assignee=assignee
                )
            except ServiceError as exc:
                self.message_user(request, f"{task.slug}: not repaired: {exc.code}: {error_text(exc)}", messages.ERROR)
                continue
            self._started(request, result.attempt, "repair started")

    def _started(self, request, attempt: Attempt, verb: str) -> None:
        frozen = attempt.requested_assignee.name if attempt.requested_assignee is not None else "nobody"
        self.message_user(
            request,
            f"{attempt.task.slug}: {verb} attempt #{attempt.number} ({attempt.id}) for {frozen}.",
            messages.SUCCESS,
        )


# --- Attempts, phases, native runs, retired ids, idempotent responses ---------------------


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
        "__str__",
        "task",
        "number",
        "kind",
        "status",
        "is_current",
        "requested_by",
        "requested_at",
        "requested_assignee",
        "native_run_id",
        "imported",
    )
    list_select_related = ("task", "requested_assignee")
    list_filter = ("status", "kind", CurrentFilter, "imported")
    search_fields = ("task__slug", "native_task_id", "native_run_id", "requested_by")
    date_hierarchy = "requested_at"
    show_full_result_count = False
    inlines = (PhaseOutcomeInline, NativeRunInline)
    fields = (
        "id",
        "task",
        "number",
        "kind",
        "status",
        "requested_by",
        "requested_at",
        "reason",
        "requested_assignee",
        "resume_phase",
        "superseded_at",
        "superseded_by",
        "native_task_id",
        "native_run_id",
        "failure_kind",
        "failure_phase",
        "failure_message",
        "started_at",
        "finished_at",
        "last_heartbeat_at",
        "imported",
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
        "__str__",
        "native_task_id",
        "task",
        "status",
        "binding",
        "binding_reason",
        "attempt",
        "created_at",
        "last_seen_at",
    )
    list_select_related = ("task", "attempt")
    list_filter = ("binding", "status", "executor", "binding_reason")
    search_fields = ("native_run_id", "native_task_id", "task_slug")
    show_full_result_count = False
    fields = (
        "executor",
        "native_task_id",
        "native_run_id",
        "task_slug",
        "task",
        "claimed_attempt_id",
        "status",
        "phase",
        "created_at",
        "first_seen_at",
        "last_seen_at",
        "message",
        "binding",
        "attempt",
        "binding_reason",
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
