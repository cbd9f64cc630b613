"""Which committed ledger facts are alerts: one pure function over a table,
tested without a database (tests/alerts/test_events.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TASK_BLOCKED = "task.blocked"
ATTEMPT_STALLED = "attempt.stalled"
TASK_INCONSISTENT = "task.inconsistent"
PLAN_PAUSED = "plan.paused"
NATIVE_RUN_REFUSED_SUPERSEDED = "native_run.refused_superseded"
ALERT_EVENTS = (TASK_BLOCKED, ATTEMPT_STALLED, TASK_INCONSISTENT, PLAN_PAUSED, NATIVE_RUN_REFUSED_SUPERSEDED)

# Binding refusals that mean "this run belongs to a superseded attempt":
# it claims one (superseded), or carries a native id retired with one.
SUPERSEDED_REASONS = frozenset({"superseded", "retired_native_id"})

# ledger fact type -> [(alert event, does this fact's data raise it?)]
RULES: dict[str, list[tuple[str, Callable[[dict[str, Any]], bool]]]] = {
    "task.status_changed": [(TASK_BLOCKED, lambda d: d.get("status") == "blocked")],
    "attempt.status_changed": [(ATTEMPT_STALLED, lambda d: d.get("kind") == "stalled")],
    "task.marked_inconsistent": [(TASK_INCONSISTENT, lambda d: True)],
    "plan.paused": [(PLAN_PAUSED, lambda d: True)],
    "native_run.rejected": [(NATIVE_RUN_REFUSED_SUPERSEDED, lambda d: d.get("reason") in SUPERSEDED_REASONS)],
}


def alert_events(fact_type: str, data: dict[str, Any] | None) -> list[str]:
    """The alert events one committed fact raises (usually none)."""
    rules = RULES.get(fact_type)
    if not rules:
        return []
    data = data or {}
    return [event for event, applies in rules if applies(data)]
