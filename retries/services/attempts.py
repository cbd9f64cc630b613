"""New attempts (rules 1, 3, 6, 9): launch, rerun, retry and repair each
lock their tasks and current attempts, read the facts, ask their decision
and hand its ``NextAttempt`` to ``start_attempts``, the one writer of new
attempts. A single item is the batch of one."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.db.models import F

from missioncontrol.db import Writes
from planning.ledger import ledger_append, ledger_batch_into
from planning.models import Agent, PlanningTask
from planning.services import task_clear_inconsistency_fields, task_status_set

from .. import dispatch
from ..decisions import NextAttempt
from ..models import Attempt, RetiredNativeId
from .base import AS, TS, attempt_status_set, refresh_plan, set_failure


@dataclass
class NewAttempt:
    """One decided attempt to start: the locked task, its locked current
    attempt (superseded by the new one), the decision, and the ledger data
    the request adds (e.g. a rerun's override flags)."""

    task: PlanningTask
    current: Attempt | None
    plan: NextAttempt
    event_data: dict | None = None
    # A repair counts every attempt the task has (a damaged counter is
    # corrected); otherwise the counter moves by one.
    attempt_count: int | None = None
    moved: bool = False


def _requested_data(item: NewAttempt, new_id: uuid.UUID) -> dict:
    plan = item.plan
    return {
        "number": plan.number,
        "kind": plan.kind,
        "status": AS.PENDING,
        "reason": plan.reason,
        "requested_assignee": plan.assignee.name,
        "assignee_source": plan.assignee.source,
        "resume_phase": plan.resume_phase,
        "passed_phases": list(plan.passed_phases),
        "budget": {"used": plan.budget_used, "max": plan.budget_max, "left": plan.budget_left},
        "supersedes": item.current.id if item.current else None,
        **plan.extra,
        **(item.event_data or {}),
    }


def start_attempts(items: list[NewAttempt], *, agents: dict[str, Agent], actor: str, now: dt.datetime) -> list[Attempt]:
    """Rule 1 for every item, in one transaction the caller holds with the
    task and current-attempt rows locked: cancel a still-active current
    attempt, mark it superseded, retire the native ids the decision names,
    create the new attempt, move the task to launch_requested, append the
    facts and enqueue the launches after commit. A fixed number of
    statements for any number of items. The caller wraps it in
    ``ledger_batch`` so the facts go in one INSERT, in order."""
    superseded: list[Attempt] = []
    superseded_fields: list[str] = ["superseded_at", "superseded_by"]
    created: list[Attempt] = []
    retired_rows: list[tuple] = []
    for item in items:
        task, previous, plan = item.task, item.current, item.plan
        new_id = uuid.uuid4()
        retired_values = sorted(value for _, value, _, _ in plan.retires)
        if previous is not None:
            if plan.cancels_active:
                superseded_fields += attempt_status_set(
                    previous, AS.CANCELLED, actor=actor, now=now, data={"reason": "superseded"}
                )
                superseded_fields += set_failure(
                    previous, kind="superseded", phase=None, message=f"Superseded by attempt #{plan.number}."
                )
                dispatch.cancel_after_commit(attempt_id=previous.id, executor=task.procedure.executor)
            # The new attempt's id is assigned before it exists; the foreign
            # key is checked at commit (deferred), when both rows are in place.
            previous.superseded_at = now
            previous.superseded_by_id = new_id
            superseded.append(previous)
            ledger_append(
                type="attempt.superseded",
                actor=actor,
                task_id=task.id,
                attempt_id=previous.id,
                data={"number": previous.number, "superseded_by": new_id, "retired_native_ids": retired_values},
                at=now,
            )
        retired_rows += [(kind, value, task.id, attempt_id, now) for kind, value, _, attempt_id in plan.retires]
        attempt = Attempt(
            id=new_id,
            task=task,
            number=plan.number,
            kind=plan.kind,
            status=AS.PENDING,
            requested_by=actor,
            requested_at=now,
            reason=plan.reason,
            requested_assignee=agents.get(plan.assignee.name) if plan.assignee.name else None,
            resume_phase=plan.resume_phase,
        )
        created.append(attempt)
        ledger_append(
            type="attempt.requested",
            actor=actor,
            task_id=task.id,
            plan_id=task.plan_id,
            attempt_id=new_id,
            data=_requested_data(item, new_id),
            at=now,
        )
        task.attempt_count = item.attempt_count if item.attempt_count is not None else plan.number
        item.moved = bool(task_status_set(task, TS.LAUNCH_REQUESTED, actor=actor, data={"attempt": plan.number}))
    # One statement for every write (``Writes``), in this order: the
    # superseded rows before the new ones (one current attempt per task is
    # checked at once; the foreign key to the new attempt only at commit; a
    # cancelled one gets its status and failure in the same UPDATE), then the
    # tasks, then the facts of the batch so far.
    writes = Writes()
    _retire(writes, retired_rows)
    writes.update_rows(superseded, list(dict.fromkeys(superseded_fields)))
    writes.insert_rows(created)
    _save_started_tasks(items, writes, actor=actor, now=now)
    ledger_batch_into(writes)
    writes.send()
    for item in items:
        if item.moved:
            refresh_plan(item.task, actor)
    for item, attempt in zip(items, created, strict=True):
        dispatch.launch_after_commit(attempt_id=attempt.id, executor=item.task.procedure.executor)
    return created


_START_TASKS = (
    'UPDATE "planning_planningtask" SET "status" = %s::varchar, "attempt_count" = "attempt_count" + 1,'
    ' "updated_at" = %s::timestamptz WHERE "id" = ANY(%s::bigint[]) AND {after}'
)


def _save_started_tasks(items: list[NewAttempt], writes: Writes, *, actor: str, now: dt.datetime) -> None:
    """Every task is launch_requested now: one UPDATE for those whose
    counter moves by one, the rows of repairs (which also correct the
    counter and clear the inconsistency mark) by their own fields."""
    plain = [i.task.id for i in items if i.attempt_count is None]
    if plain:
        writes.add(
            _START_TASKS,
            [TS.LAUNCH_REQUESTED, now, plain],
            elsewhere=lambda: PlanningTask.objects.filter(id__in=plain).update(
                status=TS.LAUNCH_REQUESTED, attempt_count=F("attempt_count") + 1, updated_at=now
            ),
        )
    for item in items:
        item.task.updated_at = now
        if item.attempt_count is not None:
            task = item.task
            writes.update_rows(
                [task], ["status", "attempt_count", *task_clear_inconsistency_fields(task), "updated_at"]
            )


def _retire(writes: Writes, rows: list[tuple]) -> None:
    """Retire native ids: one INSERT of column arrays; an id retired already
    stays as it was (first retirement wins)."""
    if not rows:
        return
    kinds, values, tasks, attempts, times = (list(column) for column in zip(*rows, strict=True))
    writes.insert_columns(
        RetiredNativeId,
        {"kind": kinds, "value": values, "task_id": tasks, "attempt_id": attempts, "retired_at": times},
        ignore_conflicts=True,
    )


def retire_native_ids(rows: list[tuple], *, writes: Writes | None = None) -> None:
    """``(kind, value, task id, attempt id, retired at)`` rows, as above:
    for a report whose own claim ties its ids to a superseded attempt. With
    ``writes``, they go in with the caller's other writes."""
    if writes is not None:
        _retire(writes, rows)
        return
    writes = Writes()
    _retire(writes, rows)
    writes.send()
