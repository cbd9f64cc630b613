"""Rows to the plain facts decisions take. The same readers serve a service
(on rows it has locked) and a preview (on rows read without locks), so
both feed the decision the same facts. Each reader is a fixed number of
queries for any number of tasks."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable

from django.db.models import OuterRef, Q, Subquery

from planning.models import Agent, PlanningTask

from ..decisions import AttemptFacts, TaskFacts
from ..models import Attempt, NativeRun, PhaseOutcome, RetiredNativeId

TASK, RUN = RetiredNativeId.Kind.TASK, RetiredNativeId.Kind.RUN


def task_facts(task: PlanningTask) -> TaskFacts:
    """``task`` with its procedure, project owner, plan and assignee loaded."""
    return TaskFacts(
        slug=task.slug,
        status=task.status,
        attempt_count=task.attempt_count,
        max_attempts=task.max_attempts,
        phases=tuple(task.procedure.phases),
        assignee=task.assignee.name if task.assignee is not None else None,
        project_owner=task.project.owner.name,
        inconsistency=(task.inconsistency or "unknown disagreement") if task.inconsistent_since is not None else None,
        plan_paused=task.plan is not None and task.plan.paused_at is not None,
    )


def attempt_facts(attempt: Attempt, native_ids: tuple[tuple[str, str], ...] = ()) -> AttemptFacts:
    return AttemptFacts(
        id=attempt.id,
        number=attempt.number,
        kind=attempt.kind,
        status=attempt.status,
        requested_at=attempt.requested_at,
        requested_by=attempt.requested_by,
        requested_assignee=attempt.requested_assignee.name if attempt.requested_assignee is not None else None,
        imported=attempt.imported,
        superseded_at=attempt.superseded_at,
        resume_phase=attempt.resume_phase,
        failure_kind=attempt.failure_kind,
        failure_phase=attempt.failure_phase,
        native_ids=native_ids,
    )


def linked_native_ids(attempts: list[Attempt]) -> dict[uuid.UUID, tuple[tuple[str, str], ...]]:
    """Every native id linked to each attempt: its own, and those of every
    run bound to it or claiming it (rule 2: a claim by the executor counts).
    One query, through the indexes on a run's attempt and claimed attempt."""
    runs: dict[uuid.UUID, list[tuple[str, str]]] = defaultdict(list)
    wanted = [a.id for a in attempts]
    if wanted:
        rows = NativeRun.objects.filter(Q(attempt_id__in=wanted) | Q(claimed_attempt_id__in=wanted)).values_list(
            "attempt_id", "claimed_attempt_id", "native_task_id", "native_run_id"
        )
        wanted_set: set[uuid.UUID | None] = set(wanted)
        for bound_to, claimed, native_task_id, native_run_id in rows:
            for attempt_id in {bound_to, claimed} & wanted_set:
                assert attempt_id is not None  # only wanted ids are left
                runs[attempt_id].append((native_task_id, native_run_id))
    linked = {a.id: native_id_pairs(a, runs.get(a.id, ())) for a in attempts}
    return {attempt_id: pairs for attempt_id, pairs in linked.items() if pairs}


def native_id_pairs(attempt: Attempt, runs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The (kind, value) native ids linked to ``attempt``: its own, then
    the (native task id, native run id) of each run bound to or claiming
    it, each once, in that order."""
    pairs: dict[tuple[str, str], None] = {}
    if attempt.native_task_id:
        pairs[(TASK, attempt.native_task_id)] = None
    if attempt.native_run_id:
        pairs[(RUN, attempt.native_run_id)] = None
    for native_task_id, native_run_id in runs:
        pairs[(TASK, native_task_id)] = None
        pairs[(RUN, native_run_id)] = None
    return tuple(pairs)


def latest_attempts(task_ids: list[int]) -> dict[int, Attempt]:
    """Each task's highest-numbered attempt (current or not, imported or
    not): the "previous attempt" of rule 3. One query."""
    if not task_ids:
        return {}
    newest = Attempt.objects.filter(task_id=OuterRef("task_id")).order_by("-number").values("id")[:1]
    return {
        a.task_id: a
        for a in Attempt.objects.select_related("requested_assignee").filter(task_id__in=task_ids, id=Subquery(newest))
    }


def agents_by_name(tasks: list[PlanningTask], attempts: list[Attempt]) -> dict[str, Agent]:
    """The agents a decision may name, from rows already loaded: no query."""
    found: dict[str, Agent] = {}
    for task in tasks:
        for agent in (task.assignee, task.project.owner):
            if agent is not None:
                found[agent.name] = agent
    for attempt in attempts:
        if (agent := attempt.requested_assignee) is not None:
            found[agent.name] = agent
    return found


def facts_for_new_attempt(
    tasks: list[PlanningTask],
    currents: dict[int, Attempt],
    *,
    native: dict[uuid.UUID, tuple[tuple[str, str], ...]] | None = None,
) -> tuple[dict[int, tuple[TaskFacts, list[AttemptFacts]]], dict[str, Agent]]:
    """What a launch, rerun or retry decides on: each task, its current
    attempt (with every native id it would retire: ``native`` when the
    caller read them with its locks, else read here) and, when it has none
    (only imported history), its latest attempt for the frozen assignee;
    and the agents those facts name, by name."""
    latest = latest_attempts([t.id for t in tasks if t.id not in currents])
    if native is None:
        native = linked_native_ids(list(currents.values()))
    out: dict[int, tuple[TaskFacts, list[AttemptFacts]]] = {}
    for task in tasks:
        attempts: list[AttemptFacts] = []
        if (current := currents.get(task.id)) is not None:
            attempts.append(attempt_facts(current, native.get(current.id, ())))
        elif (previous := latest.get(task.id)) is not None:
            attempts.append(attempt_facts(previous))
        out[task.id] = (task_facts(task), attempts)
    return out, agents_by_name(tasks, [*currents.values(), *latest.values()])


def all_attempts_with_ids(task_ids: list[int], *, lock: bool = False) -> dict[int, list[Attempt]]:
    """Every attempt of these tasks, oldest first (a repair reads them all),
    locked after their tasks when ``lock``."""
    qs = Attempt.objects.select_related("requested_assignee").filter(task_id__in=task_ids).order_by("task_id", "number")
    if lock:
        qs = qs.select_for_update(of=("self",))
    grouped: dict[int, list[Attempt]] = defaultdict(list)
    for attempt in qs:
        grouped[attempt.task_id].append(attempt)
    return grouped


def passed_phases_of_chains(task_ids: list[int]) -> dict[int, set[str]]:
    """Phases passed by the attempts of each task's current chain: the
    latest operator-started attempt (initial, rerun or repair) and the
    automatic retries after it. Those passes are durable progress (rule 6).
    A task without an operator-started attempt has no chain. One query."""
    if not task_ids:
        return {}
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
