"""Native run reports (rules 2, 4, 5): one implementation for a batch; a
single report is the batch of one. Every row is read and locked once
(tasks by id -> current attempts -> native runs by (executor,
native_run_id)), the decisions are made in memory in report order, and the
writes are one statement per table."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from missioncontrol.db import Writes, bulk_insert_new_keys, instance_of, unique_or_none
from missioncontrol.errors import ServiceError
from planning.ledger import ledger_append, ledger_batch, ledger_batch_into
from planning.models import PlanningTask

from ..decisions import (
    ATTEMPT_STATUS_FOR_RUN,
    ClaimedAttempt,
    CurrentAttempt,
    RetiredId,
    RunFacts,
    decide_binding,
    run_status_move,
)
from ..models import Attempt, NativeRun, RetiredNativeId
from . import report_reads as reads
from .attempts import retire_native_ids
from .base import (
    AS,
    attempt_status_set,
    deferred_plan_refresh,
    lock_current_attempt,
    lock_task,
    project_task,
    refresh_plan,
    save_task,
    schedulable_tasks,
    set_failure,
)

B = NativeRun.Binding


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

    def __post_init__(self) -> None:
        # Callers may pass the claimed attempt id as text; the decision
        # compares ids, so it is one type from here on.
        if self.attempt_id is not None and not isinstance(self.attempt_id, uuid.UUID):
            self.attempt_id = uuid.UUID(str(self.attempt_id))


def apply_run_status(attempt: Attempt, run: NativeRun, *, actor: str, now: dt.datetime) -> list[str]:
    target = ATTEMPT_STATUS_FOR_RUN[run.status]
    fields = attempt_status_set(attempt, target, actor=actor, now=now, data={"native_run_id": run.native_run_id})
    if target == AS.FAILED and "status" in fields:
        fields += set_failure(
            attempt, kind="executor_failed", phase=run.phase or None, message=run.message or "The native run failed."
        )
    return fields


def clock_skew() -> dt.timedelta:
    return dt.timedelta(seconds=settings.REPORT_CLOCK_SKEW_SECONDS)


@dataclass
class _Known:
    """What the batch read up front: claimed attempts by id and the retired
    ids among its runs' native ids (grown as reports retire more)."""

    claimed: dict[uuid.UUID, ClaimedAttempt]
    retired: dict[tuple[str, str], RetiredId]
    retire_rows: list[tuple]


def _read_known(reports: list[RunReport], runs: dict[tuple[str, str], NativeRun]) -> _Known:
    claimed_ids = {r.attempt_id for r in reports if r.attempt_id is not None} | {
        run.claimed_attempt_id for run in runs.values() if run.claimed_attempt_id is not None
    }
    native_task_ids = {r.native_task_id for r in reports} | {run.native_task_id for run in runs.values()}
    native_run_ids = {r.native_run_id for r in reports}
    claimed, retired = reads.read_known(claimed_ids, native_task_ids, native_run_ids)
    return _Known(claimed=claimed, retired=retired, retire_rows=[])


def _bind(
    task: PlanningTask | None, current: Attempt | None, run: NativeRun, *, actor: str, now: dt.datetime, known: _Known
) -> tuple[list[str], list[str]]:
    """Decide an unbound run's binding (``decide_binding``) and apply it.
    Returns (run fields, attempt fields) to save."""
    retired = known.retired.get((RetiredNativeId.Kind.TASK, run.native_task_id)) or known.retired.get(
        (RetiredNativeId.Kind.RUN, run.native_run_id)
    )
    decision = decide_binding(
        run=RunFacts(run.executor, run.native_task_id, run.native_run_id, run.claimed_attempt_id, run.created_at),
        task_id=task.id if task else None,
        current=(
            CurrentAttempt(current.id, current.number, current.requested_at, current.native_run_id)
            if current is not None
            else None
        ),
        claimed=known.claimed.get(run.claimed_attempt_id) if run.claimed_attempt_id else None,
        retired=retired,
        now=now,
        clock_skew=clock_skew(),
    )
    if decision.retire_claimed and task is not None and run.claimed_attempt_id is not None:
        # The run's own claim tied its ids to a superseded attempt: retire
        # them, so no later report carrying them binds (rule 2).
        claimed = known.claimed[run.claimed_attempt_id]
        for kind, value in (
            (RetiredNativeId.Kind.TASK, run.native_task_id),
            (RetiredNativeId.Kind.RUN, run.native_run_id),
        ):
            if (kind, value) not in known.retired:
                known.retired[(kind, value)] = RetiredId(kind, value, claimed.number, now)
                known.retire_rows.append((kind, value, task.id, claimed.id, now))
    if decision.state == run.binding and decision.reason == run.binding_reason:
        return [], []
    run.binding = decision.state
    run.binding_reason = decision.reason
    run.binding_facts = decision.facts
    run_fields = ["binding", "binding_reason", "binding_facts"]
    attempt_fields: list[str] = []
    event = {
        "executor": run.executor,
        "native_task_id": run.native_task_id,
        "native_run_id": run.native_run_id,
        "reason": decision.reason,
        "facts": decision.facts,
        "explanation": decision.explanation,
    }
    if decision.state == B.BOUND:
        # The decision binds only to the task's current attempt.
        assert task is not None and current is not None
        run.attempt = current
        run_fields.append("attempt")
        current.native_task_id = run.native_task_id
        current.native_run_id = run.native_run_id
        attempt_fields += ["native_task_id", "native_run_id"]
        ledger_append(type="native_run.bound", actor=actor, task_id=task.id, attempt_id=current.id, data=event, at=now)
    elif decision.state == B.REJECTED:
        ledger_append(
            type="native_run.rejected",
            actor=actor,
            task_id=task.id if task else None,
            attempt_id=run.claimed_attempt_id,
            data=event,
            at=now,
        )
    return run_fields, attempt_fields


def _snapshot(run: NativeRun) -> NativeRun:
    """The run as it is now, for the answer (a later report of the same batch
    may change it): what ``copy.copy`` gives a model (its values, its state,
    its cached relations), without the pickle protocol's walk."""
    clone = instance_of(NativeRun, run.__dict__.items(), db=run._state.db, adding=run._state.adding)
    clone._state.fields_cache = dict(run._state.fields_cache)
    return clone


def _new_run(report: RunReport, task: PlanningTask | None, now: dt.datetime, actor: str) -> NativeRun:
    """A new native run as its first report describes it; its claims are fixed from then on."""
    return NativeRun(
        executor=report.executor,
        native_run_id=report.native_run_id,
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
        reported_by=actor,
    )


def _apply_report(
    task: PlanningTask | None,
    current: Attempt | None,
    run: NativeRun,
    created: bool,
    report: RunReport,
    *,
    actor: str,
    now: dt.datetime,
    known: _Known,
) -> tuple[list[str], list[str], list[str]]:
    """The rules of one report on locked rows, in memory: changes the run,
    the current attempt and the task, appends the ledger facts, and returns
    the (run, attempt, task) fields to save."""
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
        if run.reported_by != actor:
            run.reported_by = actor
            run_fields.append("reported_by")
        move = run_status_move(run.status, report.status)
        if move.late:
            ledger_append(
                type="native_run.late_report",
                actor=actor,
                task_id=run.task_id,
                attempt_id=run.attempt_id or run.claimed_attempt_id,
                data={
                    "native_run_id": run.native_run_id,
                    "status": report.status,
                    "current": run.status,
                    "reason": move.reason,
                },
                at=now,
            )
            return run_fields, [], []
        if move.apply:
            ledger_append(
                type="native_run.reported",
                actor=actor,
                task_id=run.task_id,
                attempt_id=run.attempt_id or run.claimed_attempt_id,
                data={
                    "native_run_id": run.native_run_id,
                    "from": run.status,
                    "status": report.status,
                    "phase": report.phase or run.phase,
                },
                at=now,
            )
            run.status = report.status
            run_fields.append("status")
        for field in ("phase", "message"):
            value = getattr(report, field)
            if value and value != getattr(run, field):
                setattr(run, field, value)
                run_fields.append(field)
    if run.binding == B.UNBOUND:
        more_run, more_attempt = _bind(task, current if task else None, run, actor=actor, now=now, known=known)
        run_fields += more_run
        attempt_fields += more_attempt
    # Only a run bound to the task's current attempt moves anything; a run of
    # a superseded attempt is history (rule 2).
    if run.binding == B.BOUND and current is not None and run.attempt_id == current.id:
        current.last_heartbeat_at = now
        attempt_fields.append("last_heartbeat_at")
        attempt_fields += apply_run_status(current, run, actor=actor, now=now)
    task_fields: list[str] = []
    if attempt_fields and current is not None and task is not None:
        task_fields = project_task(task, current, attempt_fields, actor=actor)
    return run_fields, attempt_fields, task_fields


def native_run_report(*, report: RunReport, actor: str) -> tuple[NativeRun, bool]:
    """Upsert one native run's report and bind it by attempt (rule 2): the
    batch of one. Reporting the same state twice is a heartbeat; a late or
    out-of-order report is recorded and changes nothing else. Returns
    (run, created)."""
    return native_run_report_batch(reports=[report], actor=actor)[0]


# The (executor, native_run_id) of runs this process has seen exist. Only
# the single report path reads it, to decide whether a report is worth the
# heartbeat statement first (``heartbeats.native_run_report_one``): for a
# run never seen here it is a wasted round trip, the run being most likely
# new. A stale entry (a run deleted, a rolled-back batch) costs only that
# statement again; a run another process made takes the full path once.
_KNOWN_MAX = 100_000
_known_runs: dict[tuple[str, str], None] = {}


def _remember_runs(results: list[tuple[NativeRun, bool]]) -> None:
    if len(_known_runs) >= _KNOWN_MAX:
        _known_runs.clear()
    for run, _ in results:
        _known_runs[(run.executor, run.native_run_id)] = None


def run_known(executor: str, native_run_id: str) -> bool:
    """Whether this process has seen the run exist (a hint, see above)."""
    return (executor, native_run_id) in _known_runs


def known_runs_clear() -> None:
    _known_runs.clear()


class _RunKeyTaken(Exception):
    """A concurrent transaction inserted one of the batch's new native runs."""


def native_run_report_batch(*, reports: list[RunReport], actor: str) -> list[tuple[NativeRun, bool]]:
    """Apply reports in one transaction, in the order given. Locks are
    taken in the stable order tasks by id -> current attempts -> native runs
    by (executor, native_run_id), so concurrent batches never deadlock;
    plan rows are refreshed once at the end."""
    if not reports:
        return []
    with transaction.atomic():
        for _ in range(3):
            try:
                with deferred_plan_refresh():
                    results = _report_batch_locked(reports, actor=actor)
                _remember_runs(results)
                return results
            except _RunKeyTaken:
                # A concurrent batch committed one of our new runs. Nothing
                # was written yet (new runs are inserted first); the next
                # round finds and locks that run, keeping the locks it has.
                continue
        raise ServiceError("conflict", "Native runs of this batch kept being created concurrently; retry.")


def _report_batch_locked(reports: list[RunReport], *, actor: str) -> list[tuple[NativeRun, bool]]:
    tasks = reads.lock_tasks(sorted({r.task for r in reports if r.task}))
    ids = {t.slug: t.id for t in tasks.values()}
    currents = reads.lock_currents(sorted(tasks))
    runs = reads.lock_runs((r.executor, r.native_run_id) for r in reports)
    # Only a run still to be bound needs the claimed attempts and retired
    # ids: a report on a bound or rejected run (most of them) reads neither.
    binding = [
        r for r in reports if (run := runs.get((r.executor, r.native_run_id))) is None or run.binding == B.UNBOUND
    ]
    known = (
        _read_known(binding, {k: run for k, run in runs.items() if run.binding == B.UNBOUND})
        if binding
        else _Known(claimed={}, retired={}, retire_rows=[])
    )
    now = timezone.now()

    new_runs: dict[tuple[str, str], NativeRun] = {}
    run_fields: dict[tuple[str, str], list[str]] = defaultdict(list)
    attempt_fields: dict[uuid.UUID, list[str]] = defaultdict(list)
    task_fields: dict[int, list[str]] = defaultdict(list)
    # Each answer shows the run as its own report left it.
    results: list[tuple[NativeRun, bool, tuple[str, str]]] = []
    with ledger_batch():
        for report in reports:
            task_id = ids.get(report.task) if report.task else None
            task = tasks[task_id] if task_id is not None else None
            current = currents.get(task.id) if task is not None else None
            key = (report.executor, report.native_run_id)
            found = runs.get(key)
            created = found is None
            run = found if found is not None else _new_run(report, task, now, actor)
            if created:
                runs[key] = new_runs[key] = run
            changed_run, changed_attempt, changed_task = _apply_report(
                task, current, run, created, report, actor=actor, now=now, known=known
            )
            if key not in new_runs:
                run_fields[key] += changed_run
            if changed_attempt and current is not None:
                attempt_fields[current.id] += changed_attempt
                if changed_task and task is not None:
                    task_fields[task.id] += changed_task
                    refresh_plan(task, actor)
            results.append((_snapshot(run), created, key))
        # New runs first: a key taken meanwhile is found before anything
        # is written, and the round is retried in the same transaction.
        _insert_runs(new_runs)
        # Then every other write and the facts in one statement (``Writes``).
        writes = Writes()
        retire_native_ids(known.retire_rows, writes=writes)
        _bulk_save(writes, [runs[k] for k in run_fields], run_fields.values())
        by_attempt = {a.id: a for a in currents.values()}
        _bulk_save(writes, [by_attempt[i] for i in attempt_fields], attempt_fields.values())
        for task_id, changed in task_fields.items():
            # A bulk UPDATE does not apply auto_now; save() would.
            tasks[task_id].updated_at = timezone.now()
            changed.append("updated_at")
        _bulk_save(writes, [tasks[i] for i in task_fields], task_fields.values())
        ledger_batch_into(writes)
        writes.send()
    for snapshot, _, key in results:
        snapshot.pk = runs[key].pk
        snapshot._state.adding = False
        snapshot._state.db = runs[key]._state.db
    return [(snapshot, created) for snapshot, created, _ in results]


def _insert_runs(new_runs: dict[tuple[str, str], NativeRun]) -> None:
    """Inserted in key order, as existing runs are locked: two batches
    creating the same runs then wait for each other, never deadlock. A key
    a concurrent batch committed first is ``_RunKeyTaken``."""
    rows = [new_runs[k] for k in sorted(new_runs)]
    if not bulk_insert_new_keys(rows, key=("executor", "native_run_id")):
        # Take back the rows this round did insert (no one else saw them),
        # so that the next round creates them again with everything else.
        NativeRun.objects.filter(pk__in=[r.pk for r in rows if r.pk is not None]).delete()
        raise _RunKeyTaken


def _bulk_save(writes: Writes, rows: list, fields_per_row: Any) -> None:
    """One UPDATE for all rows, of the union of the fields they changed."""
    fields = list(dict.fromkeys(f for fields in fields_per_row for f in fields))
    writes.update_rows(rows, fields)


def native_run_try_bind(*, run_id: int, actor: str = "system") -> str:
    """Reconciliation: decide again the binding of a run still unbound."""
    with transaction.atomic(), ledger_batch():
        row = NativeRun.objects.filter(id=run_id).values("task_id", "binding").first()
        if row is None or row["binding"] != B.UNBOUND:
            return row["binding"] if row else "missing"
        task = lock_task(task_id=row["task_id"]) if row["task_id"] else None
        now = timezone.now()
        current = lock_current_attempt(task) if task is not None else None
        run = unique_or_none(NativeRun.objects.select_for_update(of=("self",)).filter(id=run_id))
        if run is None or run.binding != B.UNBOUND:
            return run.binding if run else "missing"
        if (
            task is not None
            and not schedulable_tasks([task], {task.id: current} if current else {}, actor=actor, now=now)[task.id].ok
        ):
            return run.binding
        known = _read_known([_as_report(run)], {})
        run_fields, attempt_fields = _bind(task, current, run, actor=actor, now=now, known=known)
        retire_native_ids(known.retire_rows)
        if run.binding == B.BOUND:
            assert task is not None and current is not None  # bound to the task's current attempt
            attempt_fields += apply_run_status(current, run, actor=actor, now=now)
        if run_fields:
            run.save(update_fields=run_fields)
        if attempt_fields and task is not None and current is not None:
            current.save(update_fields=list(dict.fromkeys(attempt_fields)))
            save_task(task, project_task(task, current, attempt_fields, actor=actor), actor)
        return run.binding


def _as_report(run: NativeRun) -> RunReport:
    return RunReport(
        executor=run.executor,
        native_task_id=run.native_task_id,
        native_run_id=run.native_run_id,
        task=run.task_slug or None,
        status=run.status,
        attempt_id=run.claimed_attempt_id,
        created_at=run.created_at,
    )
