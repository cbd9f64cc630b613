"""Admin site for the planning models: read-mostly, and every change goes
through the same services as the API and the dashboard, so the ledger
records it. Status fields are never form fields: a crafted POST cannot set
them. The ledger itself is read-only (no add, change or delete). Tasks are
administered in ``retries.admin``: their rerun and repair actions need the
attempts."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect

from missioncontrol.errors import ServiceError
from missioncontrol.roles import ADMIN, OPERATOR, VIEWER, actor_name, has_role

from . import services
from .models import Agent, Event, Plan, Procedure, Project, TaskStatusCount


def error_text(exc: ServiceError) -> str:
    if not exc.errors:
        return exc.detail
    fields = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.errors.items())
    return f"{exc.detail} {fields}"


class RoleAdmin(admin.ModelAdmin):
    """Admin permissions follow the roles of ``missioncontrol.roles``, as in
    the API: every role reads; ``edit_role`` adds and changes. A staff user
    in no role sees nothing. Nothing is deleted from the admin: rows are
    referenced by the ledger."""

    edit_role: str | None = None

    def has_module_permission(self, request):
        return has_role(request.user, VIEWER)

    def has_view_permission(self, request, obj=None):
        return has_role(request.user, VIEWER)

    def has_add_permission(self, request):
        return self.edit_role is not None and has_role(request.user, self.edit_role)

    def has_change_permission(self, request, obj=None):
        return self.edit_role is not None and has_role(request.user, self.edit_role)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_operate_permission(self, request):
        return has_role(request.user, OPERATOR)


class ServiceAdmin(RoleAdmin):
    """Saves through ``save_via_service`` instead of ``obj.save()``."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceError as exc:
            # The form checks what it can; a service refusal that slipped past it
            # (e.g. a concurrent change) rolled everything back: say so and reload.
            self.message_user(request, f"Nothing was saved: {error_text(exc)}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        saved = self.save_via_service(actor=actor_name(request.user), obj=obj, form=form, change=change)
        # The admin goes on with ``obj`` (log entry, redirect): give it the saved row's key.
        obj.pk = saved.pk

    def save_via_service(self, *, actor: str, obj, form, change: bool):
        raise NotImplementedError

    def delete_model(self, request, obj):  # pragma: no cover - delete permission is always refused
        raise ServiceError("not_allowed", "Nothing is deleted from the admin.")


class ReadOnlyAdmin(RoleAdmin):
    """Rows only services write: no add, change or delete, for anyone."""

    edit_role = None


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_view_permission(self, request, obj=None):
        return has_role(request.user, VIEWER)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- Agents, projects, procedures ---------------------------------------------------


@admin.register(Agent)
class AgentAdmin(ServiceAdmin):
    edit_role = ADMIN
    list_display = ("name", "kind", "active")
    list_filter = ("kind", "active")
    search_fields = ("name",)

    def get_readonly_fields(self, request, obj=None):
        return ("name",) if obj is not None else ()

    def save_via_service(self, *, actor, obj, form, change):
        if not change:
            return services.agent_create(name=obj.name, kind=obj.kind, active=obj.active, actor=actor)
        changes = {f: form.cleaned_data[f] for f in form.changed_data if f in ("kind", "active")}
        return services.agent_update(name=obj.name, actor=actor, **changes)


@admin.register(Project)
class ProjectAdmin(ServiceAdmin):
    edit_role = ADMIN
    list_display = ("slug", "name", "owner")
    list_select_related = ("owner",)
    list_filter = ("owner",)
    search_fields = ("slug", "name", "owner__name")
    autocomplete_fields = ("owner",)

    def get_readonly_fields(self, request, obj=None):
        return ("slug",) if obj is not None else ()

    def save_via_service(self, *, actor, obj, form, change):
        if not change:
            return services.project_create(slug=obj.slug, name=obj.name, owner=obj.owner.name, actor=actor)
        changes = {}
        if "name" in form.changed_data:
            changes["name"] = obj.name
        if "owner" in form.changed_data:
            # Future defaults only: attempts keep their frozen assignee (rule 3).
            changes["owner"] = obj.owner.name
        return services.project_update(slug=obj.slug, actor=actor, **changes)


class ProcedureForm(forms.ModelForm):
    class Meta:
        model = Procedure
        fields = ("slug", "name", "phases", "executor", "max_attempts", "stall_timeout_seconds")

    def clean_phases(self):
        phases = self.cleaned_data["phases"]
        if (
            not isinstance(phases, list)
            or not phases
            or not all(isinstance(p, str) and p.strip() for p in phases)
            or len(set(phases)) != len(phases)
        ):
            raise forms.ValidationError(
                'Give a non-empty JSON list of distinct phase names, e.g. ["preflight", "execute"].'
            )
        return phases


@admin.register(Procedure)
class ProcedureAdmin(ServiceAdmin):
    edit_role = ADMIN
    form = ProcedureForm
    list_display = ("slug", "name", "executor", "phase_list", "max_attempts", "stall_timeout_seconds")
    list_filter = ("executor",)
    search_fields = ("slug", "name")

    @admin.display(description="phases")
    def phase_list(self, obj):
        return " → ".join(obj.phases)

    def get_readonly_fields(self, request, obj=None):
        return ("slug",) if obj is not None else ()

    def save_via_service(self, *, actor, obj, form, change):
        fields = ("name", "phases", "executor", "max_attempts", "stall_timeout_seconds")
        if not change:
            return services.procedure_create(slug=obj.slug, actor=actor, **{f: getattr(obj, f) for f in fields})
        changes = {f: getattr(obj, f) for f in form.changed_data if f in fields}
        return services.procedure_update(slug=obj.slug, actor=actor, **changes)


# --- Plans ----------------------------------------------------------------------------


@admin.register(Plan)
class PlanAdmin(ServiceAdmin):
    edit_role = OPERATOR
    list_display = ("name", "project", "status", "on_error", "paused_at", "created_at")
    list_select_related = ("project",)
    list_filter = ("status", "on_error", "project")
    search_fields = ("name", "project__slug", "=id")
    date_hierarchy = "created_at"
    actions = ("resume_plans",)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "project", "on_error")
        return ("id", "name", "project", "on_error", "status", "paused_at", "created_at", "updated_at")

    def get_readonly_fields(self, request, obj=None):
        # A plan has no edit service: once created, everything is a projection.
        if obj is None:
            return ()
        return ("id", "name", "project", "on_error", "status", "paused_at", "created_at", "updated_at")

    def save_via_service(self, *, actor, obj, form, change):
        if change:
            return obj
        return services.plan_create(name=obj.name, project=obj.project.slug, on_error=obj.on_error, actor=actor)

    @admin.action(description="Resume selected paused plans", permissions=["operate"])
    def resume_plans(self, request, queryset):
        actor = actor_name(request.user)
        for plan in queryset.order_by("name"):
            if plan.paused_at is None:
                self.message_user(request, f"{plan.name}: not paused; nothing to do.", messages.INFO)
                continue
            services.plan_resume(plan_id=plan.id, actor=actor)
            self.message_user(request, f"{plan.name}: resumed.", messages.SUCCESS)


# --- The ledger -----------------------------------------------------------------------


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("id", "at", "type", "actor", "task", "plan", "attempt_id")
    list_select_related = ("task", "plan")
    list_filter = ("type",)
    search_fields = ("task__slug", "type", "actor")
    date_hierarchy = "at"
    # The ledger only grows: counting it all for every page is not worth it.
    show_full_result_count = False
    fields = ("id", "at", "type", "actor", "task", "plan", "attempt_id", "data")
    readonly_fields = fields


@admin.register(TaskStatusCount)
class TaskStatusCountAdmin(ReadOnlyAdmin):
    """The board's per-status counts, written by database triggers and
    folded by reconciliation; ``verify_integrity --repair`` rebuilds them."""

    list_display = ("id", "status", "n")
    list_filter = ("status",)
    fields = ("id", "status", "n")
    readonly_fields = fields
