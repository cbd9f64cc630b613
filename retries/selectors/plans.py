"""Reads of plans: their counts and the diagnostics of their failed tasks,
in a fixed number of queries whatever the number of plans and tasks."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from planning.models import Plan, PlanningTask
from planning.selectors import FAILING_STATUSES, plan_counts

from .tasks import current_attempts_prefetch, task_diagnostics


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
        if diagnostics and task.plan_id is not None:
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


def plans_queryset() -> QuerySet[Plan]:
    return Plan.objects.select_related("project").order_by("-created_at", "id")
