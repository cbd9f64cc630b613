"""Reads behind the dashboard's triage board. Each one costs a fixed number
of queries whatever the number of tasks, so a board at 3 a.m. on a busy
site is as fast as on an empty one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet, Sum, Value

from planning.models import Agent, Event, Plan, PlanningTask, Procedure, Project, TaskStatusCount
from retries.models import Attempt

from .tasks import task_current_attempt, task_queryset

TS = PlanningTask.Status
ATTENTION_STATUSES = (TS.FAILED, TS.BLOCKED)


@dataclass(frozen=True)
class BoardFilters:
    project: str = ""
    procedure: str = ""
    plan: str = ""
    status: str = ""
    assignee: str = ""
    attention: bool = False
    q: str = ""


@dataclass
class FilterOptions:
    projects: list[tuple[str, str]]
    procedures: list[tuple[str, str]]
    plans: list[tuple[str, str]]
    agents: list[tuple[str, str]]


def board_filter_options() -> FilterOptions:
    """What each board filter can be set to: four small queries."""
    return FilterOptions(
        projects=list(Project.objects.order_by("slug").values_list("slug", "name")),
        procedures=list(Procedure.objects.order_by("slug").values_list("slug", "name")),
        plans=[
            (str(plan_id), f"{name} ({project})")
            for plan_id, name, project in Plan.objects.order_by("-created_at").values_list(
                "id", "name", "project__slug"
            )
        ],
        agents=[(name, name) for name in Agent.objects.order_by("name").values_list("name", flat=True)],
    )


def _stalled_current_attempt() -> Exists:
    return Exists(Attempt.objects.filter(task_id=OuterRef("pk"), superseded_at__isnull=True, failure_kind="stalled"))


def needs_attention_q() -> Q:
    """Failed, blocked, stalled (the current attempt stalled) or found
    inconsistent with the ledger."""
    return Q(status__in=ATTENTION_STATUSES) | Q(inconsistent_since__isnull=False) | Q(_stalled_current_attempt())


def _filtered(qs: QuerySet[PlanningTask], filters: BoardFilters, *, with_status: bool) -> QuerySet[PlanningTask]:
    if filters.project:
        qs = qs.filter(project__slug=filters.project)
    if filters.procedure:
        qs = qs.filter(procedure__slug=filters.procedure)
    if filters.plan:
        qs = qs.filter(plan_id=filters.plan)
    if filters.assignee:
        # The task's assignee, or whoever the current attempt was frozen to:
        # an operator looking for "what is X doing" means either.
        qs = qs.filter(
            Q(assignee__name=filters.assignee)
            | Q(
                Exists(
                    Attempt.objects.filter(
                        task_id=OuterRef("pk"),
                        superseded_at__isnull=True,
                        requested_assignee__name=filters.assignee,
                    )
                )
            )
        )
    if filters.q:
        qs = qs.filter(Q(slug__icontains=filters.q) | Q(title__icontains=filters.q))
    if with_status:
        if filters.status:
            qs = qs.filter(status=filters.status)
        if filters.attention:
            qs = qs.filter(needs_attention_q())
    return qs


def board_tasks(filters: BoardFilters) -> QuerySet[PlanningTask]:
    """The board's rows, most recently changed first, with everything a row
    shows joined or prefetched (one query per page plus one prefetch)."""
    qs = task_queryset().annotate(stalled=_stalled_current_attempt())
    return _filtered(qs, filters, with_status=True).order_by("-updated_at", "-id")


def _flagged_task_ids() -> QuerySet:
    """Tasks found inconsistent or whose current attempt stalled: both read
    through partial indexes, so they cost what the few flagged rows cost."""
    inconsistent = PlanningTask.objects.filter(inconsistent_since__isnull=False).order_by().values("id")
    stalled = Attempt.objects.filter(superseded_at__isnull=True, failure_kind="stalled").order_by().values("task_id")
    return inconsistent.union(stalled)


def _unfiltered(filters: BoardFilters) -> bool:
    """No filter but the status ones, which the counts ignore."""
    return not (filters.project or filters.procedure or filters.plan or filters.assignee or filters.q)


def board_counts(filters: BoardFilters) -> dict[str, int]:
    """Tasks per status (and needing attention) under every filter but the
    status ones, so that each count is what clicking it will show. One query.

    It never tests every task. Unfiltered (the board as it opens and as it
    polls), the per-status counts are the ``TaskStatusCount`` projection the
    database keeps: a sum over a few folded rows, whatever the number of
    tasks. Filtered by project, procedure, plan, assignee or search, they
    are a ``GROUP BY status`` of the filtered tasks, which costs what those
    tasks cost: the projection has no per-filter counts, and a filtered
    board is a narrower look an operator asks for. Either way, per status,
    the tasks that need attention without being failed or blocked come from
    the flagged ids. ``flagged`` keeps those per status so the board's
    paginator can know its total without a ``COUNT(*)`` of its own."""
    qs = _filtered(PlanningTask.objects.all(), filters, with_status=False).order_by()
    # (status, kind, n) rows, from the projection or from the tasks.
    per_status: QuerySet[Any, tuple[Any, ...]]
    if _unfiltered(filters):
        per_status = (
            TaskStatusCount.objects.order_by()
            .annotate(kind=Value("all"))
            .values_list("status", "kind")
            .annotate(n=Sum("n"))
        )
    else:
        per_status = qs.annotate(kind=Value("all")).values_list("status", "kind").annotate(n=Count("id"))
    flagged = (
        qs.exclude(status__in=ATTENTION_STATUSES)
        .filter(id__in=_flagged_task_ids())
        .annotate(kind=Value("flagged"))
        .values_list("status", "kind")
        .annotate(n=Count("id"))
    )
    counts: dict[str, Any] = dict.fromkeys(TS.values, 0)
    extra: dict[str, int] = {}
    for status, kind, n in per_status.union(flagged, all=True).order_by():
        if kind == "all":
            counts[status] = n or 0
        else:
            extra[status] = n
    counts["total"] = sum(counts[status] for status in TS.values)
    counts["attention"] = sum(counts[status] for status in ATTENTION_STATUSES) + sum(extra.values())
    counts["flagged"] = extra
    return counts


def board_total(filters: BoardFilters, counts: dict[str, Any]) -> int:
    """How many rows the board lists under ``filters``, from the counts
    already read: no query."""
    if filters.status and filters.attention:
        if filters.status in ATTENTION_STATUSES:
            return counts.get(filters.status, 0)
        return counts["flagged"].get(filters.status, 0)
    if filters.status:
        return counts.get(filters.status, 0)
    if filters.attention:
        return counts["attention"]
    return counts["total"]


def board_version() -> int:
    """Every state change appends to the ledger, so the newest event id tells
    a polling board whether anything may have changed."""
    return Event.objects.aggregate(v=Max("id"))["v"] or 0


def decorate_board_rows(tasks: list[PlanningTask]) -> list[PlanningTask]:
    """Attach the current attempt and the assignee the row shows. No query."""
    for task in tasks:
        task.current = current = task_current_attempt(task)
        frozen = current.requested_assignee if current else None
        task.shown_assignee = frozen or task.assignee
        task.assignee_drift = frozen is not None and task.assignee_id is not None and frozen.id != task.assignee_id
    return tasks
