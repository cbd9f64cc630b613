"""Reads of planning's own rows (tasks and plans, without their attempts).
Reads that join attempts or native runs live in ``retries.selectors``."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable

from django.db.models import Count

from .models import PlanningTask

FAILING_STATUSES = PlanningTask.FAILING_STATUSES


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
