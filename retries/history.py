"""Legacy retry history (DESIGN.md, "Legacy retry history").

Sites moving from the old system bring ``planning-retry-history.json``. The
file is never trusted blindly (seed 004): it is parsed and checked completely
first, every problem is reported with its entry index and field, and only a
file without a single problem is applied, in one transaction.

What an import does, per new entry:

- creates a historical ``Attempt`` (``imported=True``), already superseded,
  with the entry's number, status, request time and frozen assignee;
- retires the entry's native task and run ids for good, so no run carrying
  them is ever bound (rule 2);
- appends ``attempt.imported`` to the ledger (its ``data.status`` is what
  verify_integrity derives the attempt's status from) and raises the task's
  ``attempt_count`` by one.

It never creates a current attempt: the task's next attempt is made by a
rerun or a repair. A task still in ``draft`` whose newest imported attempt
ended (failed, succeeded or cancelled) takes that status through a
``task.status_changed`` event, so an operator can rerun or repair it; a task
in any other status keeps it.

Entries already imported (same ``attemptId``, or the same task and number
when ``attemptId`` is null) are skipped, so importing a file twice changes
nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from missioncontrol.errors import ServiceError
from planning.ledger import ledger_append
from planning.models import Agent, PlanningTask
from planning.services import plan_refresh, task_status_set

from .models import Attempt, NativeRun, RetiredNativeId

HISTORY_VERSION = 1
NATIVE_ID_MAX = 200

# Every entry carries every key; these may be null. Native ids may be null as
# well (an attempt that never reached its executor has none).
REQUIRED_KEYS = ("planningTaskId", "attemptNumber", "requestedAt", "status")
NULLABLE_KEYS = (
    "attemptId",
    "requestedAssigneeId",
    "nativeTaskId",
    "nativeRunId",
    "supersededAt",
    "supersededByAttemptId",
)
ENTRY_KEYS = REQUIRED_KEYS + NULLABLE_KEYS

# A draft task whose newest imported attempt ended takes the matching status.
TASK_STATUS_FOR_ENDED = {
    Attempt.Status.FAILED: PlanningTask.Status.FAILED,
    Attempt.Status.SUCCEEDED: PlanningTask.Status.SUCCEEDED,
    Attempt.Status.CANCELLED: PlanningTask.Status.CANCELLED,
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the file. ``index`` is None for the file itself."""

    index: int | None
    field: str
    message: str

    @property
    def key(self) -> str:
        return self.field if self.index is None else f"entries[{self.index}].{self.field}"

    def __str__(self) -> str:
        where = "file" if self.index is None else f"entry {self.index}"
        return f"{where}, field {self.field}: {self.message}"


@dataclass
class Entry:
    index: int
    task_slug: str
    attempt_id: uuid.UUID | None
    number: int
    requested_at: dt.datetime
    assignee: str | None
    native_task_id: str | None
    native_run_id: str | None
    status: str
    superseded_at: dt.datetime | None
    superseded_by: uuid.UUID | None


@dataclass
class ImportedAttempt:
    index: int
    task: str
    number: int
    attempt_id: uuid.UUID
    status: str
    retired: list[str]


@dataclass
class ImportReport:
    dry_run: bool
    entries: int = 0
    imported: list[ImportedAttempt] = field(default_factory=list)
    # (index, task slug, number) of entries found already imported.
    skipped: list[tuple[int, str, int]] = field(default_factory=list)
    # task slug -> (from, to) for draft tasks moved to their history's status.
    status_changes: dict[str, tuple[str, str]] = field(default_factory=dict)


class HistoryImportError(ServiceError):
    """The file has problems; nothing was written."""

    def __init__(self, problems: list[Problem]) -> None:
        errors: dict[str, list[str]] = defaultdict(list)
        for problem in problems:
            errors[problem.key].append(problem.message)
        super().__init__(
            "invalid_history",
            f"The retry history has {len(problems)} problem(s); nothing was imported.",
            errors=dict(errors),
        )
        self.problems = problems


# --- Parsing: shape and types, no database ---------------------------------------


def _time(value: Any, index: int, name: str, problems: list[Problem]) -> dt.datetime | None:
    if not isinstance(value, str):
        problems.append(Problem(index, name, "Give an ISO 8601 time string with a zone."))
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None:
        problems.append(Problem(index, name, f"{value!r} is not an ISO 8601 time."))
        return None
    if timezone.is_naive(parsed):
        problems.append(Problem(index, name, f"{value!r} has no time zone."))
        return None
    return parsed


def _uuid(value: Any, index: int, name: str, problems: list[Problem]) -> uuid.UUID | None:
    if not isinstance(value, str):
        problems.append(Problem(index, name, "Give a UUID string or null."))
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        problems.append(Problem(index, name, f"{value!r} is not a UUID."))
        return None


def _text(value: Any, index: int, name: str, problems: list[Problem], *, max_length: int) -> str | None:
    if not isinstance(value, str) or not value.strip():
        problems.append(Problem(index, name, "Give a non-empty string" + ("." if name in REQUIRED_KEYS else " or null.")))
        return None
    if len(value) > max_length:
        problems.append(Problem(index, name, f"Longer than {max_length} characters."))
        return None
    return value


def _parse_entry(raw: Any, index: int, problems: list[Problem]) -> Entry | None:
    if not isinstance(raw, dict):
        problems.append(Problem(index, "entry", "Each entry must be a JSON object."))
        return None
    before = len(problems)
    for key in sorted(set(raw) - set(ENTRY_KEYS)):
        problems.append(Problem(index, key, "Unknown field."))
    for key in ENTRY_KEYS:
        if key not in raw:
            problems.append(Problem(index, key, "This field is required" + (" (it may be null)." if key in NULLABLE_KEYS else ".")))
    if len(problems) > before:
        return None

    slug = _text(raw["planningTaskId"], index, "planningTaskId", problems, max_length=200)
    number = raw["attemptNumber"]
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 2**31 - 1:
        problems.append(Problem(index, "attemptNumber", "Give a whole number of at least 1."))
        number = None
    requested_at = _time(raw["requestedAt"], index, "requestedAt", problems)
    status = raw["status"]
    if not isinstance(status, str) or status not in Attempt.Status.values:
        problems.append(Problem(index, "status", f"Use one of: {', '.join(Attempt.Status.values)}."))
        status = None
    attempt_id = None if raw["attemptId"] is None else _uuid(raw["attemptId"], index, "attemptId", problems)
    assignee = raw["requestedAssigneeId"]
    if assignee is not None:
        assignee = _text(assignee, index, "requestedAssigneeId", problems, max_length=100)
    native = {}
    for key in ("nativeTaskId", "nativeRunId"):
        native[key] = raw[key] if raw[key] is None else _text(raw[key], index, key, problems, max_length=NATIVE_ID_MAX)
    superseded_at = None if raw["supersededAt"] is None else _time(raw["supersededAt"], index, "supersededAt", problems)
    superseded_by = (
        None
        if raw["supersededByAttemptId"] is None
        else _uuid(raw["supersededByAttemptId"], index, "supersededByAttemptId", problems)
    )
    if len(problems) > before:
        return None
    if superseded_at is not None and superseded_at < requested_at:
        problems.append(Problem(index, "supersededAt", "Is before requestedAt."))
        return None
    if superseded_by is not None and superseded_by == attempt_id:
        problems.append(Problem(index, "supersededByAttemptId", "An attempt cannot supersede itself."))
        return None
    return Entry(
        index=index,
        task_slug=slug,
        attempt_id=attempt_id,
        number=number,
        requested_at=requested_at,
        assignee=assignee,
        native_task_id=native["nativeTaskId"],
        native_run_id=native["nativeRunId"],
        status=status,
        superseded_at=superseded_at,
        superseded_by=superseded_by,
    )


def retry_history_parse(data: str | bytes) -> tuple[list[Entry], list[Problem]]:
    """Check the file's shape and every entry's types; no database access."""
    problems: list[Problem] = []
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        document = json.loads(text)
    except UnicodeDecodeError as exc:
        return [], [Problem(None, "file", f"Not UTF-8 text ({exc.reason} at byte {exc.start}).")]
    except json.JSONDecodeError as exc:
        return [], [
            Problem(None, "file", f"Not valid JSON (truncated or damaged?): {exc.msg} at line {exc.lineno}, column {exc.colno}.")
        ]
    if not isinstance(document, dict):
        return [], [Problem(None, "file", 'The file must be a JSON object {"version": 1, "entries": [...]}.')]
    for key in sorted(set(document) - {"version", "entries"}):
        problems.append(Problem(None, key, "Unknown field."))
    version = document.get("version")
    if isinstance(version, bool) or version != HISTORY_VERSION:
        problems.append(Problem(None, "version", f"Only version {HISTORY_VERSION} is understood; got {version!r}."))
    raw_entries = document.get("entries")
    if not isinstance(raw_entries, list):
        problems.append(Problem(None, "entries", "Give a list of entries."))
        return [], problems
    entries = []
    for index, raw in enumerate(raw_entries):
        entry = _parse_entry(raw, index, problems)
        if entry is not None:
            entries.append(entry)
    _check_duplicates(entries, problems)
    return entries, problems


def _check_duplicates(entries: list[Entry], problems: list[Problem]) -> None:
    by_id: dict[uuid.UUID, int] = {}
    by_number: dict[tuple[str, int], int] = {}
    by_run: dict[str, int] = {}
    for entry in entries:
        if entry.attempt_id is not None:
            if entry.attempt_id in by_id:
                problems.append(Problem(entry.index, "attemptId", f"Duplicate of entry {by_id[entry.attempt_id]}."))
            by_id.setdefault(entry.attempt_id, entry.index)
        key = (entry.task_slug, entry.number)
        if key in by_number:
            problems.append(
                Problem(entry.index, "attemptNumber", f"Entry {by_number[key]} has the same task and attempt number.")
            )
        by_number.setdefault(key, entry.index)
        if entry.native_run_id is not None:
            if entry.native_run_id in by_run:
                problems.append(
                    Problem(entry.index, "nativeRunId", f"Entry {by_run[entry.native_run_id]} has the same native run id.")
                )
            by_run.setdefault(entry.native_run_id, entry.index)


# --- Checking against the database, and applying ------------------------------------


def _same_as_imported(entry: Entry, attempt: Attempt) -> bool:
    return (
        attempt.imported
        and attempt.number == entry.number
        and attempt.status == entry.status
        and attempt.native_task_id == entry.native_task_id
        and attempt.native_run_id == entry.native_run_id
        and attempt.requested_at == entry.requested_at
    )


def _check_against_database(
    entries: list[Entry], tasks: dict[str, PlanningTask], attempts: list[Attempt], problems: list[Problem]
) -> tuple[list[Entry], list[Entry]]:
    """Returns (new entries, entries already imported). Called with the task
    and attempt rows locked."""
    by_id = {a.id: a for a in attempts}
    by_number = {(a.task_id, a.number): a for a in attempts}
    agents = set(Agent.objects.filter(name__in={e.assignee for e in entries if e.assignee}).values_list("name", flat=True))
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


def _check_numbering(new: list[Entry], tasks: dict[str, PlanningTask], attempts: list[Attempt], problems: list[Problem]) -> None:
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
                Problem(entry.index, "supersededByAttemptId", f"Attempt {entry.superseded_by} belongs to task {successor_task}.")
            )


def _check_native_ids(new: list[Entry], problems: list[Problem]) -> None:
    """A native id in use by a task's current attempt is live, not history:
    retiring it would orphan a running attempt. Locks the runs concerned
    (after the task and attempt rows, per the lock order)."""
    task_ids = {e.native_task_id for e in new if e.native_task_id}
    run_ids = {e.native_run_id for e in new if e.native_run_id}
    if not task_ids and not run_ids:
        return
    live_task: dict[str, Attempt] = {}
    live_run: dict[str, Attempt] = {}
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
        if run.binding == NativeRun.Binding.BOUND and run.attempt.superseded_at is None:
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


def _in_file_order(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: -1 if p.index is None else p.index)


def retry_history_import(*, data: str | bytes, actor: str, dry_run: bool = False) -> ImportReport:
    """Validate the whole file, then (unless ``dry_run``) apply it in one
    transaction. Raises ``HistoryImportError`` listing every problem, with
    nothing written, when anything is wrong."""
    entries, problems = retry_history_parse(data)
    if problems:
        raise HistoryImportError(_in_file_order(problems))
    report = ImportReport(dry_run=dry_run, entries=len(entries))
    now = timezone.now()
    with transaction.atomic():
        # Lock order: tasks (by id), then their attempts, then native runs.
        tasks = {
            t.slug: t
            for t in PlanningTask.objects.select_for_update(of=("self",))
            .filter(slug__in={e.task_slug for e in entries})
            .order_by("id")
        }
        task_ids = [t.id for t in tasks.values()]
        attempts = list(
            Attempt.objects.select_for_update(of=("self",))
            .select_related("task")
            .filter(task_id__in=task_ids)
            .order_by("task_id", "number")
        )
        # Attempts of other tasks the file names (as its own id or as a
        # successor) are only read: their tasks are not ours to lock.
        named = {e.attempt_id for e in entries if e.attempt_id} | {e.superseded_by for e in entries if e.superseded_by}
        attempts += list(Attempt.objects.select_related("task").filter(id__in=named).exclude(task_id__in=task_ids))
        new, done = _check_against_database(entries, tasks, attempts, problems)
        _check_native_ids(new, problems)
        if problems:
            raise HistoryImportError(_in_file_order(problems))
        report.skipped = [(e.index, e.task_slug, e.number) for e in done]
        ids = {e.index: e.attempt_id or uuid.uuid4() for e in new}
        file_ids = {e.attempt_id: ids.get(e.index, e.attempt_id) for e in entries if e.attempt_id}
        for entry in new:
            report.imported.append(
                ImportedAttempt(
                    index=entry.index,
                    task=entry.task_slug,
                    number=entry.number,
                    attempt_id=ids[entry.index],
                    status=entry.status,
                    retired=[v for v in (entry.native_task_id, entry.native_run_id) if v],
                )
            )
        report.status_changes = _draft_status_changes(new, tasks, attempts)
        if dry_run or not new:
            return report
        _apply(new, tasks, ids, file_ids, report, actor=actor, now=now)
    return report


def _draft_status_changes(
    new: list[Entry], tasks: dict[str, PlanningTask], attempts: list[Attempt]
) -> dict[str, tuple[str, str]]:
    newest: dict[str, tuple[int, str]] = {}
    for attempt in attempts:
        if attempt.imported and attempt.task.slug in tasks:
            newest[attempt.task.slug] = max(newest.get(attempt.task.slug, (0, "")), (attempt.number, attempt.status))
    for entry in new:
        newest[entry.task_slug] = max(newest.get(entry.task_slug, (0, "")), (entry.number, entry.status))
    changes = {}
    for slug in sorted({e.task_slug for e in new}):
        task = tasks[slug]
        target = TASK_STATUS_FOR_ENDED.get(newest[slug][1])
        if task.status == PlanningTask.Status.DRAFT and target is not None:
            changes[slug] = (task.status, target)
    return changes


def _apply(
    new: list[Entry],
    tasks: dict[str, PlanningTask],
    ids: dict[int, uuid.UUID],
    file_ids: dict[uuid.UUID, uuid.UUID],
    report: ImportReport,
    *,
    actor: str,
    now: dt.datetime,
) -> None:
    agents = {a.name: a for a in Agent.objects.filter(name__in={e.assignee for e in new if e.assignee})}
    # Superseded-by links may point at attempts created in this same batch;
    # PostgreSQL checks the foreign key at commit, when all rows exist.
    for entry in sorted(new, key=lambda e: (tasks[e.task_slug].id, e.number)):
        task = tasks[entry.task_slug]
        attempt_id = ids[entry.index]
        superseded_by = file_ids.get(entry.superseded_by, entry.superseded_by) if entry.superseded_by else None
        superseded_at = entry.superseded_at or now
        attempt = Attempt.objects.create(
            id=attempt_id,
            task=task,
            number=entry.number,
            kind=Attempt.Kind.INITIAL if entry.number == 1 else Attempt.Kind.RERUN,
            status=entry.status,
            requested_by=actor,
            requested_at=entry.requested_at,
            reason="Imported from the legacy retry history.",
            requested_assignee=agents.get(entry.assignee) if entry.assignee else None,
            superseded_at=superseded_at,
            superseded_by_id=superseded_by,
            native_task_id=entry.native_task_id,
            native_run_id=entry.native_run_id,
            imported=True,
        )
        retired = [
            RetiredNativeId(kind=kind, value=value, task=task, attempt=attempt, retired_at=now)
            for kind, value in ((RetiredNativeId.Kind.TASK, entry.native_task_id), (RetiredNativeId.Kind.RUN, entry.native_run_id))
            if value
        ]
        # An id retired already (by an earlier attempt) stays retired; one row per id.
        RetiredNativeId.objects.bulk_create(retired, ignore_conflicts=True)
        ledger_append(
            type="attempt.imported",
            actor=actor,
            task_id=task.id,
            plan_id=task.plan_id,
            attempt_id=attempt.id,
            data={
                "number": entry.number,
                "kind": attempt.kind,
                "status": entry.status,
                "requested_at": entry.requested_at,
                "requested_assignee": entry.assignee,
                "native_task_id": entry.native_task_id,
                "native_run_id": entry.native_run_id,
                "superseded_at": superseded_at,
                "superseded_by": superseded_by,
                "legacy_attempt_id": entry.attempt_id,
                "entry": entry.index,
            },
            at=now,
        )
        task.attempt_count += 1
    plans = set()
    for slug in sorted({e.task_slug for e in new}, key=lambda s: tasks[s].id):
        task = tasks[slug]
        fields = ["attempt_count"]
        if slug in report.status_changes:
            fields += task_status_set(
                task, report.status_changes[slug][1], actor=actor, data={"reason": "imported retry history"}
            )
        task.save(update_fields=[*fields, "updated_at"])
        if "status" in fields and task.plan_id:
            plans.add(task.plan_id)
    # Plan rows are locked last, after every task row (lock order).
    for plan_id in sorted(plans, key=str):
        plan_refresh(plan_id=plan_id, actor=actor)
