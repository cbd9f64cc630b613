"""What the system does on its own (rule 6, 7, seed 002): retry or block a
failed task, fail a stalled attempt, mark a launch picked up, bring a
lagging task in line. Before acting, each one checks that the rows it is
about to act on agree with the ledger (``decide_schedulable``); a task
that disagrees is marked inconsistent and left for a repair."""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from planning.ledger import ledger_batch
from planning.models import PlanningTask
from planning.services import task_status_set

from .. import dispatch
from ..decisions import (
    ATTEMPT_STATUS_FOR_RUN,
    TASK_STATUS_FOR_ATTEMPT,
    Block,
    NextAttempt,
    decide_retry_or_block,
    resume_phase,
    stall_check,
)
from ..models import Attempt, NativeRun, PhaseOutcome
from .attempts import NewAttempt, start_attempts
from .base import (
    AS,
    TS,
    attempt_status_set,
    deferred_plan_refresh,
    lock_current_attempt,
    lock_task,
    plan_is_paused,
    project_task,
    refresh_plan,
    save_task,
    schedulable_tasks,
    set_failure,
    task_id_of_attempt,
)
from .facts import facts_for_new_attempt, passed_phases_of_chains
from .locks import lock_current_attempts, lock_tasks
from .reports import apply_run_status


def task_retry_or_block(*, task_id: int, actor: str = "system") -> Attempt | None:
    """``task_retry_or_block_many`` for one task: the new attempt, or None."""
    attempts = task_retry_or_block_many(task_ids=[task_id], actor=actor)
    return attempts[0] if attempts else None


def task_retry_or_block_many(*, task_ids: list[int], actor: str = "system") -> list[Attempt]:
    """Reconciliation's answer to failed tasks (``decide_retry_or_block``):
    within budget a ``retry`` attempt resuming at the first phase not yet
    passed; past it ``blocked``, with the budget decision in the ledger.
    Tasks are locked in id order in one statement, then their current
    attempts; a fixed number of statements for any number of tasks; plans
    refreshed once each at the end. Returns the new attempts."""
    ids = sorted(set(task_ids))
    if not ids:
        return []
    with transaction.atomic(), deferred_plan_refresh():
        tasks = lock_tasks(ids=ids)
        now = timezone.now()
        locked = lock_current_attempts(tasks)
        currents = locked.attempts
        # Rule 7 first: only what the ledger agrees is failed is acted on.
        candidates = [t for t in tasks if t.status == TS.FAILED and t.inconsistent_since is None]
        ok = schedulable_tasks(candidates, currents, actor=actor, now=now)
        todo = [t for t in candidates if ok[t.id].ok]
        facts, agents = facts_for_new_attempt(todo, currents, native=locked.native)
        passed = passed_phases_of_chains([t.id for t in todo if t.attempt_count < t.max_attempts])
        retries: list[NewAttempt] = []
        blocked: list[PlanningTask] = []
        with ledger_batch():
            for task in todo:
                decision = decide_retry_or_block(*facts[task.id], passed=frozenset(passed.get(task.id, ())))
                if isinstance(decision, NextAttempt):
                    retries.append(NewAttempt(task, currents.get(task.id), decision))
                elif isinstance(decision, Block) and task_status_set(
                    task, TS.BLOCKED, actor=actor, data={**decision.data, "decision": decision.reason}
                ):
                    blocked.append(task)
            created = start_attempts(retries, agents=agents, actor=actor, now=now)
        if blocked:
            PlanningTask.objects.filter(id__in=[t.id for t in blocked]).update(status=TS.BLOCKED, updated_at=now)
            for task in blocked:
                task.updated_at = now
                refresh_plan(task, actor)
    return created


def attempt_mark_launching(
    *, attempt_id: uuid.UUID, actor: str = "system", hold_if_plan_paused: bool = False
) -> Attempt | None:
    """The launcher picked the attempt up. Returns None when the attempt is no
    longer current or already past pending (then there is nothing to launch),
    or when its rows disagree with the ledger (then it is marked inconsistent).

    With ``hold_if_plan_paused``, an initial or retry attempt of a plan paused
    by ``on_error`` stays pending (None is returned): the pause stops the
    plan's further launches, including those already queued. An operator's
    rerun or repair is an explicit decision and goes ahead."""
    with transaction.atomic():
        task_id = task_id_of_attempt(attempt_id)
        if task_id is None:
            return None
        task = lock_task(task_id=task_id)
        now = timezone.now()
        attempt = lock_current_attempt(task)
        if attempt is None or attempt.id != attempt_id:
            return None
        if attempt.status != AS.PENDING:
            return attempt if attempt.status == AS.LAUNCHING else None
        if hold_if_plan_paused and plan_is_paused(task) and attempt.kind in (Attempt.Kind.INITIAL, Attempt.Kind.RETRY):
            return None
        if not schedulable_tasks([task], {task.id: attempt}, actor=actor, now=now)[task.id].ok:
            return None
        fields = attempt_status_set(attempt, AS.LAUNCHING, actor=actor, now=now)
        attempt.last_heartbeat_at = now
        attempt.save(update_fields=[*fields, "last_heartbeat_at"])
        save_task(task, project_task(task, attempt, fields, actor=actor), actor)
    return attempt


def attempt_fail(
    *, attempt_id: uuid.UUID, kind: str, message: str, phase: str | None = None, actor: str = "system"
) -> Attempt | None:
    """Fail the current, unfinished attempt (a launch that could not be made,
    an executor error). No-op when already terminal or superseded."""
    with transaction.atomic():
        task_id = task_id_of_attempt(attempt_id)
        if task_id is None:
            return None
        task = lock_task(task_id=task_id)
        now = timezone.now()
        attempt = lock_current_attempt(task)
        if attempt is None or attempt.id != attempt_id or attempt.is_terminal:
            return None
        fields = attempt_status_set(attempt, AS.FAILED, actor=actor, now=now, data={"kind": kind})
        fields += set_failure(attempt, kind=kind, phase=phase, message=message)
        attempt.save(update_fields=fields)
        save_task(task, project_task(task, attempt, fields, actor=actor), actor)
    return attempt


def attempt_fail_if_stalled(*, attempt_id: uuid.UUID, now: dt.datetime | None = None, actor: str = "system") -> bool:
    """Fail a launching or running attempt whose last sign of life is older
    than its procedure's stall timeout (``stall_check``). Re-checked under
    the locks, so a heartbeat that arrived meanwhile wins; the failed phase
    is the first one not yet passed (``resume_phase``)."""
    with transaction.atomic():
        task_id = task_id_of_attempt(attempt_id)
        if task_id is None:
            return False
        task = lock_task(task_id=task_id)
        now = now or timezone.now()
        attempt = lock_current_attempt(task)
        if attempt is None or attempt.id != attempt_id or attempt.status not in (AS.LAUNCHING, AS.RUNNING):
            return False
        stall = stall_check(
            now=now,
            last_sign_of_life=attempt.last_heartbeat_at or attempt.started_at or attempt.requested_at,
            timeout_seconds=task.procedure.stall_timeout_seconds,
            coalesce_seconds=settings.HEARTBEAT_COALESCE_SECONDS,
        )
        if not stall.stalled:
            return False
        if not schedulable_tasks([task], {task.id: attempt}, actor=actor, now=now)[task.id].ok:
            return False
        passed = set(attempt.phase_outcomes.filter(outcome=PhaseOutcome.Outcome.PASSED).values_list("phase", flat=True))
        passed |= passed_phases_of_chains([task.id]).get(task.id, set())
        phase = resume_phase(list(task.procedure.phases), passed)
        fields = attempt_status_set(attempt, AS.FAILED, actor=actor, now=now, data={"kind": "stalled"})
        fields += set_failure(attempt, kind="stalled", phase=phase, message=stall.reason)
        attempt.save(update_fields=fields)
        save_task(task, project_task(task, attempt, fields, actor=actor), actor)
        dispatch.cancel_after_commit(attempt_id=attempt.id, executor=task.procedure.executor)
    return True


def task_sync_with_attempt(*, task_id: int, actor: str = "system") -> bool:
    """Safety net (seed 002): bring a task whose status lags its current
    attempt, or whose attempt lags its terminal bound run, back in line."""
    with transaction.atomic():
        task = lock_task(task_id=task_id)
        now = timezone.now()
        attempt = lock_current_attempt(task)
        if attempt is None or task.status not in PlanningTask.ACTIVE_STATUSES:
            # Only an active task can lag; a failed, blocked or cancelled one
            # got there through its own transition.
            return False
        run = (
            NativeRun.objects.select_for_update(of=("self",))
            .filter(attempt_id=attempt.id, binding=NativeRun.Binding.BOUND)
            .order_by("id")
            .first()
        )
        # The task may only be behind its attempt, in which case the ledger
        # says what the attempt says and the sync restores it.
        target = TASK_STATUS_FOR_ATTEMPT[
            ATTEMPT_STATUS_FOR_RUN[run.status]
            if run is not None and run.status in NativeRun.TERMINAL and not attempt.is_terminal
            else attempt.status
        ]
        if not schedulable_tasks([task], {task.id: attempt}, actor=actor, now=now, restores_to={task.id: target})[
            task.id
        ].ok:
            return False
        fields: list[str] = []
        if run is not None and run.status in NativeRun.TERMINAL and not attempt.is_terminal:
            fields = apply_run_status(attempt, run, actor=actor, now=now)
            attempt.save(update_fields=fields)
        task_fields = task_status_set(
            task, TASK_STATUS_FOR_ATTEMPT[attempt.status], actor=actor, data={"attempt": attempt.number, "sync": True}
        )
        save_task(task, task_fields, actor)
        return bool(fields or task_fields)
