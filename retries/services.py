"""State changes of attempts and native runs (rules 1-6 and 9 of DESIGN.md).

Every function here is one ``transaction.atomic()`` that locks its rows with
``select_for_update()`` in the fixed order task -> attempt -> native run (the
plan row, when its status is refreshed, comes last), re-checks that the
transition is allowed on the locked rows, saves only the fields it changed,
appends its ledger events and enqueues Celery work with ``on_commit``.
"""

from __future__ import annotations

import contextvars
import copy
import datetime as dt
import hashlib
import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from missioncontrol.db import bulk_insert_unnest, bulk_update_unnest, insert_columns, unique_or_none
from missioncontrol.errors import ServiceError, invalid, not_found
from planning.ledger import (
    ATTEMPT_STATUS_EVENTS,
    TASK_STATUS_EVENTS,
    ledger_append,
    ledger_batch,
)
from planning.models import Agent, Event, PlanningTask
from planning.services import (
    agent_get,
    plan_refresh,
    task_clear_inconsistency_fields,
    task_status_set,
)

from . import dispatch
from .models import Attempt, IdempotencyKey, NativeRun, PhaseOutcome, RetiredNativeId

TS = PlanningTask.Status
AS = Attempt.Status
RS = NativeRun.Status

# Attempt status -> the task status it projects to.
TASK_STATUS_FOR_ATTEMPT = {
    AS.PENDING: TS.LAUNCH_REQUESTED,
    AS.LAUNCHING: TS.LAUNCH_REQUESTED,
    AS.RUNNING: TS.RUNNING,
    AS.SUCCEEDED: TS.SUCCEEDED,
    AS.FAILED: TS.FAILED,
    AS.CANCELLED: TS.CANCELLED,
}
# Native run status -> the attempt status it moves a bound attempt to.
ATTEMPT_STATUS_FOR_RUN = {
    RS.QUEUED: AS.LAUNCHING,
    RS.RUNNING: AS.RUNNING,
    RS.SUCCEEDED: AS.SUCCEEDED,
    RS.FAILED: AS.FAILED,
    RS.CANCELLED: AS.CANCELLED,
}


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


# --- Locking helpers -------------------------------------------------------------


def _lock_task(*, slug: str | None = None, task_id: int | None = None) -> PlanningTask:
    # Services read the clock only after this lock is granted, so the times
    # in the ledger follow the order in which the locks serialized them.
    qs = PlanningTask.objects.select_for_update(of=("self",)).select_related(
        "procedure", "project__owner", "plan", "assignee"
    )
    task = unique_or_none(qs.filter(slug=slug) if slug is not None else qs.filter(id=task_id))
    if task is None:
        raise not_found("task", slug if slug is not None else str(task_id))
    return task


def _lock_current_attempt(task: PlanningTask) -> Attempt | None:
    return unique_or_none(
        Attempt.objects.select_for_update(of=("self",))
        .select_related("requested_assignee")
        .filter(task_id=task.id, superseded_at__isnull=True)
    )


def _lock_tasks(**lookup: Any) -> list[PlanningTask]:
    """Many task rows, locked in id order in one statement (two sets locked
    at once then wait for each other instead of deadlocking), with what a
    transition reads of their relations."""
    return list(
        PlanningTask.objects.select_for_update(of=("self",))
        .select_related("procedure", "project__owner", "plan", "assignee")
        .filter(**lookup)
        .order_by("id")
    )


def _lock_current_attempts(tasks: list[PlanningTask]) -> dict[int, Attempt]:
    """The current attempts of locked tasks, locked next (task -> attempt)."""
    return {
        a.task_id: a
        for a in Attempt.objects.select_for_update(of=("self",))
        .select_related("requested_assignee")
        .filter(task_id__in=[t.id for t in tasks], superseded_at__isnull=True)
        .order_by("task_id")
    }


def _bound_runs(attempts: list[Attempt]) -> dict[uuid.UUID, list[tuple]]:
    """``(attempt_id, native_task_id, native_run_id)`` of the runs bound to
    these attempts, by attempt, in one query (see ``_native_id_pairs``)."""
    bound: dict[uuid.UUID, list[tuple]] = defaultdict(list)
    if attempts:
        for row in NativeRun.objects.filter(attempt_id__in=[a.id for a in attempts]).values_list(
            "attempt_id", "native_task_id", "native_run_id"
        ):
            bound[row[0]].append(row)
    return bound


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


def _refresh_plan(task: PlanningTask, actor: str) -> None:
    if task.plan_id is None:
        return
    failure_seen = task.status in (TS.FAILED, TS.BLOCKED)
    pending = _deferred_plans.get()
    if pending is not None:
        pending[task.plan_id] = pending.get(task.plan_id, False) or failure_seen
    else:
        plan_refresh(plan_id=task.plan_id, actor=actor, failure_seen=failure_seen)


def _save_task(task: PlanningTask, fields: list[str], actor: str) -> None:
    if not fields:
        return
    task.save(update_fields=[*dict.fromkeys(fields), "updated_at"])
    if "status" in fields:
        _refresh_plan(task, actor)


def _attempt_status_set(
    attempt: Attempt, status: str, *, actor: str, now: dt.datetime, data: dict | None = None
) -> list[str]:
    """Forward-only move of a locked attempt. A repeat is a no-op; a move
    backwards or out of a terminal status is refused by returning no fields
    (the caller records the late report)."""
    if attempt.status == status:
        return []
    if attempt.is_terminal or Attempt.RANK[status] <= Attempt.RANK[attempt.status]:
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


def _project_task(task: PlanningTask, attempt: Attempt, attempt_fields: list[str], *, actor: str) -> list[str]:
    """The task's status follows its current attempt's, when that attempt's
    status just changed. Only then: a heartbeat must not pull a task that an
    operator cancelled, or that the budget blocked, back to ``failed``."""
    if "status" not in attempt_fields:
        return []
    return task_status_set(task, TASK_STATUS_FOR_ATTEMPT[attempt.status], actor=actor, data={"attempt": attempt.number})


def _set_failure(attempt: Attempt, *, kind: str, phase: str | None, message: str) -> list[str]:
    attempt.failure_kind = kind
    attempt.failure_phase = phase
    attempt.failure_message = message
    return ["failure_kind", "failure_phase", "failure_message"]


# --- Idempotency -----------------------------------------------------------------


def _fingerprint(action: str, payload: dict[str, Any]) -> str:
    raw = json.dumps({"action": action, **payload}, sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _idempotency_lookup(task: PlanningTask, key: str | None, fingerprint: str, now: dt.datetime) -> AttemptResult | None:
    """Called with the task row locked, so concurrent requests with one key
    queue here and the second one sees the first one's record."""
    if not key:
        return None
    record = unique_or_none(IdempotencyKey.objects.select_related("attempt").filter(task_id=task.id, key=key))
    if record is None:
        return None
    if record.created_at < now - dt.timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS):
        record.delete()
        return None
    if record.fingerprint != fingerprint:
        raise ServiceError(
            "idempotency_key_reused",
            "This Idempotency-Key was already used for this task with a different request.",
        )
    return AttemptResult(
        attempt=record.attempt,
        created=False,
        replayed=True,
        idempotency=record,
        stored_status=record.response_status,
        stored_body=record.response_body,
    )


def idempotency_store_response(*, record: IdempotencyKey, status: int, body: Any) -> None:
    """Keep the first response for a keyed request. Call it inside the same
    transaction as the request's service so that a concurrent repeat, queued
    on the task lock, finds the response."""
    record.response_status = status
    record.response_body = body
    record.save(update_fields=["response_status", "response_body"])


def idempotency_store_bulk_response(*, results: list[AttemptResult], status: int, body: Any) -> None:
    """The first response of a keyed bulk rerun, kept once: on the record of
    the lowest task id, where a repeat looks for it."""
    records = [r.idempotency for r in results if r.idempotency is not None]
    if records:
        idempotency_store_response(record=min(records, key=lambda r: r.task_id), status=status, body=body)


def idempotency_keys_expire(*, now: dt.datetime | None = None) -> int:
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted


# --- Attempts: launch, rerun, retry, repair, cancel ---------------------------------


def _native_id_pairs(
    attempts: list[Attempt], *, trust_links: bool, bound_runs: list[tuple] | None = None
) -> dict[tuple[str, str], Attempt]:
    """The (kind, value) native ids linked to these attempts, each with the
    attempt it is retired for. ``bound_runs`` are pre-read
    ``(attempt_id, native_task_id, native_run_id)`` rows of the runs bound to
    them (a batch reads them for many tasks at once); without it they are read
    here when needed."""
    pairs: dict[tuple[str, str], Attempt] = {}
    by_id = {a.id: a for a in attempts}
    for attempt in attempts:
        if attempt.native_task_id:
            pairs.setdefault((RetiredNativeId.Kind.TASK, attempt.native_task_id), attempt)
        if attempt.native_run_id:
            pairs.setdefault((RetiredNativeId.Kind.RUN, attempt.native_run_id), attempt)
    if bound_runs is None:
        bound_runs = (
            NativeRun.objects.filter(attempt_id__in=list(by_id)).values_list(
                "attempt_id", "native_task_id", "native_run_id"
            )
            if by_id and (pairs or not trust_links)
            else []
        )
    for attempt_id, native_task_id, native_run_id in bound_runs:
        pairs.setdefault((RetiredNativeId.Kind.TASK, native_task_id), by_id[attempt_id])
        pairs.setdefault((RetiredNativeId.Kind.RUN, native_run_id), by_id[attempt_id])
    return pairs


def _retired_rows(task: PlanningTask, pairs: dict[tuple[str, str], Attempt], now: dt.datetime) -> list[tuple]:
    """(kind, value, task id, attempt id, retired at) for ``_insert_retired``."""
    return [(kind, value, task.id, attempt.id, now) for (kind, value), attempt in pairs.items()]


def _insert_retired(rows: list[tuple]) -> None:
    """Retire native ids: one INSERT of column arrays; an id retired already
    stays as it was (first retirement wins). A model instance per id cost the
    reconcile pass more Python than the rows cost PostgreSQL."""
    if not rows:
        return
    kinds, values, tasks, attempts, times = (list(column) for column in zip(*rows, strict=True))
    insert_columns(
        RetiredNativeId,
        {"kind": kinds, "value": values, "task_id": tasks, "attempt_id": attempts, "retired_at": times},
        ignore_conflicts=True,
    )


def _retire_native_ids(
    task: PlanningTask, attempts: list[Attempt], now: dt.datetime, *, trust_links: bool = False
) -> list[str]:
    """Retire every native id linked to these attempts, including those of
    native runs bound to them: none of them may ever bind again (rule 2).
    With ``trust_links`` an attempt without native ids is taken to have no
    bound run (``_bind`` is the only writer of a run's attempt and sets the
    attempt's ids in the same transaction), which saves a query per rerun;
    a repair, meant for damaged rows, does not trust them."""
    pairs = _native_id_pairs(attempts, trust_links=trust_links)
    if not pairs:
        return []
    _insert_retired(_retired_rows(task, pairs, now))
    return sorted(value for _, value in pairs)


def _resolve_assignee(
    task: PlanningTask, previous: Attempt | None, explicit: Agent | None
) -> Agent | None:
    # Rule 3: explicit choice ?? previous frozen ?? task assignee ?? project owner,
    # decided once, here.
    if explicit is not None:
        return explicit
    if previous is None:
        # No current attempt (e.g. only imported history): the latest one counts.
        previous = (
            Attempt.objects.select_related("requested_assignee").filter(task_id=task.id).order_by("-number").first()
        )
    if previous is not None and previous.requested_assignee_id is not None:
        return previous.requested_assignee
    return task.assignee or task.project.owner


def _passed_phases_since_fresh_start(task: PlanningTask) -> set[str]:
    """Phases passed by the attempts of the current chain: the latest
    operator-started attempt (initial, rerun or repair) and the automatic
    retries after it. Those passes are durable progress (rule 6)."""
    return _passed_phases_of_chains([task.id]).get(task.id, set())


def _passed_phases_of_chains(task_ids: list[int]) -> dict[int, set[str]]:
    """``_passed_phases_since_fresh_start`` for many tasks in one query. A
    task without an operator-started attempt has no chain (the comparison
    with a NULL chain start matches nothing), so no passed phases."""
    chain_start = (
        Attempt.objects.filter(task_id=OuterRef("attempt__task_id"), imported=False)
        .exclude(kind=Attempt.Kind.RETRY)
        .order_by("-number")
        .values("number")[:1]
    )
    passed: dict[int, set[str]] = defaultdict(set)
    rows = PhaseOutcome.objects.filter(
        attempt__task_id__in=task_ids,
        outcome=PhaseOutcome.Outcome.PASSED,
        attempt__number__gte=Subquery(chain_start),
    ).values_list("attempt__task_id", "phase")
    for task_id, phase in rows:
        passed[task_id].add(phase)
    return dict(passed)


def first_unpassed_phase(phases: list[str], passed: set[str]) -> str | None:
    for phase in phases:
        if phase not in passed:
            return phase
    return None


def _cancel_replaced(
    task: PlanningTask, previous: Attempt, *, number: int, actor: str, now: dt.datetime
) -> list[str]:
    """An active attempt being replaced by attempt ``number`` is cancelled,
    and its executor told so after commit. Returns the fields changed (none
    when it had already finished)."""
    if previous.is_terminal:
        return []
    fields = _attempt_status_set(previous, AS.CANCELLED, actor=actor, now=now, data={"reason": "superseded"})
    fields += _set_failure(previous, kind="superseded", phase=None, message=f"Superseded by attempt #{number}.")
    dispatch.cancel_after_commit(attempt_id=previous.id, executor=task.procedure.executor)
    return fields


def _start_attempt(
    task: PlanningTask,
    *,
    kind: str,
    actor: str,
    reason: str,
    explicit_assignee: Agent | None,
    resume_phase: str | None,
    now: dt.datetime,
    retire_all: bool = False,
    event_data: dict | None = None,
) -> Attempt:
    """Rule 1: one transaction (the caller holds the task lock) supersedes the
    current attempt, retires its native ids, creates the new attempt and
    moves the task to launch_requested. The launch is enqueued after commit."""
    previous = _lock_current_attempt(task)
    new_id = uuid.uuid4()
    number = task.attempt_count + 1
    previous_fields = _cancel_replaced(task, previous, number=number, actor=actor, now=now) if previous else []
    if retire_all and previous_fields:
        # The repair below re-reads every attempt row: the cancel must be in it.
        previous.save(update_fields=previous_fields)
        previous_fields = []
    if retire_all:
        to_retire = list(Attempt.objects.select_for_update(of=("self",)).filter(task_id=task.id))
        _restore_attempts_from_ledger(task, to_retire, actor=actor, now=now)
        # A damaged counter must not make the new number collide.
        number = max([a.number for a in to_retire], default=0) + 1
    else:
        to_retire = [previous] if previous is not None else []
    retired = _retire_native_ids(task, to_retire, now, trust_links=not retire_all)
    # The facts of this transition go to the ledger in one INSERT, in order.
    with ledger_batch():
        attempt, fields = _start_attempt_rows(
            task, previous, previous_fields, new_id=new_id, number=number, kind=kind, actor=actor, reason=reason,
            explicit_assignee=explicit_assignee, resume_phase=resume_phase, now=now, retire_all=retire_all,
            to_retire=to_retire, retired=retired, event_data=event_data,
        )
    _save_task(task, fields, actor)
    dispatch.launch_after_commit(attempt_id=attempt.id, executor=task.procedure.executor)
    return attempt


def _start_attempt_rows(
    task: PlanningTask,
    previous: Attempt | None,
    previous_fields: list[str],
    *,
    new_id: uuid.UUID,
    number: int,
    kind: str,
    actor: str,
    reason: str,
    explicit_assignee: Agent | None,
    resume_phase: str | None,
    now: dt.datetime,
    retire_all: bool,
    to_retire: list[Attempt],
    retired: list[str],
    event_data: dict | None,
    pending: tuple[list[Attempt], list[Attempt]] | None = None,
) -> tuple[Attempt, list[str]]:
    """With ``pending`` (new attempts, superseded attempts) the rows are not
    written here but collected for a batch's bulk writes."""
    if previous is not None:
        # The new attempt's id is assigned before it exists; the foreign key is
        # checked at commit (deferred), when both rows are in place.
        previous.superseded_at = now
        previous.superseded_by_id = new_id
        if pending is None:
            previous.save(update_fields=[*previous_fields, "superseded_at", "superseded_by"])
        else:
            pending[1].append(previous)
        ledger_append(
            type="attempt.superseded",
            actor=actor,
            task_id=task.id,
            attempt_id=previous.id,
            data={"number": previous.number, "superseded_by": new_id, "retired_native_ids": retired},
            at=now,
        )
    assignee = _resolve_assignee(task, previous, explicit_assignee)
    attempt = Attempt(
        id=new_id,
        task=task,
        number=number,
        kind=kind,
        status=AS.PENDING,
        requested_by=actor,
        requested_at=now,
        reason=reason,
        requested_assignee=assignee,
        resume_phase=resume_phase,
    )
    if pending is None:
        attempt.save(force_insert=True)
    else:
        pending[0].append(attempt)
    ledger_append(
        type="attempt.requested",
        actor=actor,
        task_id=task.id,
        plan_id=task.plan_id,
        attempt_id=attempt.id,
        data={
            "number": number,
            "kind": kind,
            "status": AS.PENDING,
            "reason": reason,
            "requested_assignee": assignee.name if assignee else None,
            "resume_phase": resume_phase,
            "supersedes": previous.id if previous else None,
            **(event_data or {}),
        },
        at=now,
    )
    task.attempt_count = (len(to_retire) + 1) if retire_all else number
    fields = ["attempt_count", *task_status_set(task, TS.LAUNCH_REQUESTED, actor=actor, data={"attempt": number})]
    if kind == Attempt.Kind.REPAIR:
        fields += task_clear_inconsistency_fields(task)
    return attempt, fields


def _restore_attempts_from_ledger(task: PlanningTask, attempts: list[Attempt], *, actor: str, now: dt.datetime) -> None:
    """Part of a repair: an attempt row whose status disagrees with the ledger
    is put back to what the ledger says, and the correction is itself a fact."""
    ledger = {}
    for event in Event.objects.filter(
        attempt_id__in=[a.id for a in attempts], type__in=ATTEMPT_STATUS_EVENTS
    ).order_by("id").values("attempt_id", "data"):
        ledger[event["attempt_id"]] = event["data"].get("status")
    for attempt in attempts:
        truth = ledger.get(attempt.id)
        if truth is None or truth == attempt.status:
            continue
        ledger_append(
            type="attempt.status_restored",
            actor=actor,
            task_id=task.id,
            attempt_id=attempt.id,
            data={"row_status": attempt.status, "ledger_status": truth},
            at=now,
        )
        attempt.status = truth
        attempt.save(update_fields=["status"])


def _restore_task_from_ledger(task: PlanningTask, *, actor: str, now: dt.datetime) -> None:
    """Part of a repair: a task row whose status disagrees with the ledger
    (e.g. set back to launch_requested by hand, seed 000) is first put back
    to what the ledger says, so that the repair's own move is a ledger fact."""
    truth = (
        Event.objects.filter(task_id=task.id, type__in=TASK_STATUS_EVENTS)
        .order_by("-id")
        .values_list("data__status", flat=True)
        .first()
    )
    if truth is None or truth == task.status:
        return
    ledger_append(
        type="task.status_restored",
        actor=actor,
        task_id=task.id,
        data={"row_status": task.status, "ledger_status": truth},
        at=now,
    )
    task.status = truth
    task.save(update_fields=["status", "updated_at"])


def _check_reason(reason: str | None) -> str:
    if reason is None or not str(reason).strip():
        raise invalid({"reason": ["Give a reason: it is kept in the ledger."]})
    return str(reason).strip()


def _check_consistent(task: PlanningTask) -> None:
    if task.inconsistent_since is not None:
        raise ServiceError(
            "inconsistent",
            f"Task {task.slug} disagrees with its ledger ({task.inconsistency}); repair it first.",
        )


def _plan_is_paused(task: PlanningTask) -> bool:
    return task.plan is not None and task.plan.paused_at is not None


def _record_key(task: PlanningTask, key: str | None, fingerprint: str, attempt: Attempt, now: dt.datetime) -> IdempotencyKey | None:
    if not key:
        return None
    return IdempotencyKey.objects.create(task=task, key=key, fingerprint=fingerprint, attempt=attempt, created_at=now)


def task_launch(*, slug: str, actor: str, idempotency_key: str | None = None) -> AttemptResult:
    """From draft: create attempt 1."""
    fingerprint = _fingerprint("launch", {})
    with transaction.atomic():
        task = _lock_task(slug=slug)
        now = timezone.now()
        replay = _idempotency_lookup(task, idempotency_key, fingerprint, now)
        if replay:
            return replay
        if task.status != TS.DRAFT:
            current = _lock_current_attempt(task)
            if task.status == TS.LAUNCH_REQUESTED and current is not None and current.kind == Attempt.Kind.INITIAL:
                # Launching again what is already launched is a no-op.
                return AttemptResult(attempt=current, created=False)
            raise ServiceError(
                "already_launched", f"Task {slug} was launched already; use rerun or repair."
            )
        _check_consistent(task)
        if _plan_is_paused(task):
            raise ServiceError("plan_paused", f"The plan of {slug} is paused after a failure; resume it first.")
        attempt = _start_attempt(
            task,
            kind=Attempt.Kind.INITIAL,
            actor=actor,
            reason="launch",
            explicit_assignee=None,
            resume_phase=None,
            now=now,
        )
        record = _record_key(task, idempotency_key, fingerprint, attempt, now)
    return AttemptResult(attempt=attempt, created=True, idempotency=record)


def task_rerun(
    *,
    slug: str,
    actor: str,
    reason: str,
    assignee: str | None = None,
    override_budget: bool = False,
    supersede_active: bool = False,
    idempotency_key: str | None = None,
) -> AttemptResult:
    """An operator's fresh attempt at a failed, blocked or cancelled task."""
    reason = _check_reason(reason)
    explicit = agent_get(name=assignee, active_only=True) if assignee else None
    fingerprint = _fingerprint(
        "rerun",
        {
            "reason": reason,
            "assignee": assignee or None,
            "override_budget": bool(override_budget),
            "supersede_active": bool(supersede_active),
        },
    )
    with transaction.atomic():
        task = _lock_task(slug=slug)
        now = timezone.now()
        replay = _idempotency_lookup(task, idempotency_key, fingerprint, now)
        if replay:
            return replay
        refusal = _rerun_refusal(task, override_budget=override_budget, supersede_active=supersede_active)
        if refusal is not None:
            raise refusal
        attempt = _start_attempt(
            task,
            kind=Attempt.Kind.RERUN,
            actor=actor,
            reason=reason,
            explicit_assignee=explicit,
            resume_phase=None,
            now=now,
            event_data=_rerun_event_data(task, override_budget=override_budget, supersede_active=supersede_active),
        )
        record = _record_key(task, idempotency_key, fingerprint, attempt, now)
    return AttemptResult(attempt=attempt, created=True, idempotency=record)


def _rerun_refusal(task: PlanningTask, *, override_budget: bool, supersede_active: bool) -> ServiceError | None:
    """Why this locked task cannot be rerun now, or None: the one set of
    rules for a single rerun and a bulk one."""
    slug = task.slug
    if task.status == TS.DRAFT:
        return ServiceError("not_launched", f"Task {slug} was never launched; launch it instead.")
    if task.status == TS.SUCCEEDED:
        return ServiceError("use_repair", f"Task {slug} succeeded; reopening it needs a repair with a reason.")
    if task.status in PlanningTask.ACTIVE_STATUSES and not supersede_active:
        return ServiceError(
            "attempt_active",
            f"Task {slug} has an active attempt; set supersede_active to cancel and replace it.",
        )
    if task.attempt_count >= task.max_attempts and not override_budget:
        return ServiceError(
            "budget_exhausted",
            f"Task {slug} used {task.attempt_count} of {task.max_attempts} attempts; "
            "set override_budget to go past the budget.",
        )
    try:
        _check_consistent(task)
    except ServiceError as exc:
        return exc
    return None


def _rerun_event_data(task: PlanningTask, *, override_budget: bool, supersede_active: bool) -> dict:
    return {
        "override_budget": bool(override_budget) and task.attempt_count >= task.max_attempts,
        "supersede_active": bool(supersede_active),
    }


MAX_BULK_RERUN = 500


def task_rerun_many(
    *,
    slugs: list[str],
    actor: str,
    reason: str,
    assignee: str | None = None,
    override_budget: bool = False,
    supersede_active: bool = False,
    idempotency_key: str | None = None,
    plan_id: uuid.UUID | None = None,
) -> list[AttemptResult]:
    """``task_rerun`` for many tasks at once, all or nothing: the operator's
    "rerun these failed tasks". Each task gets exactly the rows and ledger
    events a single rerun would give it (tested side by side), in a fixed
    number of statements instead of about ten per task. Tasks are locked in
    id order in one statement, then their current attempts (task -> attempt
    for the whole set), plans refreshed once each at the end. If any task
    cannot be rerun nothing is written and the error lists every refusal by
    slug. Results follow the order of ``slugs``.

    With ``idempotency_key`` every task keeps a record under that key (the
    fingerprint covers the whole request), so a repeat finds all of them and
    creates nothing; the first response is stored on the record of the
    lowest task id (``idempotency_store_bulk_response``). With ``plan_id``
    every task must belong to that plan (the dashboard's "rerun this plan's
    failed tasks"), checked on the locked rows."""
    reason = _check_reason(reason)
    if not slugs:
        raise invalid({"tasks": ["Give at least one task."]})
    if len(slugs) > MAX_BULK_RERUN:
        raise invalid({"tasks": [f"Give at most {MAX_BULK_RERUN} tasks; got {len(slugs)}."]})
    repeated = sorted(slug for slug, n in Counter(slugs).items() if n > 1)
    if repeated:
        raise invalid({"tasks": [f"Each task once; repeated: {', '.join(repeated)}."]})
    explicit = agent_get(name=assignee, active_only=True) if assignee else None
    fingerprint = _fingerprint(
        "rerun_many",
        {
            "tasks": sorted(slugs),
            "reason": reason,
            "assignee": assignee or None,
            "override_budget": bool(override_budget),
            "supersede_active": bool(supersede_active),
            "plan": plan_id,
        },
    )
    new_attempts: list[Attempt] = []
    superseded: list[Attempt] = []
    with transaction.atomic(), deferred_plan_refresh():
        tasks = _lock_tasks(slug__in=slugs)
        now = timezone.now()
        by_slug = {t.slug: t for t in tasks}
        missing = [s for s in slugs if s not in by_slug]
        if missing:
            raise ServiceError(
                "not_found", f"{len(missing)} of {len(slugs)} tasks do not exist; none was rerun.",
                errors={s: ["No task with this slug."] for s in missing},
            )
        if plan_id is not None:
            outside = [t.slug for t in tasks if t.plan_id != plan_id]
            if outside:
                raise invalid(
                    {"tasks": [f"Not in this plan: {', '.join(sorted(outside))}."]},
                    "Some of these tasks are not in the plan; none was rerun.",
                )
        replay = _bulk_idempotency_lookup(tasks, by_slug, slugs, idempotency_key, fingerprint, now)
        if replay is not None:
            return replay
        currents = _lock_current_attempts(tasks)
        refusals = {
            t.slug: refusal
            for t in tasks
            if (refusal := _rerun_refusal(t, override_budget=override_budget, supersede_active=supersede_active))
        }
        if refusals:
            raise ServiceError(
                "rerun_refused",
                f"{len(refusals)} of {len(slugs)} tasks cannot be rerun now; none was.",
                errors={slug: [f"{r.code}: {r.detail}"] for slug, r in sorted(refusals.items())},
            )
        # Links are trusted as in a single rerun: only attempts with native
        # ids can have a bound run, read for all of them in one query.
        bound = _bound_runs([a for a in currents.values() if a.native_task_id or a.native_run_id])
        retired_rows: list[tuple] = []
        superseded_fields: list[str] = ["superseded_at", "superseded_by"]
        created: dict[int, Attempt] = {}
        moved: list[PlanningTask] = []  # status changed (a superseded launch_requested task keeps its status)
        with ledger_batch():
            for task in tasks:
                previous = currents.get(task.id)
                number = task.attempt_count + 1
                if previous is not None:
                    superseded_fields += _cancel_replaced(task, previous, number=number, actor=actor, now=now)
                pairs = (
                    _native_id_pairs([previous], trust_links=True, bound_runs=bound.get(previous.id, []))
                    if previous is not None
                    else {}
                )
                retired_rows += _retired_rows(task, pairs, now)
                event_data = _rerun_event_data(task, override_budget=override_budget, supersede_active=supersede_active)
                created[task.id], task_fields = _start_attempt_rows(
                    task, previous, [], new_id=uuid.uuid4(), number=number, kind=Attempt.Kind.RERUN, actor=actor,
                    reason=reason, explicit_assignee=explicit, resume_phase=None, now=now, retire_all=False,
                    to_retire=[previous] if previous is not None else [], retired=sorted(v for _, v in pairs),
                    event_data=event_data, pending=(new_attempts, superseded),
                )
                if "status" in task_fields:
                    moved.append(task)
        _insert_retired(retired_rows)
        # The superseded rows first (one current attempt per task is checked
        # at once, the foreign key to the new attempt only at commit); a
        # cancelled one gets its status and failure in the same UPDATE.
        bulk_update_unnest(superseded, list(dict.fromkeys(superseded_fields)))
        bulk_insert_unnest(new_attempts)
        # Every task moved to launch_requested with its new attempt number.
        saved_at = timezone.now()
        PlanningTask.objects.filter(id__in=[t.id for t in tasks]).update(
            status=TS.LAUNCH_REQUESTED, attempt_count=F("attempt_count") + 1, updated_at=saved_at
        )
        for task in tasks:
            task.updated_at = saved_at
        for task in moved:
            _refresh_plan(task, actor)
        records = (
            {
                t.id: r
                for t, r in zip(tasks, IdempotencyKey.objects.bulk_create([
                    IdempotencyKey(task=t, key=idempotency_key, fingerprint=fingerprint, attempt=created[t.id],
                                   created_at=now)
                    for t in tasks
                ]), strict=True)
            }
            if idempotency_key
            else {}
        )
        for attempt in new_attempts:
            dispatch.launch_after_commit(attempt_id=attempt.id, executor=attempt.task.procedure.executor)
    return [
        AttemptResult(attempt=created[by_slug[s].id], created=True, idempotency=records.get(by_slug[s].id))
        for s in slugs
    ]


def _bulk_idempotency_lookup(
    tasks: list[PlanningTask],
    by_slug: dict[str, PlanningTask],
    slugs: list[str],
    key: str | None,
    fingerprint: str,
    now: dt.datetime,
) -> list[AttemptResult] | None:
    """A repeat of a keyed bulk rerun: every task holds a record of this key
    with this fingerprint (the first request wrote them all in one
    transaction, and the task locks held now make a concurrent first request
    finish before this reads). Expired records are dropped and the request
    runs as new."""
    if not key:
        return None
    cutoff = now - dt.timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    IdempotencyKey.objects.filter(task_id__in=[t.id for t in tasks], key=key, created_at__lt=cutoff).delete()
    records = {
        r.task_id: r
        for r in IdempotencyKey.objects.select_related("attempt").filter(task_id__in=[t.id for t in tasks], key=key)
    }
    if not records:
        return None
    if len(records) != len(tasks) or any(r.fingerprint != fingerprint for r in records.values()):
        raise ServiceError(
            "idempotency_key_reused",
            "This Idempotency-Key was already used for some of these tasks with a different request.",
        )
    lead = records[min(records)]
    return [
        AttemptResult(
            attempt=records[by_slug[s].id].attempt,
            created=False,
            replayed=True,
            idempotency=records[by_slug[s].id],
            stored_status=lead.response_status,
            stored_body=lead.response_body,
        )
        for s in slugs
    ]


def task_repair(
    *, slug: str, actor: str, reason: str, assignee: str | None = None, idempotency_key: str | None = None
) -> AttemptResult:
    """Rule 9: reopen completed work or fix a damaged task, explicitly and
    with a reason. Supersedes every earlier attempt, retires all their native
    ids, keeps the frozen assignee unless one is given, clears an
    inconsistency mark and starts a fresh attempt."""
    reason = _check_reason(reason)
    explicit = agent_get(name=assignee, active_only=True) if assignee else None
    fingerprint = _fingerprint("repair", {"reason": reason, "assignee": assignee or None})
    with transaction.atomic():
        task = _lock_task(slug=slug)
        now = timezone.now()
        replay = _idempotency_lookup(task, idempotency_key, fingerprint, now)
        if replay:
            return replay
        _restore_task_from_ledger(task, actor=actor, now=now)
        if task.status == TS.DRAFT:
            raise ServiceError("not_launched", f"Task {slug} was never launched; launch it instead.")
        ledger_append(
            type="repair.started",
            actor=actor,
            task_id=task.id,
            data={"reason": reason, "from_status": task.status, "inconsistency": task.inconsistency or None},
            at=now,
        )
        attempt = _start_attempt(
            task,
            kind=Attempt.Kind.REPAIR,
            actor=actor,
            reason=reason,
            explicit_assignee=explicit,
            resume_phase=None,
            now=now,
            retire_all=True,
        )
        record = _record_key(task, idempotency_key, fingerprint, attempt, now)
    return AttemptResult(attempt=attempt, created=True, idempotency=record)


def task_cancel(*, slug: str, actor: str, reason: str) -> PlanningTask:
    reason = _check_reason(reason)
    with transaction.atomic():
        task = _lock_task(slug=slug)
        now = timezone.now()
        if task.status == TS.CANCELLED:
            return task
        if task.status == TS.SUCCEEDED:
            raise ServiceError("not_cancellable", f"Task {slug} already succeeded; there is nothing to cancel.")
        attempt = _lock_current_attempt(task)
        if attempt is not None and not attempt.is_terminal:
            fields = _attempt_status_set(attempt, AS.CANCELLED, actor=actor, now=now, data={"reason": reason})
            fields += _set_failure(attempt, kind="cancelled", phase=None, message=reason)
            attempt.save(update_fields=fields)
            dispatch.cancel_after_commit(attempt_id=attempt.id, executor=task.procedure.executor)
        fields = task_status_set(task, TS.CANCELLED, actor=actor, data={"reason": reason})
        _save_task(task, fields, actor)
    return task


def task_retry_or_block(*, task_id: int, actor: str = "system") -> Attempt | None:
    """Reconciliation's answer to a failed task (rule 6): within budget, a
    ``retry`` attempt that resumes at the first phase not yet passed; past it,
    ``blocked`` with the diagnostics kept on the failed attempt. Returns the
    new attempt, or None when nothing was started."""
    with transaction.atomic():
        task = _lock_task(task_id=task_id)
        now = timezone.now()
        if task.status != TS.FAILED or task.inconsistent_since is not None:
            return None
        current = _lock_current_attempt(task)
        if _retry_skipped(task, current):
            return None
        if task.attempt_count >= task.max_attempts:
            fields = task_status_set(task, TS.BLOCKED, actor=actor, data=_block_data(task, current))
            _save_task(task, fields, actor)
            return None
        passed = _passed_phases_since_fresh_start(task)
        resume = first_unpassed_phase(list(task.procedure.phases), passed)
        return _start_attempt(
            task,
            kind=Attempt.Kind.RETRY,
            actor=actor,
            reason=_retry_reason(current),
            explicit_assignee=None,
            resume_phase=resume,
            now=now,
        )


def _retry_reason(current: Attempt) -> str:
    return f"automatic retry after {current.failure_kind or 'failure'}" + (
        f" in {current.failure_phase}" if current.failure_phase else ""
    )


def _retry_skipped(task: PlanningTask, current: Attempt | None) -> bool:
    """The re-checks of ``task_retry_or_block`` on the locked rows: only a
    consistent failed task whose current attempt failed, outside a paused
    plan, is retried or blocked."""
    return (
        task.status != TS.FAILED
        or task.inconsistent_since is not None
        or current is None
        or current.status != AS.FAILED
        or _plan_is_paused(task)
    )


def _block_data(task: PlanningTask, current: Attempt) -> dict:
    return {
        "reason": "budget_exhausted",
        "attempt_number": current.number,
        "max_attempts": task.max_attempts,
        "failure": current.failure,
    }


def task_retry_or_block_many(*, task_ids: list[int], actor: str = "system") -> list[Attempt]:
    """``task_retry_or_block`` for many tasks (the reconcile pass), with the
    same rows, ledger events and plan refreshes as calling it for each id in
    ascending order, but a fixed number of statements: the per-task path
    costs about 13 round trips per task. Task rows are locked in id order in
    one statement, then their current attempts (the lock order task ->
    attempt holds for the whole set); every write is a bulk one. Plans are
    refreshed once each at the end. Returns the new attempts."""
    ids = sorted(set(task_ids))
    if not ids:
        return []
    new_attempts: list[Attempt] = []
    superseded: list[Attempt] = []
    with transaction.atomic(), deferred_plan_refresh():
        tasks = _lock_tasks(id__in=ids)
        now = timezone.now()
        currents = _lock_current_attempts(tasks)
        todo = [t for t in tasks if not _retry_skipped(t, currents.get(t.id))]
        retry = [t for t in todo if t.attempt_count < t.max_attempts]
        passed = _passed_phases_of_chains([t.id for t in retry]) if retry else {}
        # The current attempt is failed (terminal), so a retry cancels nothing
        # and, links being trusted, only attempts with native ids can have a
        # bound run to look up.
        bound = _bound_runs(
            [currents[t.id] for t in retry if currents[t.id].native_task_id or currents[t.id].native_run_id]
        )
        retired_rows: list[tuple] = []
        changed: list[PlanningTask] = []
        with ledger_batch():
            for task in todo:
                current = currents[task.id]
                if task.attempt_count >= task.max_attempts:
                    if task_status_set(task, TS.BLOCKED, actor=actor, data=_block_data(task, current)):
                        changed.append(task)
                    continue
                pairs = _native_id_pairs([current], trust_links=True, bound_runs=bound.get(current.id, []))
                retired_rows += _retired_rows(task, pairs, now)
                _start_attempt_rows(
                    task, current, [], new_id=uuid.uuid4(), number=task.attempt_count + 1,
                    kind=Attempt.Kind.RETRY, actor=actor, reason=_retry_reason(current), explicit_assignee=None,
                    resume_phase=first_unpassed_phase(list(task.procedure.phases), passed.get(task.id, set())),
                    now=now, retire_all=False, to_retire=[current], retired=sorted(value for _, value in pairs),
                    event_data=None, pending=(new_attempts, superseded),
                )
                changed.append(task)
        _insert_retired(retired_rows)
        # The superseded rows first: one current attempt per task is checked
        # at once, the foreign key to the new attempt only at commit.
        bulk_update_unnest(superseded, ["superseded_at", "superseded_by"])
        bulk_insert_unnest(new_attempts)
        if changed:
            # Each group gets the same values, so a plain UPDATE per status
            # does it (bulk_update's CASE per row costs ~1 s of Python per 1,000).
            saved_at = timezone.now()
            for status in (TS.LAUNCH_REQUESTED, TS.BLOCKED):
                group = [t for t in changed if t.status == status]
                if not group:
                    continue
                values: dict[str, Any] = {"status": status, "updated_at": saved_at}
                if status == TS.LAUNCH_REQUESTED:
                    values["attempt_count"] = F("attempt_count") + 1
                PlanningTask.objects.filter(id__in=[t.id for t in group]).update(**values)
            for task in changed:
                task.updated_at = saved_at
                _refresh_plan(task, actor)
        for attempt in new_attempts:
            dispatch.launch_after_commit(attempt_id=attempt.id, executor=attempt.task.procedure.executor)
    return new_attempts


def attempt_mark_launching(
    *, attempt_id: uuid.UUID, actor: str = "system", hold_if_plan_paused: bool = False
) -> Attempt | None:
    """The launcher picked the attempt up. Returns None when the attempt is no
    longer current or already past pending (then there is nothing to launch).

    With ``hold_if_plan_paused``, an initial or retry attempt of a plan paused
    by ``on_error`` stays pending (None is returned): the pause stops the
    plan's further launches, including those already queued. An operator's
    rerun or repair is an explicit decision and goes ahead."""
    with transaction.atomic():
        row = Attempt.objects.filter(id=attempt_id).values_list("task_id", flat=True).first()
        if row is None:
            return None
        task = _lock_task(task_id=row)
        now = timezone.now()
        attempt = _lock_current_attempt(task)
        if attempt is None or attempt.id != attempt_id:
            return None
        if attempt.status != AS.PENDING:
            return attempt if attempt.status == AS.LAUNCHING else None
        if (
            hold_if_plan_paused
            and _plan_is_paused(task)
            and attempt.kind in (Attempt.Kind.INITIAL, Attempt.Kind.RETRY)
        ):
            return None
        fields = _attempt_status_set(attempt, AS.LAUNCHING, actor=actor, now=now)
        attempt.last_heartbeat_at = now
        attempt.save(update_fields=[*fields, "last_heartbeat_at"])
        _save_task(task, _project_task(task, attempt, fields, actor=actor), actor)
    return attempt


def attempt_fail(
    *, attempt_id: uuid.UUID, kind: str, message: str, phase: str | None = None, actor: str = "system"
) -> Attempt | None:
    """Fail the current, unfinished attempt (a launch that could not be made,
    an executor error). No-op when already terminal or superseded."""
    with transaction.atomic():
        task_id = Attempt.objects.filter(id=attempt_id).values_list("task_id", flat=True).first()
        if task_id is None:
            return None
        task = _lock_task(task_id=task_id)
        now = timezone.now()
        attempt = _lock_current_attempt(task)
        if attempt is None or attempt.id != attempt_id or attempt.is_terminal:
            return None
        fields = _attempt_status_set(attempt, AS.FAILED, actor=actor, now=now, data={"kind": kind})
        fields += _set_failure(attempt, kind=kind, phase=phase, message=message)
        attempt.save(update_fields=fields)
        _save_task(task, _project_task(task, attempt, fields, actor=actor), actor)
    return attempt


def attempt_fail_if_stalled(*, attempt_id: uuid.UUID, now: dt.datetime | None = None, actor: str = "system") -> bool:
    """Fail a launching or running attempt whose last sign of life is older
    than its procedure's stall timeout. Re-checked under the locks, so a
    heartbeat that arrived meanwhile wins."""
    with transaction.atomic():
        task_id = Attempt.objects.filter(id=attempt_id).values_list("task_id", flat=True).first()
        if task_id is None:
            return False
        task = _lock_task(task_id=task_id)
        now = now or timezone.now()
        attempt = _lock_current_attempt(task)
        if attempt is None or attempt.id != attempt_id or attempt.status not in (AS.LAUNCHING, AS.RUNNING):
            return False
        last = attempt.last_heartbeat_at or attempt.started_at or attempt.requested_at
        if now - last < dt.timedelta(seconds=task.procedure.stall_timeout_seconds):
            return False
        passed = set(attempt.phase_outcomes.filter(outcome=PhaseOutcome.Outcome.PASSED).values_list("phase", flat=True))
        passed |= _passed_phases_since_fresh_start(task)
        phase = first_unpassed_phase(list(task.procedure.phases), passed)
        fields = _attempt_status_set(attempt, AS.FAILED, actor=actor, now=now, data={"kind": "stalled"})
        fields += _set_failure(
            attempt,
            kind="stalled",
            phase=phase,
            message=f"No heartbeat for {int((now - last).total_seconds())} s "
            f"(stall timeout {task.procedure.stall_timeout_seconds} s).",
        )
        attempt.save(update_fields=fields)
        _save_task(task, _project_task(task, attempt, fields, actor=actor), actor)
        dispatch.cancel_after_commit(attempt_id=attempt.id, executor=task.procedure.executor)
    return True


def task_sync_with_attempt(*, task_id: int, actor: str = "system") -> bool:
    """Safety net (seed 002): bring a task whose status lags its current
    attempt, or whose attempt lags its terminal bound run, back in line."""
    with transaction.atomic():
        task = _lock_task(task_id=task_id)
        now = timezone.now()
        attempt = _lock_current_attempt(task)
        if attempt is None:
            return False
        if task.status not in PlanningTask.ACTIVE_STATUSES:
            # Only an active task can lag; a failed, blocked or cancelled one
            # got there through its own transition.
            return False
        fields: list[str] = []
        run = (
            NativeRun.objects.select_for_update(of=("self",))
            .filter(attempt_id=attempt.id, binding=NativeRun.Binding.BOUND)
            .order_by("id")
            .first()
        )
        if run is not None and run.status in NativeRun.TERMINAL and not attempt.is_terminal:
            fields = _apply_run_status(attempt, run, actor=actor, now=now)
            attempt.save(update_fields=fields)
        task_fields = task_status_set(
            task, TASK_STATUS_FOR_ATTEMPT[attempt.status], actor=actor, data={"attempt": attempt.number, "sync": True}
        )
        _save_task(task, task_fields, actor)
        return bool(fields or task_fields)


# --- Phases ----------------------------------------------------------------------


def attempt_record_phase(
    *, attempt_id: uuid.UUID, phase: str, outcome: str, message: str = "", actor: str
) -> tuple[PhaseOutcome, bool]:
    """Record a phase outcome. A repeat of the same outcome is a no-op that
    succeeds (created=False); a superseded attempt is refused."""
    if outcome not in PhaseOutcome.Outcome.values:
        raise invalid({"outcome": [f"Use one of: {', '.join(PhaseOutcome.Outcome.values)}."]})
    with transaction.atomic():
        task_id = Attempt.objects.filter(id=attempt_id).values_list("task_id", flat=True).first()
        if task_id is None:
            raise not_found("attempt", str(attempt_id))
        task = _lock_task(task_id=task_id)
        now = timezone.now()
        phases = list(task.procedure.phases)
        if phase not in phases:
            raise invalid({"phase": [f"Procedure {task.procedure.slug} has no phase {phase!r}; it has {phases}."]})
        attempt = Attempt.objects.select_for_update(of=("self",)).get(id=attempt_id)
        existing = PhaseOutcome.objects.filter(attempt_id=attempt.id, phase=phase).first()
        if existing is not None:
            if existing.outcome == outcome:
                return existing, False
            raise ServiceError(
                "phase_conflict",
                f"Phase {phase} of attempt #{attempt.number} was already recorded as {existing.outcome}.",
            )
        if attempt.superseded_at is not None:
            raise ServiceError(
                "superseded", f"Attempt #{attempt.number} of {task.slug} was superseded; its reports change nothing."
            )
        if attempt.is_terminal:
            raise ServiceError(
                "attempt_finished", f"Attempt #{attempt.number} of {task.slug} is {attempt.status} already."
            )
        record = PhaseOutcome.objects.create(attempt=attempt, phase=phase, outcome=outcome, at=now, message=message)
        ledger_append(
            type=f"phase.{outcome}",
            actor=actor,
            task_id=task.id,
            attempt_id=attempt.id,
            data={"phase": phase, "message": message, "number": attempt.number},
            at=now,
        )
        attempt.last_heartbeat_at = now
        fields = ["last_heartbeat_at", *_attempt_status_set(attempt, AS.RUNNING, actor=actor, now=now)]
        if outcome == PhaseOutcome.Outcome.FAILED:
            # A failure in the last phase is bookkeeping, not the work itself:
            # the retry resumes there and does not redo what passed (rule 6).
            kind = "finalization_failed" if phase == phases[-1] and len(phases) > 1 else "phase_failed"
            fields += _attempt_status_set(attempt, AS.FAILED, actor=actor, now=now, data={"kind": kind})
            fields += _set_failure(attempt, kind=kind, phase=phase, message=message)
        else:
            start = phases.index(attempt.resume_phase) if attempt.resume_phase in phases else 0
            passed = set(attempt.phase_outcomes.filter(outcome=PhaseOutcome.Outcome.PASSED).values_list("phase", flat=True))
            if all(p in passed for p in phases[start:]):
                fields += _attempt_status_set(attempt, AS.SUCCEEDED, actor=actor, now=now)
        attempt.save(update_fields=list(dict.fromkeys(fields)))
        _save_task(task, _project_task(task, attempt, fields, actor=actor), actor)
    return record, True


# --- Native runs -----------------------------------------------------------------


@dataclass
class RunReport:
    executor: str
    native_task_id: str
    native_run_id: str
    task: str | None
    status: str
    attempt_id: uuid.UUID | None = None
    created_at: dt.datetime | None = None
    phase: str = ""
    message: str = ""


def _apply_run_status(attempt: Attempt, run: NativeRun, *, actor: str, now: dt.datetime) -> list[str]:
    target = ATTEMPT_STATUS_FOR_RUN[run.status]
    fields = _attempt_status_set(attempt, target, actor=actor, now=now, data={"native_run_id": run.native_run_id})
    if target == AS.FAILED and "status" in fields:
        fields += _set_failure(
            attempt, kind="executor_failed", phase=run.phase or None, message=run.message or "The native run failed."
        )
    return fields


def _is_retired(run: NativeRun) -> bool:
    return RetiredNativeId.objects.filter(
        Q(kind=RetiredNativeId.Kind.TASK, value=run.native_task_id)
        | Q(kind=RetiredNativeId.Kind.RUN, value=run.native_run_id)
    ).exists()


@dataclass
class _Known:
    """What a batch reads once up front instead of once per report: claimed
    attempts by id and the retired (kind, value) pairs among its native ids.
    Neither changes during a batch (only reruns, retries and repairs do)."""

    claimed: dict[uuid.UUID, dict]
    retired: set[tuple[str, str]]


def _binding_decision(
    task: PlanningTask | None, current: Attempt | None, run: NativeRun, known: _Known | None = None
) -> tuple[str, str | None]:
    """Rule 2. Returns (binding, reason)."""
    B = NativeRun.Binding
    if task is None:
        return B.REJECTED, "unknown_task"
    if run.claimed_attempt_id is not None:
        if known is None:
            claimed = Attempt.objects.filter(id=run.claimed_attempt_id).values("task_id", "superseded_at").first()
        else:
            claimed = known.claimed.get(run.claimed_attempt_id)
        if claimed is None:
            return B.REJECTED, "unknown_attempt"
        if claimed["task_id"] != task.id:
            return B.REJECTED, "task_mismatch"
        if claimed["superseded_at"] is not None or current is None or current.id != run.claimed_attempt_id:
            return B.REJECTED, "superseded"
    # A retired id is refused at once, even while no attempt is current
    # (e.g. a task with only imported history): it can never bind.
    if known is None:
        retired = _is_retired(run)
    else:
        retired = (RetiredNativeId.Kind.TASK, run.native_task_id) in known.retired or (
            RetiredNativeId.Kind.RUN, run.native_run_id
        ) in known.retired
    if retired:
        return B.REJECTED, "retired_native_id"
    if run.claimed_attempt_id is None:
        if current is None:
            return B.UNBOUND, "no_current_attempt"
        if run.created_at is None:
            return B.REJECTED, "legacy_run_without_created_at"
        if run.created_at < current.requested_at:
            return B.REJECTED, "predates_current_attempt"
    if current.native_run_id and current.native_run_id != run.native_run_id:
        return B.REJECTED, "attempt_already_bound"
    return B.BOUND, None


def _bind(
    task: PlanningTask, current: Attempt, run: NativeRun, *, actor: str, now: dt.datetime, known: _Known | None = None
) -> tuple[list[str], list[str]]:
    """Try to bind an unbound run. Returns (run fields, attempt fields) to save."""
    binding, reason = _binding_decision(task, current, run, known)
    if binding == run.binding and reason == run.binding_reason:
        return [], []
    run.binding = binding
    run.binding_reason = reason
    run_fields = ["binding", "binding_reason"]
    attempt_fields: list[str] = []
    if binding == NativeRun.Binding.BOUND:
        run.attempt = current
        run_fields.append("attempt")
        current.native_task_id = run.native_task_id
        current.native_run_id = run.native_run_id
        attempt_fields += ["native_task_id", "native_run_id"]
        ledger_append(
            type="native_run.bound",
            actor=actor,
            task_id=task.id,
            attempt_id=current.id,
            data={"executor": run.executor, "native_task_id": run.native_task_id, "native_run_id": run.native_run_id},
            at=now,
        )
    elif binding == NativeRun.Binding.REJECTED:
        ledger_append(
            type="native_run.rejected",
            actor=actor,
            task_id=task.id if task else None,
            attempt_id=run.claimed_attempt_id,
            data={
                "executor": run.executor,
                "native_task_id": run.native_task_id,
                "native_run_id": run.native_run_id,
                "reason": reason,
            },
            at=now,
        )
    return run_fields, attempt_fields


def _new_run_fields(report: RunReport, task: PlanningTask | None, now: dt.datetime) -> dict[str, Any]:
    """A new native run as its first report describes it; its claims are fixed from then on."""
    return dict(
        native_task_id=report.native_task_id,
        task_slug=report.task or "",
        task=task,
        claimed_attempt_id=report.attempt_id,
        status=report.status,
        phase=report.phase or "",
        created_at=report.created_at,
        first_seen_at=now,
        last_seen_at=now,
        message=report.message or "",
    )


def _report_into_locked(
    task: PlanningTask | None, current: Attempt | None, report: RunReport, *, actor: str, now: dt.datetime
) -> tuple[NativeRun, bool]:
    run = unique_or_none(
        NativeRun.objects.select_for_update(of=("self",)).filter(
            executor=report.executor, native_run_id=report.native_run_id
        )
    )
    created = False
    if run is None:
        # Reports naming a known task are serialized by the task lock; for the
        # rest, the unique (executor, native_run_id) decides who inserts.
        run, created = NativeRun.objects.get_or_create(
            executor=report.executor,
            native_run_id=report.native_run_id,
            defaults=_new_run_fields(report, task, now),
        )
        if not created:
            run = NativeRun.objects.select_for_update(of=("self",)).get(id=run.id)
    run_fields, attempt_fields, task_fields = _apply_report(task, current, run, created, report, actor=actor, now=now)
    if run_fields:
        run.save(update_fields=list(dict.fromkeys(run_fields)))
    if attempt_fields and current is not None:
        current.save(update_fields=list(dict.fromkeys(attempt_fields)))
        _save_task(task, task_fields, actor)
    return run, created


def _apply_report(
    task: PlanningTask | None,
    current: Attempt | None,
    run: NativeRun,
    created: bool,
    report: RunReport,
    *,
    actor: str,
    now: dt.datetime,
    known: _Known | None = None,
) -> tuple[list[str], list[str], list[str]]:
    """The rules of one report on locked rows, in memory: changes the run,
    the current attempt and the task, appends the ledger facts, and returns
    the (run, attempt, task) fields to save. Single reports and batches both
    go through here, so they decide alike."""
    run_fields: list[str] = []
    attempt_fields: list[str] = []
    if created:
        ledger_append(
            type="native_run.reported",
            actor=actor,
            task_id=task.id if task else None,
            attempt_id=report.attempt_id,
            data={
                "executor": run.executor,
                "native_task_id": run.native_task_id,
                "native_run_id": run.native_run_id,
                "status": run.status,
                "phase": run.phase,
                "new": True,
            },
            at=now,
        )
    else:
        if (run.task_id != (task.id if task else None)) or (
            report.attempt_id is not None and run.claimed_attempt_id not in (None, report.attempt_id)
        ):
            # A run's claims are fixed by its first report; a later report that
            # claims something else is recorded and changes nothing.
            ledger_append(
                type="native_run.conflicting_report",
                actor=actor,
                task_id=run.task_id,
                attempt_id=report.attempt_id,
                data={"native_run_id": run.native_run_id, "task": report.task, "status": report.status},
                at=now,
            )
            return [], [], []
        run.last_seen_at = now
        run_fields.append("last_seen_at")
        if report.status != run.status:
            if run.status in NativeRun.TERMINAL or NativeRun.RANK[report.status] < NativeRun.RANK[run.status]:
                ledger_append(
                    type="native_run.late_report",
                    actor=actor,
                    task_id=run.task_id,
                    attempt_id=run.attempt_id or run.claimed_attempt_id,
                    data={"native_run_id": run.native_run_id, "status": report.status, "current": run.status},
                    at=now,
                )
                return run_fields, [], []
            ledger_append(
                type="native_run.reported",
                actor=actor,
                task_id=run.task_id,
                attempt_id=run.attempt_id or run.claimed_attempt_id,
                data={"native_run_id": run.native_run_id, "from": run.status, "status": report.status,
                      "phase": report.phase or run.phase},
                at=now,
            )
            run.status = report.status
            run_fields.append("status")
        for field in ("phase", "message"):
            value = getattr(report, field)
            if value and value != getattr(run, field):
                setattr(run, field, value)
                run_fields.append(field)
    if run.binding == NativeRun.Binding.UNBOUND and task is not None:
        more_run, more_attempt = _bind(task, current, run, actor=actor, now=now, known=known)
        run_fields += more_run
        attempt_fields += more_attempt
    elif run.binding == NativeRun.Binding.UNBOUND and task is None:
        more_run, _ = _bind(None, None, run, actor=actor, now=now, known=known)  # rejected: unknown task
        run_fields += more_run
    # Only a run bound to the task's current attempt moves anything; a run of
    # a superseded attempt is history (rule 2).
    if run.binding == NativeRun.Binding.BOUND and current is not None and run.attempt_id == current.id:
        current.last_heartbeat_at = now
        attempt_fields.append("last_heartbeat_at")
        attempt_fields += _apply_run_status(current, run, actor=actor, now=now)
    task_fields: list[str] = []
    if attempt_fields and current is not None:
        task_fields = _project_task(task, current, attempt_fields, actor=actor)
    return run_fields, attempt_fields, task_fields


def _task_id_for(report: RunReport) -> int | None:
    if not report.task:
        return None
    return unique_or_none(PlanningTask.objects.filter(slug=report.task).values_list("id", flat=True))


def native_run_report(*, report: RunReport, actor: str) -> tuple[NativeRun, bool]:
    """Upsert a native run's report and bind it by attempt (rule 2). Reporting
    the same state twice is a heartbeat; a late or out-of-order report is
    recorded and changes nothing else. Returns (run, created)."""
    task_id = _task_id_for(report)
    # A report appends up to five facts (run seen, bound, attempt and task
    # status, plan); one INSERT writes them, as the batch path does.
    with transaction.atomic(), ledger_batch():
        task = _lock_task(task_id=task_id) if task_id is not None else None
        now = timezone.now()
        current = _lock_current_attempt(task) if task is not None else None
        return _report_into_locked(task, current, report, actor=actor, now=now)


class _RunKeyTaken(Exception):
    """A concurrent transaction inserted one of the batch's new native runs."""


def native_run_report_batch(*, reports: list[RunReport], actor: str) -> list[tuple[NativeRun, bool]]:
    """Apply many reports in one transaction, in the order given, with the
    same rules as single reports and a fixed number of statements: every row
    is read (and locked) once, the decisions are made in memory in report
    order, and the writes are one statement per table. Locks are taken in the
    stable order tasks by id -> current attempts -> native runs by
    (executor, native_run_id), so concurrent batches never deadlock; plan rows
    are refreshed once at the end."""
    if not reports:
        return []
    slugs = {r.task for r in reports if r.task}
    ids = dict(PlanningTask.objects.filter(slug__in=slugs).values_list("slug", "id")) if slugs else {}
    with transaction.atomic():
        for _ in range(3):
            try:
                with transaction.atomic(), deferred_plan_refresh():
                    return _report_batch_locked(reports, ids, actor=actor)
            except _RunKeyTaken:
                # That run is committed now: the next round finds and locks it.
                continue
        raise ServiceError("conflict", "Native runs of this batch kept being created concurrently; retry.")


def _report_batch_locked(
    reports: list[RunReport], ids: dict[str, int], *, actor: str
) -> list[tuple[NativeRun, bool]]:
    task_ids = sorted(set(ids.values()))
    tasks = {
        t.id: t
        for t in PlanningTask.objects.select_for_update(of=("self",)).filter(id__in=task_ids).order_by("id")
    } if task_ids else {}
    if len(tasks) != len(task_ids):
        raise not_found("task", str(min(set(task_ids) - set(tasks))))
    currents = {
        a.task_id: a
        for a in Attempt.objects.select_for_update(of=("self",))
        .filter(task_id__in=task_ids, superseded_at__isnull=True)
        .order_by("task_id")
    } if task_ids else {}
    run_ids_by_executor: dict[str, set[str]] = defaultdict(set)
    for r in reports:
        run_ids_by_executor[r.executor].add(r.native_run_id)
    runs_q = Q()
    for executor, run_ids in sorted(run_ids_by_executor.items()):
        runs_q |= Q(executor=executor, native_run_id__in=sorted(run_ids))
    runs = {
        (run.executor, run.native_run_id): run
        for run in NativeRun.objects.select_for_update(of=("self",)).filter(runs_q).order_by("executor", "native_run_id")
    }
    claimed_ids = {r.attempt_id for r in reports if r.attempt_id is not None} | {
        run.claimed_attempt_id for run in runs.values() if run.claimed_attempt_id is not None
    }
    claimed = (
        {row["id"]: row for row in Attempt.objects.filter(id__in=claimed_ids).values("id", "task_id", "superseded_at")}
        if claimed_ids
        else {}
    )
    native_task_ids = {r.native_task_id for r in reports} | {run.native_task_id for run in runs.values()}
    native_run_ids = {r.native_run_id for r in reports}
    retired = set(
        RetiredNativeId.objects.filter(
            Q(kind=RetiredNativeId.Kind.TASK, value__in=native_task_ids)
            | Q(kind=RetiredNativeId.Kind.RUN, value__in=native_run_ids)
        ).values_list("kind", "value")
    )
    known = _Known(claimed=claimed, retired=retired)
    now = timezone.now()

    new_runs: dict[tuple[str, str], NativeRun] = {}
    run_fields: dict[tuple[str, str], list[str]] = defaultdict(list)
    attempt_fields: dict[uuid.UUID, list[str]] = defaultdict(list)
    task_fields: dict[int, list[str]] = defaultdict(list)
    # Each answer shows the run as its own report left it, like a single report.
    results: list[tuple[NativeRun, bool, tuple[str, str]]] = []
    with ledger_batch():
        for report in reports:
            task_id = ids.get(report.task) if report.task else None
            task = tasks.get(task_id) if task_id is not None else None
            current = currents.get(task_id) if task is not None else None
            key = (report.executor, report.native_run_id)
            run = runs.get(key)
            created = run is None
            if created:
                run = NativeRun(
                    executor=report.executor,
                    native_run_id=report.native_run_id,
                    **_new_run_fields(report, task, now),
                )
                runs[key] = new_runs[key] = run
            changed_run, changed_attempt, changed_task = _apply_report(
                task, current, run, created, report, actor=actor, now=now, known=known
            )
            if key not in new_runs:
                run_fields[key] += changed_run
            if changed_attempt and current is not None:
                attempt_fields[current.id] += changed_attempt
                if changed_task:
                    task_fields[task.id] += changed_task
                    _refresh_plan(task, actor)
            results.append((copy.copy(run), created, key))
        if new_runs:
            try:
                # Inserted in key order, as existing runs are locked: two
                # batches creating the same runs then wait, never deadlock.
                NativeRun.objects.bulk_create([new_runs[k] for k in sorted(new_runs)])
            except IntegrityError as exc:
                if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) == "native_run_unique":
                    raise _RunKeyTaken from exc
                raise
        _bulk_save([runs[k] for k in run_fields], run_fields.values())
        by_attempt = {a.id: a for a in currents.values()}
        _bulk_save([by_attempt[i] for i in attempt_fields], attempt_fields.values())
        for task_id in task_fields:
            # A bulk UPDATE does not apply auto_now; save() would.
            tasks[task_id].updated_at = timezone.now()
            task_fields[task_id].append("updated_at")
        _bulk_save([tasks[i] for i in task_fields], task_fields.values())
    for snapshot, _, key in results:
        snapshot.pk = runs[key].pk
        snapshot._state.adding = False
        snapshot._state.db = runs[key]._state.db
    return [(snapshot, created) for snapshot, created, _ in results]


def _bulk_save(rows: list, fields_per_row) -> None:
    """One UPDATE for all rows, of the union of the fields they changed."""
    fields = list(dict.fromkeys(f for fields in fields_per_row for f in fields))
    bulk_update_unnest(rows, fields)


def native_run_try_bind(*, run_id: int, actor: str = "system") -> str:
    """Reconciliation: try again to bind a run that is still unbound."""
    with transaction.atomic():
        row = NativeRun.objects.filter(id=run_id).values("task_id", "binding").first()
        if row is None or row["binding"] != NativeRun.Binding.UNBOUND:
            return row["binding"] if row else "missing"
        task = _lock_task(task_id=row["task_id"]) if row["task_id"] else None
        now = timezone.now()
        current = _lock_current_attempt(task) if task is not None else None
        run = NativeRun.objects.select_for_update(of=("self",)).get(id=run_id)
        if run.binding != NativeRun.Binding.UNBOUND:
            return run.binding
        run_fields, attempt_fields = _bind(task, current, run, actor=actor, now=now)
        if run.binding == NativeRun.Binding.BOUND:
            attempt_fields += _apply_run_status(current, run, actor=actor, now=now)
        if run_fields:
            run.save(update_fields=run_fields)
        if attempt_fields:
            current.save(update_fields=list(dict.fromkeys(attempt_fields)))
            _save_task(task, _project_task(task, current, attempt_fields, actor=actor), actor)
        return run.binding
