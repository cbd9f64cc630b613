"""``export_snapshot``: a JSON projection of every task, its current attempt
and its status, for tools outside Mission Control.

A snapshot is a projection, never a source of truth (seed 004: a corrupted
summary file was trusted as scheduling truth). So it is written the way such
a file must be: to a temporary file in the target's folder, flushed and
fsynced, read back and validated against the versioned schema below, and only
then atomically renamed over the target. On any failure the previous file is
left exactly as it was and the temporary file is removed.

The schema is documented in ``docs/snapshot-schema.md``; a test keeps that
document and ``SNAPSHOT_SCHEMA`` identical.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from jsonschema import Draft202012Validator, FormatChecker

from missioncontrol.errors import ServiceError
from planning.models import Event, PlanningTask
from retries.selectors import task_current_attempt, task_queryset

SNAPSHOT_NAME = "missioncontrol.snapshot"
SNAPSHOT_VERSION = 1

_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_TEXT_OR_NULL = {"type": ["string", "null"]}

SNAPSHOT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://missioncontrol.invalid/schemas/snapshot-1.json",
    "title": "Mission Control snapshot, version 1",
    "type": "object",
    "additionalProperties": False,
    "required": ["schema", "version", "generated_at", "ledger_position", "counts", "tasks"],
    "properties": {
        "schema": {"const": SNAPSHOT_NAME},
        "version": {"const": SNAPSHOT_VERSION},
        "generated_at": _TIME,
        "ledger_position": {"type": "integer", "minimum": 0},
        "counts": {
            "type": "object",
            "additionalProperties": False,
            "required": list(PlanningTask.Status.values),
            "properties": {s: {"type": "integer", "minimum": 0} for s in PlanningTask.Status.values},
        },
        "tasks": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "slug",
                    "title",
                    "project",
                    "procedure",
                    "plan",
                    "status",
                    "assignee",
                    "max_attempts",
                    "attempt_count",
                    "inconsistency",
                    "updated_at",
                    "current_attempt",
                ],
                "properties": {
                    "slug": {"type": "string", "minLength": 1},
                    "title": {"type": "string"},
                    "project": {"type": "string", "minLength": 1},
                    "procedure": {"type": "string", "minLength": 1},
                    "plan": {"type": ["string", "null"], "format": "uuid"},
                    "status": {"enum": list(PlanningTask.Status.values)},
                    "assignee": _TEXT_OR_NULL,
                    "max_attempts": {"type": "integer", "minimum": 1},
                    "attempt_count": {"type": "integer", "minimum": 0},
                    "inconsistency": {
                        "oneOf": [
                            {"type": "null"},
                            {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["since", "problems"],
                                "properties": {"since": _TIME, "problems": {"type": "string"}},
                            },
                        ]
                    },
                    "updated_at": _TIME,
                    "current_attempt": {
                        "oneOf": [
                            {"type": "null"},
                            {
                                "type": "object",
                                "additionalProperties": False,
                                "required": [
                                    "id",
                                    "number",
                                    "kind",
                                    "status",
                                    "requested_by",
                                    "requested_at",
                                    "reason",
                                    "requested_assignee",
                                    "resume_phase",
                                    "native_task_id",
                                    "native_run_id",
                                    "failure",
                                    "started_at",
                                    "finished_at",
                                ],
                                "properties": {
                                    "id": {"type": "string", "format": "uuid"},
                                    "number": {"type": "integer", "minimum": 1},
                                    "kind": {"enum": ["initial", "rerun", "retry", "repair"]},
                                    "status": {
                                        "enum": ["pending", "launching", "running", "succeeded", "failed", "cancelled"]
                                    },
                                    "requested_by": {"type": "string"},
                                    "requested_at": _TIME,
                                    "reason": {"type": "string"},
                                    "requested_assignee": _TEXT_OR_NULL,
                                    "resume_phase": _TEXT_OR_NULL,
                                    "native_task_id": _TEXT_OR_NULL,
                                    "native_run_id": _TEXT_OR_NULL,
                                    "failure": {
                                        "oneOf": [
                                            {"type": "null"},
                                            {
                                                "type": "object",
                                                "additionalProperties": False,
                                                "required": ["kind", "phase", "message"],
                                                "properties": {
                                                    "kind": {"type": "string"},
                                                    "phase": _TEXT_OR_NULL,
                                                    "message": {"type": "string"},
                                                },
                                            },
                                        ]
                                    },
                                    "started_at": _TIME_OR_NULL,
                                    "finished_at": _TIME_OR_NULL,
                                },
                            },
                        ]
                    },
                },
            },
        },
    },
}

_format_checker = FormatChecker(formats=("uuid",))


@_format_checker.checks("date-time", raises=ValueError)
def _is_time_with_zone(value: object) -> bool:
    # jsonschema's own date-time check needs an extra package; ISO 8601 with a
    # zone is what every time in a snapshot is.
    if not isinstance(value, str):
        return True
    return dt.datetime.fromisoformat(value).tzinfo is not None


_validator = Draft202012Validator(SNAPSHOT_SCHEMA, format_checker=_format_checker)


class SnapshotError(ServiceError):
    def __init__(self, detail: str, problems: list[str] | None = None) -> None:
        super().__init__("snapshot_failed", detail, errors={"snapshot": problems} if problems else None)
        self.problems = problems or []


@dataclass
class SnapshotResult:
    path: Path
    tasks: int
    size: int
    ledger_position: int


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _attempt(attempt) -> dict[str, Any] | None:
    if attempt is None:
        return None
    return {
        "id": str(attempt.id),
        "number": attempt.number,
        "kind": attempt.kind,
        "status": attempt.status,
        "requested_by": attempt.requested_by,
        "requested_at": _time(attempt.requested_at),
        "reason": attempt.reason,
        "requested_assignee": attempt.requested_assignee.name if attempt.requested_assignee_id else None,
        "resume_phase": attempt.resume_phase,
        "native_task_id": attempt.native_task_id,
        "native_run_id": attempt.native_run_id,
        "failure": attempt.failure,
        "started_at": _time(attempt.started_at),
        "finished_at": _time(attempt.finished_at),
    }


def snapshot_build() -> dict[str, Any]:
    """The snapshot as a dict. On PostgreSQL the reads share one
    REPEATABLE READ snapshot, so tasks, attempts and the ledger position
    describe one moment even while other transactions commit."""
    fresh = not connection.in_atomic_block
    with transaction.atomic():
        if fresh and connection.vendor == "postgresql":
            # Must be the transaction's first statement; inside a caller's
            # transaction the caller's isolation applies instead.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        ledger_position = Event.objects.aggregate(last=Max("id"))["last"] or 0
        tasks = []
        counts = dict.fromkeys(PlanningTask.Status.values, 0)
        for task in task_queryset().order_by("slug").iterator(chunk_size=1000):
            counts[task.status] += 1
            tasks.append(
                {
                    "slug": task.slug,
                    "title": task.title,
                    "project": task.project.slug,
                    "procedure": task.procedure.slug,
                    "plan": str(task.plan_id) if task.plan_id else None,
                    "status": task.status,
                    "assignee": task.assignee.name if task.assignee is not None else None,
                    "max_attempts": task.max_attempts,
                    "attempt_count": task.attempt_count,
                    "inconsistency": (
                        {"since": _time(task.inconsistent_since), "problems": task.inconsistency}
                        if task.inconsistent_since is not None
                        else None
                    ),
                    "updated_at": _time(task.updated_at),
                    "current_attempt": _attempt(task_current_attempt(task)),
                }
            )
    return {
        "schema": SNAPSHOT_NAME,
        "version": SNAPSHOT_VERSION,
        "generated_at": timezone.now().isoformat(),
        "ledger_position": ledger_position,
        "counts": counts,
        "tasks": tasks,
    }


def snapshot_problems(data: bytes) -> list[str]:
    """Everything wrong with a snapshot file's bytes; empty when it is valid."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"not valid JSON: {exc}"]
    problems = [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in sorted(_validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if problems:
        return problems
    slugs = [t["slug"] for t in document["tasks"]]
    if len(set(slugs)) != len(slugs):
        problems.append("tasks: a slug appears more than once")
    counted = dict.fromkeys(PlanningTask.Status.values, 0)
    for task in document["tasks"]:
        counted[task["status"]] += 1
    if counted != document["counts"]:
        problems.append("counts: do not match the tasks listed")
    return problems


def write_atomically(path: Path, payload: bytes, *, check: Callable[[bytes], list[str]]) -> None:
    """Write ``payload`` over ``path`` so that a reader only ever sees the old
    file or the complete, checked new one."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise SnapshotError(f"The folder {folder} does not exist.")
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        written = tmp.read_bytes()
        problems = check(written)
        if written != payload:
            problems = ["the file read back differs from what was written", *problems]
        if problems:
            raise SnapshotError("The snapshot written failed validation; the old file is untouched.", problems)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    # Make the rename itself durable.
    dir_fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def snapshot_export(*, path: str | os.PathLike) -> SnapshotResult:
    document = snapshot_build()
    payload = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    # Validate before touching the disk too: a bad projection never reaches a file.
    problems = snapshot_problems(payload)
    if problems:
        raise SnapshotError("The snapshot does not match its schema; nothing was written.", problems)
    write_atomically(Path(path), payload, check=snapshot_problems)
    return SnapshotResult(
        path=Path(path), tasks=len(document["tasks"]), size=len(payload), ledger_position=document["ledger_position"]
    )


__all__ = [
    "SNAPSHOT_SCHEMA",
    "SNAPSHOT_VERSION",
    "SnapshotError",
    "SnapshotResult",
    "snapshot_build",
    "snapshot_export",
    "snapshot_problems",
    "write_atomically",
]
