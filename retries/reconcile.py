"""One reconciliation pass (Celery beat runs it every few seconds;
``manage.py reconcile`` runs one by hand).

Each step selects only rows that still need something, through a partial or
status index, so a pass costs in proportion to unsettled work and never to
history: unbound native runs (partial index ``native_run_unbound``), current
attempts that are launching or running or pending (partial index
``attempt_current_status``), failed and active tasks (index
``task_status_updated``). The querysets are module functions so that tests
can EXPLAIN exactly what a pass runs.

Every change goes through one service that re-checks under its row locks, so
two passes at once cannot both act on a row (the second finds it changed).
On PostgreSQL a session advisory lock also makes a second concurrent pass
step aside at once instead of doing the same reads.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.db import connection
from django.db.models import BooleanField, Case, Min, OuterRef, Q, QuerySet, Subquery, Value, When
from django.utils import timezone

from planning.models import PlanningTask, Procedure
from planning.services import plan_refresh, task_status_counts_fold
from retries import dispatch, executors, services
from retries.decisions import stall_check
from retries.dispatch import PUSHING_EXECUTORS
from retries.models import Attempt, NativeRun

log = logging.getLogger(__name__)

ADVISORY_LOCK_KEY = 0x6D63_7263  # "mcrc": one key for every reconciliation pass
ACTIVE_ATTEMPT = (Attempt.Status.LAUNCHING, Attempt.Status.RUNNING)


@dataclass
class Summary:
    skipped: bool = False
    bound: int = 0
    rejected: int = 0
    polled: int = 0
    synced: int = 0
    stalled: int = 0
    retried: int = 0
    blocked: int = 0
    relaunched: int = 0
    plans_refreshed: int = 0
    keys_expired: int = 0
    errors: int = 0
    plans: set = field(default_factory=set, repr=False)

    def as_dict(self) -> dict:
        data = asdict(self)
        data.pop("plans")
        return data

    def __str__(self) -> str:
        if self.skipped:
            return "reconcile: another pass is running; skipped."
        return "reconcile: " + ", ".join(f"{k} {v}" for k, v in self.as_dict().items() if k != "skipped")


def _batch() -> int:
    return int(getattr(settings, "RECONCILE_BATCH_SIZE", 500))


def _consistent(prefix: str = "task__") -> Q:
    # Rule 7: a task found inconsistent is not scheduled until a repair.
    return Q(**{f"{prefix}inconsistent_since__isnull": True})


# --- What a pass reads (each one index-friendly) ---------------------------------------


def unbound_runs() -> QuerySet:
    return (
        NativeRun.objects.filter(binding=NativeRun.Binding.UNBOUND)
        .filter(Q(task__isnull=True) | _consistent())
        .order_by("id")
        .values_list("id", flat=True)
    )


def active_attempts() -> QuerySet:
    """Current attempts that are launching or running, with their executor
    (the caller keeps those of pollable executors)."""
    return (
        Attempt.objects.filter(superseded_at__isnull=True, status__in=ACTIVE_ATTEMPT)
        .filter(_consistent())
        .order_by()
        .values_list("id", "task__procedure__executor")
    )


def tasks_lagging() -> QuerySet:
    """Active tasks whose current attempt already finished, or whose bound
    native run is terminal while the attempt is not (seed 002's safety net).

    It starts from the active tasks and probes each one's current attempt
    through an index on ``task_id``, and that attempt's bound runs through
    the one on ``attempt_id``: a join would read every current attempt ever made
    to keep the active tasks' ones, a cost that grows with history. Scalar
    subqueries rather than EXISTS, because PostgreSQL may run an EXISTS as a
    hashed subplan, which reads all current attempts again."""
    terminal_run = (
        NativeRun.objects.filter(
            attempt_id=OuterRef("pk"), binding=NativeRun.Binding.BOUND, status__in=NativeRun.TERMINAL
        )
        .order_by()
        .values("id")[:1]
    )
    # One probe of the current attempt per task; its runs are probed only
    # when it is not finished (CASE stops at the first match).
    current_lags = (
        Attempt.objects.filter(task_id=OuterRef("pk"), superseded_at__isnull=True)
        .order_by()
        .alias(terminal_run=Subquery(terminal_run))
        .annotate(
            lags=Case(
                When(status__in=Attempt.TERMINAL, then=Value(True)),
                When(
                    Q(status__in=(Attempt.Status.PENDING, *ACTIVE_ATTEMPT)) & Q(terminal_run__isnull=False),
                    then=Value(True),
                ),
                default=Value(False),
                output_field=BooleanField(),
            )
        )
        .values("lags")[:1]
    )
    return (
        PlanningTask.objects.filter(status__in=PlanningTask.ACTIVE_STATUSES)
        .filter(_consistent(""))
        .alias(lags=Subquery(current_lags, output_field=BooleanField()))
        .filter(lags=True)
        .values_list("id", flat=True)
    )


def stale_attempts(cutoff: dt.datetime) -> QuerySet:
    """Current active attempts silent since before ``cutoff`` (the shortest
    stall timeout); each one's own procedure timeout is checked after."""
    return (
        Attempt.objects.filter(superseded_at__isnull=True, status__in=ACTIVE_ATTEMPT)
        .filter(Q(last_heartbeat_at__lt=cutoff) | Q(last_heartbeat_at__isnull=True))
        .filter(_consistent())
        .order_by()
        .values_list("id", "last_heartbeat_at", "requested_at", "task__procedure__stall_timeout_seconds")
    )


def failed_tasks() -> QuerySet:
    return (
        PlanningTask.objects.filter(status=PlanningTask.Status.FAILED)
        .filter(_consistent(""))
        # A paused plan holds its failed tasks until an operator resumes it.
        .filter(Q(plan__isnull=True) | Q(plan__paused_at__isnull=True))
        .order_by("updated_at")
        .values_list("id", "plan_id")
    )


def stuck_pending_attempts(cutoff: dt.datetime) -> QuerySet:
    """Pushed launches still pending long after their request: the launch
    message was lost (a broker down at commit time, a worker killed before
    it acknowledged on a transport that forgets), or a paused plan held it
    and has resumed since. Launching is idempotent, so sending it again is
    safe. While a plan is paused its pending launches are left alone."""
    return (
        Attempt.objects.filter(superseded_at__isnull=True, status=Attempt.Status.PENDING, requested_at__lt=cutoff)
        .filter(_consistent(), task__procedure__executor__in=sorted(PUSHING_EXECUTORS))
        .filter(Q(task__plan__isnull=True) | Q(task__plan__paused_at__isnull=True))
        .order_by()
        .values_list("id", flat=True)
    )


# --- The pass ------------------------------------------------------------------------


@contextmanager
def _pass_lock() -> Iterator[bool]:
    if connection.vendor != "postgresql":
        # SQLite serializes writers; the services' re-checks make overlap harmless.
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])


def _each(summary: Summary, items, action: Callable) -> None:
    """Run one service per item; a row that fails is logged and counted, and
    the pass goes on with the others."""
    for item in items:
        try:
            action(item)
        except Exception:
            summary.errors += 1
            log.exception("reconcile: step failed for %r", item)


def reconcile_pass(*, now: dt.datetime | None = None, use_lock: bool = True) -> Summary:
    """One pass. ``use_lock=False`` lets a test run two passes truly at once
    to show that the services alone keep them from doing anything twice."""
    if not use_lock:
        return _run(now or timezone.now())
    with _pass_lock() as acquired:
        if not acquired:
            return Summary(skipped=True)
        return _run(now or timezone.now())


def _run(now: dt.datetime) -> Summary:
    summary = Summary()
    batch = _batch()

    def bind(run_id: int) -> None:
        result = services.native_run_try_bind(run_id=run_id)
        if result == NativeRun.Binding.BOUND:
            summary.bound += 1
        elif result == NativeRun.Binding.REJECTED:
            summary.rejected += 1

    _each(summary, list(unbound_runs()[:batch]), bind)

    pollable = [name for name in (Procedure.Executor.values) if executors.get_executor(name).pollable]
    if pollable:

        def poll(row: tuple[uuid.UUID, str]) -> None:
            if executors.attempt_poll(attempt_id=row[0], executor=row[1]):
                summary.polled += 1

        rows = [row for row in active_attempts().iterator() if row[1] in pollable][:batch]
        _each(summary, rows, poll)

    def sync(task_id: int) -> None:
        if services.task_sync_with_attempt(task_id=task_id):
            summary.synced += 1

    _each(summary, list(tasks_lagging()[:batch]), sync)

    shortest = Procedure.objects.aggregate(s=Min("stall_timeout_seconds"))["s"]
    if shortest is not None:
        coalesce = settings.HEARTBEAT_COALESCE_SECONDS

        def stall(row: tuple) -> None:
            attempt_id, heartbeat, requested_at, timeout = row
            # The same decision the service re-checks under its locks.
            check = stall_check(
                now=now, last_sign_of_life=heartbeat or requested_at, timeout_seconds=timeout, coalesce_seconds=coalesce
            )
            if check.stalled and services.attempt_fail_if_stalled(attempt_id=attempt_id, now=now):
                summary.stalled += 1

        cutoff = now - dt.timedelta(seconds=shortest + coalesce)
        _each(summary, list(stale_attempts(cutoff)[:batch]), stall)

    def retry(row: tuple[int, uuid.UUID | None]) -> None:
        task_id, plan_id = row
        attempt = services.task_retry_or_block(task_id=task_id)
        if attempt is not None:
            summary.retried += 1
        elif PlanningTask.objects.filter(id=task_id, status=PlanningTask.Status.BLOCKED).exists():
            summary.blocked += 1
        if plan_id is not None:
            summary.plans.add(plan_id)

    def retry_many(rows: list[tuple[int, uuid.UUID | None]]) -> None:
        # One set-based transaction per chunk: per task, the single path costs
        # about 13 round trips. A chunk that fails is redone task by task, so
        # one bad row is logged alone and does not hold back the others.
        ids = [task_id for task_id, _ in rows]
        try:
            attempts = services.task_retry_or_block_many(task_ids=ids)
        except Exception:
            log.exception("reconcile: batched retry failed, retrying task by task")
            _each(summary, rows, retry)
            return
        summary.retried += len(attempts)
        summary.blocked += PlanningTask.objects.filter(id__in=ids, status=PlanningTask.Status.BLOCKED).count()
        summary.plans.update(plan_id for _, plan_id in rows if plan_id is not None)

    failed = list(failed_tasks()[:batch])
    if failed:
        retry_many(failed)

    relaunch_after = settings.RECONCILE_RELAUNCH_AFTER_SECONDS

    def relaunch(attempt_id: uuid.UUID) -> None:
        dispatch.launch_again(attempt_id=attempt_id)
        summary.relaunched += 1

    _each(summary, list(stuck_pending_attempts(now - dt.timedelta(seconds=relaunch_after))[:batch]), relaunch)

    def refresh(plan_id: uuid.UUID) -> None:
        plan_refresh(plan_id=plan_id)
        summary.plans_refreshed += 1

    _each(summary, sorted(summary.plans, key=str), refresh)
    summary.keys_expired = services.idempotency_keys_expire(now=now)
    task_status_counts_fold()  # keeps the board's per-status count a read of a few rows
    return summary
