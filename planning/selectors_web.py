"""Reads behind the operator dashboard. Each one costs a fixed number of
queries whatever the number of tasks, attempts, native runs or events, so a
page at 3 a.m. on a busy site is as fast as on an empty one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Exists, F, Func, IntegerField, Max, OuterRef, Q, QuerySet, Subquery, Sum, Value

from retries.models import Attempt, NativeRun, PhaseOutcome

from .models import Agent, Event, Plan, PlanningTask, Procedure, Project, TaskStatusCount
from .selectors import task_current_attempt, task_diagnostics, task_queryset

TS = PlanningTask.Status
ATTENTION_STATUSES = (TS.FAILED, TS.BLOCKED)


# --- Board -----------------------------------------------------------------------


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
    return Exists(
        Attempt.objects.filter(task_id=OuterRef("pk"), superseded_at__isnull=True, failure_kind="stalled")
    )


def needs_attention_q() -> Q:
    """Failed, blocked, stalled (the current attempt stalled) or found
    inconsistent with the ledger."""
    return (
        Q(status__in=ATTENTION_STATUSES)
        | Q(inconsistent_since__isnull=False)
        | Q(_stalled_current_attempt())
    )


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
    counts: dict[str, Any] = {status: 0 for status in TS.values}
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
        task.current = task_current_attempt(task)
        frozen = task.current.requested_assignee if task.current else None
        task.shown_assignee = frozen or task.assignee
        task.assignee_drift = frozen is not None and task.assignee_id is not None and frozen.id != task.assignee_id
    return tasks


# --- Task detail -----------------------------------------------------------------


@dataclass
class PhaseChip:
    phase: str
    state: str  # passed | failed | earlier | not_reached
    is_resume: bool
    message: str = ""


@dataclass
class TaskDetail:
    task: PlanningTask
    attempts: list[Attempt]
    current: Attempt | None
    diagnostics: dict[str, Any] | None
    stalled: bool
    owner: Agent
    frozen: Agent | None
    assignees_differ: bool
    default_assignee: Agent | None
    legacy_rejected: list[NativeRun] = field(default_factory=list)
    unbound: list[NativeRun] = field(default_factory=list)
    event_count: int = 0
    version: int = 0
    # The page renders a window of the newest attempts; these say what lies
    # outside it so links to an older attempt can lead to the whole timeline.
    attempt_total: int = 0
    oldest_shown: int = 0
    older_count: int = 0

    def shows(self, number: int) -> bool:
        return number >= self.oldest_shown


def _phase_chips(attempt: Attempt, phases: list[str], outcomes: dict[str, tuple[str, str]]) -> list[PhaseChip]:
    """``outcomes``: phase -> (outcome, message) of the attempt's recorded outcomes."""
    resume_index = phases.index(attempt.resume_phase) if attempt.resume_phase in phases else 0
    chips = []
    for index, phase in enumerate(phases):
        outcome = outcomes.get(phase)
        if outcome is not None:
            state, message = outcome
        elif attempt.failure_phase == phase and attempt.failure_kind:
            # A stall or an executor failure names the phase without a
            # recorded outcome: still the place the attempt broke.
            state, message = "failed", attempt.failure_message or attempt.failure_kind
        elif index < resume_index:
            state, message = "earlier", "passed by an earlier attempt"
        else:
            state, message = "not_reached", ""
        chips.append(PhaseChip(phase, state, attempt.resume_phase == phase, message))
    return chips


def default_rerun_assignee(task: PlanningTask, current: Attempt | None) -> Agent | None:
    """Who a rerun gets when the operator does not choose (rule 3): the
    previous attempt's frozen assignee, else the task's, else the owner."""
    if current is not None and current.requested_assignee is not None:
        return current.requested_assignee
    return task.assignee or task.project.owner


def _count_of(qs: QuerySet) -> Subquery:
    """``(SELECT count(*) …)`` correlated to the outer row. Grouping the
    subquery instead (``values().annotate(Count)``) made PostgreSQL
    aggregate every attempt of every task first."""
    return Subquery(qs.order_by().annotate(n=Func(F("id"), function="COUNT")).values("n"), output_field=IntegerField())


def task_detail(slug: str, *, attempts_limit: int | None = None) -> TaskDetail | None:
    """Everything the task page shows: task, attempts with phases, native runs
    grouped where they tried to bind, and the ledger's size. Six queries.

    ``attempts_limit`` keeps only the newest attempts (and the native runs
    that belong to them), so a task retried hundreds of times costs what a
    task retried a few times does."""
    # The ledger's size and newest id as correlated subqueries over the
    # task's index entries (``event_task_id``): joining the events and
    # grouping the task row by them cost a join row per event (6 ms for a
    # task with 3,000 events, against 0.5 ms this way).
    task_events = Event.objects.filter(task_id=OuterRef("pk")).order_by()
    task = (
        PlanningTask.objects.select_related("project__owner", "procedure", "plan", "assignee")
        .annotate(
            event_count=_count_of(task_events),
            version=Subquery(
                task_events.annotate(v=Func(F("id"), function="MAX")).values("v"), output_field=IntegerField()
            ),
        )
        .filter(slug=slug)
        .first()
    )
    if task is None:
        return None
    # The timeline as attempts_for_task orders it, but each attempt costs
    # less to load: the successor's number instead of the successor row, and
    # phase outcomes as tuples (one query, as the prefetch was) instead of
    # model instances. Per attempt shown, that was most of the page's
    # Python time outside the template.
    timeline = (
        Attempt.objects.filter(task_id=task.id)
        .select_related("requested_assignee")
        .annotate(successor_number=F("superseded_by__number"))
        .order_by("-number")
    )
    attempts = list(timeline if attempts_limit is None else timeline[:attempts_limit])
    outcomes: dict[uuid.UUID, dict[str, tuple[str, str]]] = {a.id: {} for a in attempts}
    if attempts:
        for attempt_id, phase, outcome, message in (
            PhaseOutcome.objects.filter(attempt_id__in=list(outcomes))
            .order_by("at", "id")
            .values_list("attempt_id", "phase", "outcome", "message")
        ):
            outcomes[attempt_id][phase] = (outcome, message)
    # The timeline's size is the task's attempt_count, kept under the task
    # lock and checked against the attempts by integrity_problems: counting
    # the rows here (a window over every attempt) grew with the history.
    if attempts_limit is None or len(attempts) < attempts_limit:
        attempt_total = len(attempts)
    else:
        attempt_total = max(task.attempt_count, len(attempts))
    older_count = attempt_total - len(attempts)
    current = next((a for a in attempts if a.superseded_at is None), None)
    shown_ids = {a.id for a in attempts}
    phases = list(task.procedure.phases)
    bound: dict[uuid.UUID, list[NativeRun]] = {}
    rejected: dict[uuid.UUID, list[NativeRun]] = {}
    legacy_rejected: list[NativeRun] = []
    unbound: list[NativeRun] = []
    B = NativeRun.Binding
    runs = NativeRun.objects.filter(task_id=task.id)
    if older_count:
        # Runs of attempts outside the window are not shown, so not read;
        # runs that name no attempt of this task are shown whatever the window.
        claims_this_task = Exists(Attempt.objects.filter(task_id=task.id, id=OuterRef("claimed_attempt_id")))
        runs = runs.filter(
            Q(binding=B.BOUND, attempt_id__in=shown_ids)
            | Q(binding=B.BOUND, attempt_id__isnull=True)
            | Q(binding=B.REJECTED, claimed_attempt_id__in=shown_ids)
            | (Q(binding=B.REJECTED) & ~Q(claims_this_task))
            | ~Q(binding__in=(B.BOUND, B.REJECTED))
        )
    for run in runs.order_by("first_seen_at", "id"):
        if run.binding == B.BOUND and run.attempt_id:
            bound.setdefault(run.attempt_id, []).append(run)
        elif run.binding == B.REJECTED and run.claimed_attempt_id in shown_ids:
            rejected.setdefault(run.claimed_attempt_id, []).append(run)
        elif run.binding == B.REJECTED:
            legacy_rejected.append(run)
        else:
            unbound.append(run)
    for attempt in attempts:
        attempt.chips = _phase_chips(attempt, phases, outcomes[attempt.id])
        attempt.bound_runs = bound.get(attempt.id, [])
        attempt.rejected_runs = rejected.get(attempt.id, [])
    frozen = current.requested_assignee if current else None
    owner = task.project.owner
    names = {a.id for a in (task.assignee, frozen, owner) if a is not None}
    return TaskDetail(
        task=task,
        attempts=attempts,
        current=current,
        diagnostics=task_diagnostics(task, current) if current else None,
        stalled=bool(current and current.failure_kind == "stalled"),
        owner=owner,
        frozen=frozen,
        assignees_differ=len(names) > 1,
        default_assignee=default_rerun_assignee(task, current),
        legacy_rejected=legacy_rejected,
        unbound=unbound,
        event_count=task.event_count,
        version=task.version or 0,
        attempt_total=attempt_total,
        oldest_shown=attempts[-1].number if attempts else 0,
        older_count=older_count,
    )


def task_version(slug: str) -> int | None:
    """The newest ledger event of a task: what a polling page compares."""
    row = PlanningTask.objects.filter(slug=slug).annotate(v=Max("events__id")).values_list("v", flat=True)
    values = list(row)
    if not values:
        return None
    return values[0] or 0


def task_events(task: PlanningTask) -> list[Event]:
    """The task's ledger, oldest first, each event with the number of the
    attempt it names (``attempt_number``, None for an unknown id): one query."""
    number = Attempt.objects.filter(task_id=task.id, id=OuterRef("attempt_id")).values("number")[:1]
    return list(Event.objects.filter(task_id=task.id).annotate(attempt_number=Subquery(number)).order_by("id"))


def active_agents() -> list[Agent]:
    return list(Agent.objects.filter(active=True).order_by("name"))


# --- Plans -----------------------------------------------------------------------


def plans_queryset() -> QuerySet[Plan]:
    return Plan.objects.select_related("project").order_by("-created_at", "id")


# --- Native runs -----------------------------------------------------------------

TRIAGE_BINDINGS = (NativeRun.Binding.UNBOUND, NativeRun.Binding.REJECTED)


def native_runs_for_triage(*, binding: str = "", executor: str = "") -> QuerySet[NativeRun]:
    """Runs that are not bound to anything: waiting (unbound) or refused
    (rejected), newest report first."""
    qs = NativeRun.objects.select_related("task").filter(
        binding__in=[binding] if binding else TRIAGE_BINDINGS
    )
    if executor:
        qs = qs.filter(executor=executor)
    return qs.order_by("-last_seen_at", "-id")


def native_run_executors() -> list[str]:
    return list(NativeRun.objects.order_by("executor").values_list("executor", flat=True).distinct())


def attach_claimed_attempts(runs: list[NativeRun], *, attempts_window: int | None = None) -> list[NativeRun]:
    """Name the attempt each run claimed (number and task) in one query, and
    whether the task page shows it only with its whole timeline
    (``beyond_window``: more than ``attempts_window`` newer attempts)."""
    ids = {r.claimed_attempt_id for r in runs if r.claimed_attempt_id}
    newer = _count_of(Attempt.objects.filter(task_id=OuterRef("task_id"), number__gt=OuterRef("number")))
    claimed = {
        row["id"]: {**row, "beyond_window": attempts_window is not None and (row["newer"] or 0) >= attempts_window}
        for row in Attempt.objects.filter(id__in=ids)
        .annotate(newer=Subquery(newer))
        .values("id", "number", "task__slug", "superseded_at", "newer")
    } if ids else {}
    for run in runs:
        run.claimed = claimed.get(run.claimed_attempt_id)
    return runs
