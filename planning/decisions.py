"""Pure decisions of the planning side: plain values in, an answer and its
reason out. No database, no locks, no request. Services apply them;
screens ask them. (A task's status is no decision of its own: it follows
its current attempt, decided in ``retries.decisions``.)

- ``plan_status``: a plan's status from its tasks' counts and its pause;
- ``plan_pause``: whether a failure pauses the plan (``on_error: pause``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import Plan, PlanningTask

TS = PlanningTask.Status


@dataclass(frozen=True)
class PlanStatus:
    status: str
    reason: str


def plan_status(counts: dict[str, int], *, paused: bool) -> PlanStatus:
    """A plan's status from how many of its tasks have each status."""
    total = sum(counts.values())
    failing = sum(counts.get(s, 0) for s in PlanningTask.FAILING_STATUSES)
    active = counts.get(TS.LAUNCH_REQUESTED, 0) + counts.get(TS.RUNNING, 0)
    if paused:
        return PlanStatus(Plan.Status.PAUSED, "paused after a failure until an operator resumes it")
    if total == 0 or counts.get(TS.DRAFT, 0) == total:
        return PlanStatus(Plan.Status.DRAFT, "no task launched yet")
    if active + counts.get(TS.DRAFT, 0):
        return PlanStatus(Plan.Status.RUNNING, f"{active} task(s) active, {counts.get(TS.DRAFT, 0)} not launched")
    if failing:
        return PlanStatus(Plan.Status.FAILED, f"{failing} task(s) failed or blocked, none active")
    if counts.get(TS.SUCCEEDED, 0):
        return PlanStatus(Plan.Status.SUCCEEDED, "every task ended and none failed")
    return PlanStatus(Plan.Status.CANCELLED, "every task was cancelled")


def plan_pause(*, on_error: str, failure_seen: bool, paused: bool) -> bool:
    """Whether this failure pauses the plan now."""
    return on_error == Plan.OnError.PAUSE and failure_seen and not paused
