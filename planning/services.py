"""State changes of the planning domain. Each function is one transaction
that locks what it changes, re-checks, writes only changed fields and appends
its ledger events. Interfaces call these and nothing else."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from missioncontrol.errors import invalid, not_found

from .decisions import plan_pause, plan_status
from .ledger import ledger_append
from .models import Agent, Plan, PlanningTask, Procedure, Project, TaskStatusCount
from .selectors import task_counts_by_status

UNSET: Any = object()


def _validated(instance, *, exclude: list[str] | None = None) -> None:
    """Model validation as field errors in the one error shape (rule 8)."""
    try:
        instance.full_clean(exclude=exclude, validate_constraints=True)
    except ValidationError as exc:
        raise invalid({field: [str(m) for m in msgs] for field, msgs in exc.message_dict.items()}) from exc


def _changed(instance, changes: dict[str, Any]) -> list[str]:
    fields = []
    for field, value in changes.items():
        if value is UNSET or getattr(instance, field) == value:
            continue
        setattr(instance, field, value)
        fields.append(field)
    return fields


def agent_get(*, name: str, active_only: bool = False) -> Agent:
    try:
        agent = Agent.objects.get(name=name)
    except Agent.DoesNotExist:
        raise invalid({"assignee": [f"No agent named {name!r}."]}) from None
    if active_only and not agent.active:
        raise invalid({"assignee": [f"Agent {name!r} is not active."]})
    return agent


# --- Agents, projects, procedures -------------------------------------------------


def agent_create(*, name: str, kind: str = Agent.Kind.AI, active: bool = True, actor: str) -> Agent:
    with transaction.atomic():
        agent = Agent(name=name, kind=kind, active=active)
        _validated(agent)
        agent.save()
        ledger_append(type="agent.created", actor=actor, data={"name": name, "kind": kind, "active": active})
    return agent


def agent_update(*, name: str, kind: str = UNSET, active: bool = UNSET, actor: str) -> Agent:
    with transaction.atomic():
        agent = Agent.objects.select_for_update().filter(name=name).first()
        if agent is None:
            raise not_found("agent", name)
        before = {"kind": agent.kind, "active": agent.active}
        fields = _changed(agent, {"kind": kind, "active": active})
        if fields:
            _validated(agent)
            agent.save(update_fields=fields)
            ledger_append(
                type="agent.updated",
                actor=actor,
                data={"name": name, "changes": {f: [before[f], getattr(agent, f)] for f in fields}},
            )
    return agent


def project_create(*, slug: str, name: str, owner: str, actor: str) -> Project:
    with transaction.atomic():
        project = Project(slug=slug, name=name, owner=_owner(owner))
        _validated(project)
        project.save()
        ledger_append(type="project.created", actor=actor, data={"slug": slug, "owner": owner})
    return project


def _owner(name: str) -> Agent:
    try:
        return Agent.objects.get(name=name)
    except Agent.DoesNotExist:
        raise invalid({"owner": [f"No agent named {name!r}."]}) from None


def project_update(*, slug: str, name: str = UNSET, owner: str = UNSET, actor: str) -> Project:
    """Changing the owner changes future defaults only: attempts keep their
    frozen requested assignee (rule 3)."""
    with transaction.atomic():
        project = Project.objects.select_for_update().select_related("owner").filter(slug=slug).first()
        if project is None:
            raise not_found("project", slug)
        old_owner = project.owner.name
        changes: dict[str, Any] = {"name": name}
        if owner is not UNSET:
            changes["owner"] = _owner(owner)
        fields = _changed(project, changes)
        if fields:
            _validated(project)
            project.save(update_fields=fields)
        if "owner" in fields:
            ledger_append(
                type="project.owner_changed", actor=actor, data={"project": slug, "from": old_owner, "to": owner}
            )
    return project


def procedure_create(
    *,
    slug: str,
    name: str,
    phases: list[str],
    executor: str = Procedure.Executor.EXTERNAL,
    max_attempts: int = 3,
    stall_timeout_seconds: int = 300,
    actor: str,
) -> Procedure:
    _check_phases(phases)
    with transaction.atomic():
        procedure = Procedure(
            slug=slug,
            name=name,
            phases=list(phases),
            executor=executor,
            max_attempts=max_attempts,
            stall_timeout_seconds=stall_timeout_seconds,
        )
        _validated(procedure)
        procedure.save()
        ledger_append(type="procedure.created", actor=actor, data={"slug": slug, "phases": phases})
    return procedure


def _check_phases(phases: Any) -> None:
    if (
        not isinstance(phases, list)
        or not phases
        or not all(isinstance(p, str) and p.strip() for p in phases)
        or len(set(phases)) != len(phases)
    ):
        raise invalid({"phases": ["Give a non-empty list of distinct phase names."]})


def procedure_update(*, slug: str, actor: str, **changes: Any) -> Procedure:
    allowed = {"name", "phases", "executor", "max_attempts", "stall_timeout_seconds"}
    unknown = set(changes) - allowed
    if unknown:
        raise invalid({f: ["This field cannot be changed."] for f in sorted(unknown)})
    if "phases" in changes:
        _check_phases(changes["phases"])
    with transaction.atomic():
        procedure = Procedure.objects.select_for_update().filter(slug=slug).first()
        if procedure is None:
            raise not_found("procedure", slug)
        fields = _changed(procedure, changes)
        if fields:
            _validated(procedure)
            procedure.save(update_fields=fields)
            ledger_append(type="procedure.updated", actor=actor, data={"slug": slug, "fields": sorted(fields)})
    return procedure


# --- Plans ------------------------------------------------------------------------


def plan_create(*, name: str, project: str, on_error: str = Plan.OnError.CONTINUE, actor: str) -> Plan:
    with transaction.atomic():
        project_obj = Project.objects.filter(slug=project).first()
        if project_obj is None:
            raise invalid({"project": [f"No project named {project!r}."]})
        plan = Plan(name=name, project=project_obj, on_error=on_error)
        _validated(plan)
        plan.save()
        ledger_append(type="plan.created", actor=actor, plan_id=plan.id, data={"name": name, "on_error": on_error})
    return plan


def plan_refresh(*, plan_id: uuid.UUID, actor: str = "system", failure_seen: bool = False) -> Plan | None:
    """Recompute a plan's status from its tasks' committed statuses.

    The plan row is locked last (after any task, attempt and native run rows
    the caller holds) and the counts are read after the lock is taken, so
    concurrent sibling updates are serialized here and the last writer always
    sees every earlier commit: a stale snapshot can never be written back
    (seed 002). ``failure_seen`` says a task of the plan just failed: with
    ``on_error=pause`` that pauses the plan, until an operator resumes it."""
    with transaction.atomic():
        plan = Plan.objects.select_for_update().filter(id=plan_id).first()
        if plan is None:
            return None
        counts = dict(
            PlanningTask.objects.filter(plan_id=plan_id).values_list("status").annotate(n=Count("id")).order_by()
        )
        fields: list[str] = []
        if plan_pause(on_error=plan.on_error, failure_seen=failure_seen, paused=plan.paused_at is not None):
            plan.paused_at = timezone.now()
            fields.append("paused_at")
            ledger_append(
                type="plan.paused",
                actor=actor,
                plan_id=plan.id,
                data={"counts": counts, "reason": "a task failed and the plan's on_error is pause"},
            )
        decided = plan_status(counts, paused=plan.paused_at is not None)
        if decided.status != plan.status:
            ledger_append(
                type="plan.status_changed",
                actor=actor,
                plan_id=plan.id,
                data={"from": plan.status, "status": decided.status, "counts": counts, "reason": decided.reason},
            )
            plan.status = decided.status
            fields.append("status")
        if fields:
            plan.save(update_fields=[*fields, "updated_at"])
    return plan


def plan_resume(*, plan_id: uuid.UUID, actor: str) -> Plan:
    """An operator lifts an on_error pause; launches and retries go on."""
    with transaction.atomic():
        plan = Plan.objects.select_for_update().filter(id=plan_id).first()
        if plan is None:
            raise not_found("plan", str(plan_id))
        if plan.paused_at is None:
            return plan
        plan.paused_at = None
        plan.save(update_fields=["paused_at", "updated_at"])
        ledger_append(type="plan.resumed", actor=actor, plan_id=plan.id)
    refreshed = plan_refresh(plan_id=plan_id, actor=actor)
    if refreshed is None:  # deleted since the commit above
        raise not_found("plan", str(plan_id))
    return refreshed


# --- Tasks ------------------------------------------------------------------------


def task_create(
    *,
    slug: str,
    title: str,
    project: str,
    procedure: str,
    plan: uuid.UUID | str | None = None,
    params: dict | None = None,
    assignee: str | None = None,
    max_attempts: int | None = None,
    actor: str,
) -> PlanningTask:
    errors: dict[str, list[str]] = {}
    project_obj = Project.objects.select_related("owner").filter(slug=project).first()
    if project_obj is None:
        errors["project"] = [f"No project named {project!r}."]
    procedure_obj = Procedure.objects.filter(slug=procedure).first()
    if procedure_obj is None:
        errors["procedure"] = [f"No procedure named {procedure!r}."]
    plan_obj = None
    if plan is not None:
        try:
            plan_obj = Plan.objects.filter(id=plan).first()
        except ValidationError:
            plan_obj = None
        if plan_obj is None:
            errors["plan"] = [f"No plan with id {plan!s}."]
        elif project_obj is not None and plan_obj.project_id != project_obj.id:
            errors["plan"] = ["The plan belongs to another project."]
    assignee_obj = None
    if assignee is not None:
        assignee_obj = Agent.objects.filter(name=assignee).first()
        if assignee_obj is None:
            errors["assignee"] = [f"No agent named {assignee!r}."]
        elif not assignee_obj.active:
            errors["assignee"] = [f"Agent {assignee!r} is not active."]
    if params is not None and not isinstance(params, dict):
        errors["params"] = ["Give a JSON object."]
    if errors or project_obj is None or procedure_obj is None:
        raise invalid(errors)
    # A new task with no assignee gets the project owner.
    assigned = assignee_obj or project_obj.owner
    with transaction.atomic():
        task = PlanningTask(
            slug=slug,
            title=title,
            project=project_obj,
            procedure=procedure_obj,
            plan=plan_obj,
            params=params or {},
            assignee=assigned,
            max_attempts=max_attempts if max_attempts is not None else procedure_obj.max_attempts,
        )
        _validated(task)
        task.save()
        ledger_append(
            type="task.created",
            actor=actor,
            task_id=task.id,
            plan_id=task.plan_id,
            data={"slug": slug, "status": task.status, "assignee": assigned.name},
        )
        if task.plan_id:
            plan_refresh(plan_id=task.plan_id, actor=actor)
    return task


def task_update(
    *,
    slug: str,
    title: str = UNSET,
    params: dict = UNSET,
    assignee: str | None = UNSET,
    max_attempts: int = UNSET,
    actor: str,
) -> PlanningTask:
    """Edit a task's own fields. The assignee change is a ledger fact; it
    does not touch any attempt's frozen requested assignee."""
    changes: dict[str, Any] = {"title": title, "params": params, "max_attempts": max_attempts}
    if params is not UNSET and not isinstance(params, dict):
        raise invalid({"params": ["Give a JSON object."]})
    if assignee is not UNSET:
        changes["assignee"] = None if assignee is None else agent_get(name=assignee, active_only=True)
    with transaction.atomic():
        task = PlanningTask.objects.select_for_update(of=("self",)).select_related("assignee").filter(slug=slug).first()
        if task is None:
            raise not_found("task", slug)
        old_assignee = task.assignee.name if task.assignee else None
        fields = _changed(task, changes)
        if not fields:
            return task
        _validated(task)
        task.save(update_fields=[*fields, "updated_at"])
        if "assignee" in fields:
            ledger_append(
                type="task.assignee_changed",
                actor=actor,
                task_id=task.id,
                data={"from": old_assignee, "to": task.assignee.name if task.assignee else None},
            )
        other = [f for f in fields if f != "assignee"]
        if other:
            ledger_append(type="task.updated", actor=actor, task_id=task.id, data={"fields": sorted(other)})
    return task


def task_status_set(task: PlanningTask, status: str, *, actor: str, data: dict | None = None) -> list[str]:
    """Move a locked task to ``status`` and append the fact. Returns the
    fields to save; an unchanged status is a no-op. Only services call this."""
    if task.status == status:
        return []
    old = task.status
    task.status = status
    ledger_append(
        type="task.status_changed",
        actor=actor,
        task_id=task.id,
        plan_id=task.plan_id,
        data={"from": old, "status": status, **(data or {})},
    )
    return ["status"]


def task_clear_inconsistency_fields(task: PlanningTask) -> list[str]:
    if task.inconsistent_since is None and not task.inconsistency:
        return []
    task.inconsistent_since = None
    task.inconsistency = ""
    return ["inconsistent_since", "inconsistency"]


def task_mark_inconsistent(*, task_id: int, problems: list[str], actor: str = "system") -> bool:
    """Flag a task whose rows disagree with the ledger; reconciliation will
    not schedule it until an explicit repair clears the flag (rule 7)."""
    with transaction.atomic():
        task = PlanningTask.objects.select_for_update().filter(id=task_id).first()
        if task is None:
            return False
        text = "; ".join(problems)
        if task.inconsistent_since is not None and task.inconsistency == text:
            return False
        if task.inconsistent_since is None:
            task.inconsistent_since = timezone.now()
        task.inconsistency = text
        task.save(update_fields=["inconsistent_since", "inconsistency", "updated_at"])
        ledger_append(type="task.marked_inconsistent", actor=actor, task_id=task.id, data={"problems": problems})
    return True


# --- Per-status task counts (the board's projection) ------------------------------

_COUNTS = TaskStatusCount._meta.db_table
_TASKS = PlanningTask._meta.db_table


def task_status_counts() -> dict[str, int]:
    """Tasks per status as the projection has them (statuses with none may
    be missing). One query over the few folded rows and the deltas since."""
    return {status: n for status, n in _sum_per_status(TaskStatusCount.objects.all()) if n}


def _sum_per_status(qs):
    return qs.order_by().values_list("status").annotate(n=Sum("n")).values_list("status", "n")


def task_status_counts_fold() -> int:
    """Fold the delta rows the task triggers appended into one row per
    status, so the board's ``SUM`` reads a handful of rows. Reconciliation
    calls it every pass. Returns how many rows it removed.

    On PostgreSQL one statement: it sums exactly the rows its DELETE took,
    so deltas committed meanwhile stay for the next fold, and it takes no
    lock a transition waits for (they only insert). SQLite serialises
    writers, so three statements in one transaction do the same."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    f"WITH gone AS (DELETE FROM {_COUNTS} RETURNING status, n), "
                    f"kept AS (INSERT INTO {_COUNTS} (status, n) "
                    "SELECT status, sum(n) FROM gone GROUP BY status HAVING sum(n) <> 0 RETURNING 1) "
                    "SELECT (SELECT count(*) FROM gone) - (SELECT count(*) FROM kept)"
                )
                return cursor.fetchone()[0]
        totals = list(_sum_per_status(TaskStatusCount.objects.all()))
        removed, _ = TaskStatusCount.objects.all().delete()
        TaskStatusCount.objects.bulk_create(TaskStatusCount(status=s, n=n) for s, n in totals if n)
        return removed - sum(1 for _, n in totals if n)


def task_status_counts_rebuild() -> dict[str, int]:
    """Recount the projection from the tasks themselves: the repair for a
    projection ``integrity_problems`` found wrong (``verify_integrity
    --repair``). Task writes wait while it counts (EXCLUSIVE lets reads
    through), and so does a fold, so nothing is counted twice or lost.
    Returns the new counts."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # Tasks first, then counts: the order a task write takes them
                # (its trigger inserts into the counts).
                cursor.execute(f"LOCK TABLE {_TASKS}, {_COUNTS} IN EXCLUSIVE MODE")
        TaskStatusCount.objects.all().delete()
        real = task_counts_by_status()
        TaskStatusCount.objects.bulk_create(TaskStatusCount(status=s, n=n) for s, n in real.items())
    return real
