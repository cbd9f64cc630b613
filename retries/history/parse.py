"""Parsing a retry history file: its shape and every entry's types, with
no database access. Every problem is collected with its entry index and
field (``Problem``), and ``HistoryImportError`` carries them all."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from missioncontrol.errors import ServiceError
from retries.models import Attempt

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


def in_file_order(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: -1 if p.index is None else p.index)


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
        problems.append(
            Problem(index, name, "Give a non-empty string" + ("." if name in REQUIRED_KEYS else " or null."))
        )
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
            problems.append(
                Problem(index, key, "This field is required" + (" (it may be null)." if key in NULLABLE_KEYS else "."))
            )
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
    # Each of the values is None only after a problem was added for it.
    if len(problems) > before or slug is None or requested_at is None:
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
            Problem(
                None,
                "file",
                f"Not valid JSON (truncated or damaged?): {exc.msg} at line {exc.lineno}, column {exc.colno}.",
            )
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
                    Problem(
                        entry.index, "nativeRunId", f"Entry {by_run[entry.native_run_id]} has the same native run id."
                    )
                )
            by_run.setdefault(entry.native_run_id, entry.index)
