"""Plain facts for the decision tables: no database."""

from __future__ import annotations

import datetime as dt
import uuid

from retries.decisions import AttemptFacts, TaskFacts

T0 = dt.datetime(2026, 11, 2, 9, 14, tzinfo=dt.UTC)
PHASES = ("preflight", "execute", "finalize")


def task(**kw) -> TaskFacts:
    values = dict(
        slug="t",
        status="failed",
        attempt_count=1,
        max_attempts=3,
        phases=PHASES,
        assignee="owner",
        project_owner="owner",
        inconsistency=None,
        plan_paused=False,
    )
    values.update(kw)
    return TaskFacts(**values)


def attempt(number: int = 1, **kw) -> AttemptFacts:
    values = dict(
        id=uuid.UUID(int=number),
        number=number,
        kind="initial",
        status="failed",
        requested_at=T0 + dt.timedelta(minutes=number),
        requested_by="op",
        requested_assignee=None,
    )
    values.update(kw)
    return AttemptFacts(**values)
