"""Checking parsed entries against the database, with the task and attempt
rows locked: entries already imported, attempt numbering, successors and
native ids still in use."""

from __future__ import annotations

import uuid
from collections import defaultdict

from django.db.models import Q

from planning.models import Agent, PlanningTask
from retries.models import Attempt, NativeRun

from .parse import Entry, Problem


def _same_as_imported(entry: Entry, attempt: Attempt) -> bool:
    return (
        attempt.imported
        and attempt.number == entry.number
        and attempt.status == entry.status
        and attempt.native_task_id == entry.native_task_id
        and attempt.native_run_id == entry.native_run_id
        and attempt.requested_at == entry.requested_at
    )


def check_against_database(
    entries: list[Entry], tasks: dict[str, PlanningTask], attempts: list[Attempt], problems: list[Problem]
) -> tuple[list[Entry], list[Entry]]:
    """Returns (new entries, entries already imported). Called with the task
    and attempt rows locked."""
    by_id = {a.id: a for a in attempts}
    by_number = {(a.task_id, a.number): a for a in attempts}
    agents = set(
        Agent.objects.filter(name__in={e.assignee for e in entries if e.assignee}).values_list("name", flat=True)
    )
    new: list[Entry] = []
    done: list[Entry] = []
    for entry in entries:
        task = tasks.get(entry.task_slug)
        if task is None:
            problems.append(Problem(entry.index, "planningTaskId", f"No task named {entry.task_slug!r}."))
            continue
        if task.inconsistent_since is not None:
            problems.append(
                Problem(entry.index, "planningTaskId", f"Task {task.slug} disagrees with its ledger; repair it first.")
            )
            continue
        if entry.assignee is not None and entry.assignee not in agents:
            problems.append(Problem(entry.index, "requestedAssigneeId", f"No agent named {entry.assignee!r}."))
        existing = by_id.get(entry.attempt_id) if entry.attempt_id is not None else None
        at_number = by_number.get((task.id, entry.number))
        if existing is not None:
            if existing.task_id != task.id or not _same_as_imported(entry, existing):
                problems.append(
                    Problem(
                        entry.index,
                        "attemptId",
                        f"Attempt {entry.attempt_id} already exists (#{existing.number} of task "
                        f"{existing.task.slug}) and is not this entry.",
                    )
                )
                continue
            done.append(entry)
            continue
        if at_number is not None:
            if entry.attempt_id is None and _same_as_imported(entry, at_number):
                done.append(entry)
                continue
            problems.append(
                Problem(
                    entry.index,
                    "attemptNumber",
                    f"Task {task.slug} already has an attempt #{entry.number} ({at_number.id}) that is not this entry.",
                )
            )
            continue
        new.append(entry)
    _check_numbering(new, tasks, attempts, problems)
    _check_successors(entries, tasks, by_id, problems)
    return new, done


def _check_numbering(
    new: list[Entry], tasks: dict[str, PlanningTask], attempts: list[Attempt], problems: list[Problem]
) -> None:
    """The next attempt takes number ``attempt_count + 1``, so a task's numbers
    must run 1..n without gaps; and history comes before the attempts made
    here, so imported numbers stay below the first of those."""
    numbers: dict[int, set[int]] = defaultdict(set)
    first_own: dict[int, int] = {}
    for attempt in attempts:
        numbers[attempt.task_id].add(attempt.number)
        if not attempt.imported:
            first_own[attempt.task_id] = min(first_own.get(attempt.task_id, attempt.number), attempt.number)
    for entry in new:
        numbers[tasks[entry.task_slug].id].add(entry.number)
    for entry in new:
        task = tasks[entry.task_slug]
        own = first_own.get(task.id)
        if own is not None and entry.number > own:
            problems.append(
                Problem(
                    entry.index,
                    "attemptNumber",
                    f"Task {task.slug} has attempts made here from #{own} on; imported history must come before them.",
                )
            )
        elif entry.number > len(numbers[task.id]):
            problems.append(
                Problem(
                    entry.index,
                    "attemptNumber",
                    f"Task {task.slug} would have attempts {sorted(numbers[task.id])}: numbers must run 1..n "
                    "without gaps, because the next attempt takes number n+1.",
                )
            )


def _check_successors(
    entries: list[Entry], tasks: dict[str, PlanningTask], by_id: dict[uuid.UUID, Attempt], problems: list[Problem]
) -> None:
    in_file = {e.attempt_id: e for e in entries if e.attempt_id is not None}
    for entry in entries:
        if entry.superseded_by is None or entry.task_slug not in tasks:
            continue
        successor_task = None
        if entry.superseded_by in in_file:
            successor_task = in_file[entry.superseded_by].task_slug
        elif entry.superseded_by in by_id:
            successor_task = by_id[entry.superseded_by].task.slug
        if successor_task is None:
            problems.append(
                Problem(
                    entry.index,
                    "supersededByAttemptId",
                    f"No attempt {entry.superseded_by} in this file or in the database.",
                )
            )
        elif successor_task != entry.task_slug:
            problems.append(
                Problem(
                    entry.index,
                    "supersededByAttemptId",
                    f"Attempt {entry.superseded_by} belongs to task {successor_task}.",
                )
            )


def check_native_ids(new: list[Entry], problems: list[Problem]) -> None:
    """A native id in use by a task's current attempt is live, not history:
    retiring it would orphan a running attempt. Locks the runs concerned
    (after the task and attempt rows, per the lock order)."""
    task_ids = {e.native_task_id for e in new if e.native_task_id}
    run_ids = {e.native_run_id for e in new if e.native_run_id}
    if not task_ids and not run_ids:
        return
    # Keyed by the attempts' ids, None for an attempt matched by its other id.
    live_task: dict[str | None, Attempt] = {}
    live_run: dict[str | None, Attempt] = {}
    for attempt in Attempt.objects.select_related("task").filter(
        Q(native_task_id__in=task_ids) | Q(native_run_id__in=run_ids), superseded_at__isnull=True
    ):
        live_task[attempt.native_task_id] = attempt
        live_run[attempt.native_run_id] = attempt
    runs = (
        NativeRun.objects.select_for_update(of=("self",))
        .select_related("attempt__task")
        .filter(Q(native_task_id__in=task_ids) | Q(native_run_id__in=run_ids))
        .order_by("id")
    )
    for run in runs:
        if run.binding == NativeRun.Binding.BOUND and run.attempt is not None and run.attempt.superseded_at is None:
            live_task.setdefault(run.native_task_id, run.attempt)
            live_run.setdefault(run.native_run_id, run.attempt)
    for entry in new:
        for name, value, live in (
            ("nativeTaskId", entry.native_task_id, live_task),
            ("nativeRunId", entry.native_run_id, live_run),
        ):
            if value and value in live:
                attempt = live[value]
                problems.append(
                    Problem(
                        entry.index,
                        name,
                        f"{value!r} belongs to the current attempt #{attempt.number} of task {attempt.task.slug}; "
                        "a live id cannot be retired by an import.",
                    )
                )
