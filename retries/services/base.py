"""What every attempt service shares: row locks in the fixed order task ->
attempt -> native run (the plan row, when its status is refreshed, last),
forward-only status moves through the decision, the task's projection of
its attempt, deferred plan refreshes, and the rule-7 check that the rows an
automatic action is about to act on agree with the ledger."""

from __future__ import annotations

import contextvars
import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db.models import OuterRef, Subquery

from missioncontrol.db import unique_or_none
from missioncontrol.errors import not_found
from planning.ledger import ATTEMPT_STATUS_EVENTS, TASK_STATUS_EVENTS, ledger_append
from planning.models import Event, PlanningTask
from planning.services import plan_refresh, task_status_set

from ..decisions import TASK_STATUS_FOR_ATTEMPT, Schedulable, attempt_status_move, decide_schedulable
from ..models import Attempt, IdempotencyKey

TS = PlanningTask.Status
AS = Attempt.Status


@dataclass
class AttemptResult:
    """What a launch, rerun or repair returns. ``replayed`` is true when an
    idempotency key matched an earlier request: nothing was created and
    ``stored_status``/``stored_body`` hold the first response if recorded."""

    attempt: Attempt
    created: bool
    replayed: bool = False
    idempotency: IdempotencyKey | None = None
    stored_status: int | None = None
    stored_body: Any = None


# --- Locks ---------------------------------------------------------------------------

_TASK_RELATIONS = ("procedure", "project__owner", "plan", "assignee")


def lock_task(*, slug: str | None = None, task_id: int | None = None) -> PlanningTask:
    # Services read the clock only after this lock is granted, so the times
    # in the ledger follow the order in which the locks serialized them.
    qs = PlanningTask.objects.select_for_update(of=("self",)).select_related(*_TASK_RELATIONS)
    if slug is not None:
        qs = qs.filter(slug=slug)
    elif task_id is not None:
        qs = qs.filter(id=task_id)
    else:
        raise TypeError("lock_task needs a slug or a task_id")
    task = unique_or_none(qs)
    if task is None:
        raise not_found("task", slug if slug is not None else str(task_id))
    return task


def lock_current_attempt(task: PlanningTask) -> Attempt | None:
    return unique_or_none(
        Attempt.objects.select_for_update(of=("self",))
        .select_related("requested_assignee")
        .filter(task_id=task.id, superseded_at__isnull=True)
    )


def task_id_of_attempt(attempt_id: uuid.UUID) -> int | None:
    return Attempt.objects.filter(id=attempt_id).values_list("task_id", flat=True).first()


# --- Plans refreshed once per batch -------------------------------------------------

# Batches defer plan refreshes to their end so that no plan row is locked
# before a later task row (that would break the lock order and could deadlock).
_deferred_plans: contextvars.ContextVar[dict | None] = contextvars.ContextVar("deferred_plans", default=None)


@contextmanager
def deferred_plan_refresh() -> Iterator[None]:
    pending: dict = {}
    token = _deferred_plans.set(pending)
    try:
        yield
        for plan_id in sorted(pending, key=str):
            plan_refresh(plan_id=plan_id, failure_seen=pending[plan_id])
    finally:
        _deferred_plans.reset(token)


def refresh_plan(task: PlanningTask, actor: str) -> None:
    if task.plan_id is None:
        return
    failure_seen = task.status in PlanningTask.FAILING_STATUSES
    pending = _deferred_plans.get()
    if pending is not None:
        pending[task.plan_id] = pending.get(task.plan_id, False) or failure_seen
    else:
        plan_refresh(plan_id=task.plan_id, actor=actor, failure_seen=failure_seen)


def save_task(task: PlanningTask, fields: list[str], actor: str) -> None:
    if not fields:
        return
    task.save(update_fields=[*dict.fromkeys(fields), "updated_at"])
    if "status" in fields:
        refresh_plan(task, actor)


def plan_is_paused(task: PlanningTask) -> bool:
    return task.plan is not None and task.plan.paused_at is not None


# --- Status moves ----------------------------------------------------------------------


def attempt_status_set(
    attempt: Attempt, status: str, *, actor: str, now: dt.datetime, data: dict | None = None
) -> list[str]:
    """Move a locked attempt where ``attempt_status_move`` allows (forward
    only); returns the fields changed, none for a repeat or a late move (the
    caller records a late report)."""
    move = attempt_status_move(attempt.status, status)
    if not move.apply:
        return []
    old = attempt.status
    attempt.status = status
    fields = ["status"]
    if status == AS.RUNNING and attempt.started_at is None:
        attempt.started_at = now
        fields.append("started_at")
    if status in Attempt.TERMINAL:
        attempt.finished_at = now
        fields.append("finished_at")
    ledger_append(
        type="attempt.status_changed",
        actor=actor,
        task_id=attempt.task_id,
        attempt_id=attempt.id,
        data={"from": old, "status": status, **(data or {})},
        at=now,
    )
    return fields


def project_task(task: PlanningTask, attempt: Attempt, attempt_fields: list[str], *, actor: str) -> list[str]:
    """The task's status follows its current attempt's, when that attempt's
    status just changed. Only then: a heartbeat must not pull a task that an
    operator cancelled, or that the budget blocked, back to ``failed``."""
    if "status" not in attempt_fields:
        return []
    return task_status_set(task, TASK_STATUS_FOR_ATTEMPT[attempt.status], actor=actor, data={"attempt": attempt.number})


def set_failure(attempt: Attempt, *, kind: str, phase: str | None, message: str) -> list[str]:
    attempt.failure_kind = kind
    attempt.failure_phase = phase
    attempt.failure_message = message
    return ["failure_kind", "failure_phase", "failure_message"]


# --- Rule 7 before every automatic action ------------------------------------------------


def ledger_statuses(task_ids: list[int], attempt_ids: list[uuid.UUID]) -> tuple[dict[int, str], dict[uuid.UUID, str]]:
    """What the ledger last said of each task's and attempt's status: two
    queries, each one backward index probe per row (``event_task_id``,
    ``event_attempt_type``), never a scan of history."""
    tasks: dict[int, str] = {}
    attempts: dict[uuid.UUID, str] = {}
    if task_ids:
        last = Event.objects.filter(task_id=OuterRef("pk"), type__in=TASK_STATUS_EVENTS).order_by("-id")
        tasks = dict(
            PlanningTask.objects.filter(id__in=task_ids)
            .annotate(ledger=Subquery(last.values("data__status")[:1]))
            .values_list("id", "ledger")
        )
    if attempt_ids:
        last = Event.objects.filter(attempt_id=OuterRef("pk"), type__in=ATTEMPT_STATUS_EVENTS).order_by("-id")
        attempts = dict(
            Attempt.objects.filter(id__in=attempt_ids)
            .annotate(ledger=Subquery(last.values("data__status")[:1]))
            .values_list("id", "ledger")
        )
    return tasks, attempts


def schedulable_tasks(
    tasks: list[PlanningTask],
    currents: dict[int, Attempt],
    *,
    actor: str,
    now: dt.datetime,
    restores_to: dict[int, str] | None = None,
) -> dict[int, Schedulable]:
    """``decide_schedulable`` for locked tasks and their current attempts.
    A task that disagrees is marked inconsistent here (in the caller's
    transaction, with the decision's reason in the ledger) and left alone
    until a repair."""
    task_ledger, attempt_ledger = ledger_statuses([t.id for t in tasks], [a.id for a in currents.values()])
    decisions: dict[int, Schedulable] = {}
    for task in tasks:
        current = currents.get(task.id)
        decision = decide_schedulable(
            task_status=task.status,
            task_ledger_status=task_ledger.get(task.id),
            attempt_number=current.number if current else None,
            attempt_status=current.status if current else None,
            attempt_ledger_status=attempt_ledger.get(current.id) if current else None,
            inconsistency=task.inconsistency if task.inconsistent_since is not None else None,
            restores_task_to=(restores_to or {}).get(task.id),
        )
        decisions[task.id] = decision
        if decision.problems:
            task_mark_inconsistent_locked(task, list(decision.problems), actor=actor, now=now, reason=decision.reason)
    return decisions


def task_mark_inconsistent_locked(
    task: PlanningTask, problems: list[str], *, actor: str, now: dt.datetime, reason: str
) -> None:
    text = "; ".join(problems)
    if task.inconsistent_since is not None and task.inconsistency == text:
        return
    if task.inconsistent_since is None:
        task.inconsistent_since = now
    task.inconsistency = text
    task.save(update_fields=["inconsistent_since", "inconsistency", "updated_at"])
    ledger_append(
        type="task.marked_inconsistent",
        actor=actor,
        task_id=task.id,
        data={"problems": problems, "reason": reason, "by": "automatic action"},
        at=now,
    )
