"""Reads behind the dashboard's task page: the task, its attempt timeline
with phases and native runs, and its ledger, in a fixed number of queries
whatever the number of attempts, native runs or events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Exists, F, Func, IntegerField, Max, OuterRef, Q, Subquery

from planning.models import Agent, Event, PlanningTask
from retries.models import Attempt, NativeRun, PhaseOutcome

from .tasks import count_of, task_diagnostics


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
    # The task's assignee and the current attempt's frozen one are different
    # agents (the owner is shown, never compared).
    assignees_differ: bool
    # The attempt the diagnostics describe: the current one, else the
    # newest (imported history of a task never run here).
    diagnosed: Attempt | None = None
    # Blocked: the budget decision, as the ledger recorded it.
    block_reason: str | None = None
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
            event_count=count_of(task_events),
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
    attempts: list[Attempt] = list(timeline if attempts_limit is None else timeline[:attempts_limit])
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
    diagnosed = current or (attempts[0] if attempts else None)
    return TaskDetail(
        task=task,
        attempts=attempts,
        current=current,
        diagnostics=task_diagnostics(task, diagnosed) if diagnosed else None,
        stalled=bool(current and current.failure_kind == "stalled"),
        owner=task.project.owner,
        frozen=frozen,
        assignees_differ=frozen is not None and task.assignee_id is not None and frozen.id != task.assignee_id,
        diagnosed=diagnosed,
        block_reason=_block_reason(task) if task.status == PlanningTask.Status.BLOCKED else None,
        legacy_rejected=legacy_rejected,
        unbound=unbound,
        event_count=task.event_count,
        version=task.version or 0,
        attempt_total=attempt_total,
        oldest_shown=attempts[-1].number if attempts else 0,
        older_count=older_count,
    )


def _block_reason(task: PlanningTask) -> str | None:
    """The reason ``decide_retry_or_block`` gave when it blocked the task:
    one probe of the task's newest status events."""
    data = (
        Event.objects.filter(task_id=task.id, type="task.status_changed", data__status=PlanningTask.Status.BLOCKED)
        .order_by("-id")
        .values_list("data", flat=True)
        .first()
    )
    return (data or {}).get("decision") or (data or {}).get("reason")


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
