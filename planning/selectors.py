"""Reads that span relations, each built to a fixed number of queries
whatever the number of tasks, attempts or events."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db.models import Count, Prefetch, QuerySet

from retries.models import Attempt, PhaseOutcome

from .models import Plan, PlanningTask

FAILING_STATUSES = PlanningTask.FAILING_STATUSES


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
    if attempt is None or not attempt.failure_kind or task.status not in (*FAILING_STATUSES, PlanningTask.Status.CANCELLED):
        return None
    return {
        "task": task.slug,
        "attempt_number": attempt.number,
        "max_attempts": task.max_attempts,
        "failed_phase": attempt.failure_phase,
        "failure_kind": attempt.failure_kind,
        "message": attempt.failure_message or "",
        "at": attempt.finished_at,
    }


def task_counts_by_status() -> dict[str, int]:
    """Tasks per status, counted from the tasks themselves (what the
    ``TaskStatusCount`` projection must agree with)."""
    return dict(PlanningTask.objects.order_by().values_list("status").annotate(n=Count("id")))


def plan_counts(plan_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
    """Counts per task status for each plan, read fresh in one query."""
    counts: dict[uuid.UUID, dict[str, int]] = defaultdict(dict)
    rows = (
        PlanningTask.objects.filter(plan_id__in=list(plan_ids))
        .values_list("plan_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for plan_id, status, n in rows:
        counts[plan_id][status] = n
    return counts


def plan_failed_tasks(plan_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Diagnostics of every failed or blocked task per plan, in two queries."""
    result: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    tasks = (
        PlanningTask.objects.filter(plan_id__in=list(plan_ids), status__in=FAILING_STATUSES)
        .prefetch_related(current_attempts_prefetch())
        .order_by("slug")
    )
    for task in tasks:
        diagnostics = task_diagnostics(task)
        if diagnostics:
            result[task.plan_id].append(diagnostics)
    return result


def plan_list_with_projection(plans: Iterable[Plan]) -> list[Plan]:
    """Attach ``counts`` and ``failed_tasks`` to each plan: three queries in
    all, whatever the number of plans and tasks."""
    plans = list(plans)
    ids = [p.id for p in plans]
    counts = plan_counts(ids)
    failed = plan_failed_tasks(ids)
    for plan in plans:
        plan.counts = {status: counts.get(plan.id, {}).get(status, 0) for status in PlanningTask.Status.values}
        plan.failed_tasks = failed.get(plan.id, [])
    return plans


def attempts_for_task(task: PlanningTask) -> QuerySet[Attempt]:
    """The attempt timeline, newest first, with phases and the successor's
    number, in a fixed number of queries."""
    return (
        Attempt.objects.filter(task_id=task.id)
        .select_related("requested_assignee", "superseded_by")
        .prefetch_related(Prefetch("phase_outcomes", queryset=PhaseOutcome.objects.order_by("at", "id")))
        .order_by("-number")
    )
