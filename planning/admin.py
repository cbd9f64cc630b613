"""Admin site for the planning models: read-mostly, and every change goes
through the same services as the API and the dashboard, so the ledger
records it. Status fields are never form fields: a crafted POST cannot set
them. The ledger itself is read-only (no add, change or delete)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse

from missioncontrol.errors import ServiceError
from missioncontrol.roles import ADMIN, OPERATOR, VIEWER, actor_name, has_role
from retries import services as retry_services
from retries.models import Attempt

from . import services
from .models import Agent, Event, Plan, PlanningTask, Procedure, Project, TaskStatusCount
from .selectors import current_attempts_prefetch, task_current_attempt
from .web.forms import new_idempotency_key

ACTION_TEMPLATE = "admin/missioncontrol/task_action.html"


def _error_text(exc: ServiceError) -> str:
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
            self.message_user(request, f"Nothing was saved: {_error_text(exc)}", messages.ERROR)
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
            raise forms.ValidationError('Give a non-empty JSON list of distinct phase names, e.g. ["preflight", "execute"].')
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


# --- Tasks ----------------------------------------------------------------------------


class AttemptInline(ReadOnlyInline):
    model = Attempt
    fk_name = "task"
    ordering = ("-number",)
    fields = (
        "number", "kind", "status", "requested_by", "requested_at", "requested_assignee", "reason",
        "resume_phase", "native_task_id", "native_run_id", "failure_kind", "failure_phase",
        "superseded_at", "imported",
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
        plan, project = cleaned.get("plan"), cleaned.get("project")
        if plan is not None and project is not None and plan.project_id != project.id:
            self.add_error("plan", "The plan belongs to another project.")
        return cleaned


class RepairForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), help_text="Kept in the ledger.")
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
        kwargs["initial"].setdefault("idempotency_key", new_idempotency_key())
        super().__init__(*args, **kwargs)


@admin.register(PlanningTask)
class PlanningTaskAdmin(ServiceAdmin):
    edit_role = OPERATOR
    form = TaskForm
    list_display = (
        "slug", "title", "status", "ledger_check", "current_attempt", "attempts", "assignee", "project",
        "procedure", "updated_at",
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
            "slug", "title", "project", "procedure", "plan", "status", "current_attempt", "attempt_count",
            "max_attempts", "assignee", "params", "inconsistent_since", "inconsistency", "created_at", "updated_at",
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        # Identity and every projection are read-only; the status only moves
        # through launch, rerun, repair and cancel.
        return (
            "slug", "project", "procedure", "plan", "status", "current_attempt", "attempt_count",
            "inconsistent_since", "inconsistency", "created_at", "updated_at",
        )

    @admin.display(description="current attempt")
    def current_attempt(self, obj):
        attempt = task_current_attempt(obj)
        if attempt is None:
            return "—"
        assignee = attempt.requested_assignee.name if attempt.requested_assignee_id else "nobody"
        return f"#{attempt.number} {attempt.kind}, {attempt.status}, for {assignee}"

    @admin.display(description="attempts")
    def attempts(self, obj):
        return f"{obj.attempt_count} of {obj.max_attempts}"

    @admin.display(description="ledger", boolean=True)
    def ledger_check(self, obj):
        return obj.inconsistent_since is None

    def save_via_service(self, *, actor, obj, form, change):
        if not change:
            return services.task_create(
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
        return services.task_update(slug=obj.slug, actor=actor, **changes)

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
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
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
            slugs=slugs, assignee=assignee, override_budget=bool(data.get("override_budget")),
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
                result = retry_services.task_repair(slug=task.slug, actor=actor, reason=data["reason"], assignee=assignee)
            except ServiceError as exc:
                self.message_user(request, f"{task.slug}: not repaired: {exc.code}: {_error_text(exc)}", messages.ERROR)
                continue
            self._started(request, result.attempt, "repair started")

    def _started(self, request, attempt: Attempt, verb: str) -> None:
        frozen = attempt.requested_assignee.name if attempt.requested_assignee_id else "nobody"
        self.message_user(
            request, f"{attempt.task.slug}: {verb} attempt #{attempt.number} ({attempt.id}) for {frozen}.", messages.SUCCESS
        )


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
