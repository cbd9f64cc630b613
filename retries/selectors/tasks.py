"""Reads of tasks with their current attempt, diagnostics and timeline,
each built to a fixed number of queries whatever the number of tasks,
attempts or events."""

from __future__ import annotations

from typing import Any

from django.db.models import F, Func, IntegerField, Prefetch, QuerySet, Subquery

from planning.models import PlanningTask
from planning.selectors import FAILING_STATUSES
from retries.models import Attempt, PhaseOutcome


def current_attempts_prefetch() -> Prefetch:
    """Prefetch each task's current attempt (at most one, held by a partial
    unique constraint) into ``task.current_attempts``."""
    return Prefetch(
        "attempts",
        queryset=Attempt.objects.filter(superseded_at__isnull=True).select_related("requested_assignee"),
        to_attr="current_attempts",
    )


def task_queryset() -> QuerySet[PlanningTask]:
    return PlanningTask.objects.select_related("project__owner", "procedure", "plan", "assignee").prefetch_related(
        current_attempts_prefetch()
    )


def task_current_attempt(task: PlanningTask) -> Attempt | None:
    prefetched = getattr(task, "current_attempts", None)
    if prefetched is not None:
        return prefetched[0] if prefetched else None
    return task.attempts.filter(superseded_at__isnull=True).select_related("requested_assignee").first()


def task_diagnostics(task: PlanningTask, attempt: Attempt | None = None) -> dict[str, Any] | None:
    """Why a task is failed or blocked (seed 003): the failed phase, the kind
    of failure, the message and attempt n of max. None when nothing failed."""
    attempt = attempt if attempt is not None else task_current_attempt(task)
    if attempt is None or task.status not in (*FAILING_STATUSES, PlanningTask.Status.CANCELLED):
        return None
    kind, message = attempt.failure_kind, attempt.failure_message or ""
    if not kind and attempt.imported and attempt.status == Attempt.Status.FAILED:
        # The legacy system kept that it failed, not how.
        kind, message = "imported_failure", "Failed in the legacy system; the imported history keeps no detail."
    if not kind:
        return None
    return {
        "task": task.slug,
        "attempt_number": attempt.number,
        "max_attempts": task.max_attempts,
        "failed_phase": attempt.failure_phase,
        "failure_kind": kind,
        "message": message,
        "at": attempt.finished_at or (attempt.superseded_at if attempt.imported else None),
    }


def attempts_for_task(task: PlanningTask) -> QuerySet[Attempt]:
    """The attempt timeline, newest first, with phases and the successor's
    number, in a fixed number of queries."""
    return (
        Attempt.objects.filter(task_id=task.id)
        .select_related("requested_assignee", "superseded_by")
        .prefetch_related(Prefetch("phase_outcomes", queryset=PhaseOutcome.objects.order_by("at", "id")))
        .order_by("-number")
    )


def count_of(qs: QuerySet) -> Subquery:
    """``(SELECT count(*) …)`` correlated to the outer row. Grouping the
    subquery instead (``values().annotate(Count)``) made PostgreSQL
    aggregate every attempt of every task first."""
    return Subquery(qs.order_by().annotate(n=Func(F("id"), function="COUNT")).values("n"), output_field=IntegerField())
