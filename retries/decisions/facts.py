"""The facts decisions take: plain, frozen values read from the rows (by a
service under its locks, or by a preview without them). Nothing here reads
the database; ``retries.services.facts`` builds these from rows."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TaskFacts:
    slug: str
    status: str
    attempt_count: int
    max_attempts: int
    phases: tuple[str, ...]
    assignee: str | None
    project_owner: str | None
    # Set when verify_integrity (or an automatic action) found the rows
    # disagreeing with the ledger; the text says how.
    inconsistency: str | None = None
    plan_paused: bool = False


@dataclass(frozen=True)
class AttemptFacts:
    id: uuid.UUID
    number: int
    kind: str
    status: str
    requested_at: dt.datetime
    requested_by: str = "system"
    requested_assignee: str | None = None
    imported: bool = False
    superseded_at: dt.datetime | None = None
    resume_phase: str | None = None
    failure_kind: str | None = None
    failure_phase: str | None = None
    # Native ids linked to this attempt: its own, those of runs bound to it
    # and those of runs that claimed it (rule 2: a claim counts), as
    # ("task" | "run", value) pairs.
    native_ids: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def current(self) -> bool:
        return self.superseded_at is None

    @property
    def label(self) -> str:
        return f"{'imported attempt' if self.imported else 'attempt'} #{self.number}"
