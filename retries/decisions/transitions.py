"""Forward-only status moves of attempts and native runs (DESIGN.md "Status
vocabularies"), and the task status an attempt's status projects to."""

from __future__ import annotations

from dataclasses import dataclass

from planning.models import PlanningTask

from ..models import Attempt, NativeRun

TS = PlanningTask.Status
AS = Attempt.Status
RS = NativeRun.Status

# Attempt status -> the task status it projects to. Keyed by plain str, as
# the model fields hold str: the enum members hash and compare as their value.
TASK_STATUS_FOR_ATTEMPT: dict[str, PlanningTask.Status] = {
    AS.PENDING: TS.LAUNCH_REQUESTED,
    AS.LAUNCHING: TS.LAUNCH_REQUESTED,
    AS.RUNNING: TS.RUNNING,
    AS.SUCCEEDED: TS.SUCCEEDED,
    AS.FAILED: TS.FAILED,
    AS.CANCELLED: TS.CANCELLED,
}
# Native run status -> the attempt status it moves a bound attempt to.
ATTEMPT_STATUS_FOR_RUN: dict[str, Attempt.Status] = {
    RS.QUEUED: AS.LAUNCHING,
    RS.RUNNING: AS.RUNNING,
    RS.SUCCEEDED: AS.SUCCEEDED,
    RS.FAILED: AS.FAILED,
    RS.CANCELLED: AS.CANCELLED,
}


@dataclass(frozen=True)
class Move:
    """``apply`` false: nothing changes, ``reason`` says why (a repeat, a
    late or backwards report)."""

    apply: bool
    reason: str
    late: bool = False


def _move(rank: dict, terminal: tuple, current: str, target: str) -> Move:
    if current == target:
        return Move(False, f"already {target}")
    if current in terminal:
        return Move(False, f"{current} is final; {target} came late", late=True)
    if rank[target] <= rank[current]:
        return Move(False, f"{target} would go back from {current}", late=True)
    return Move(True, f"{current} -> {target}")


def attempt_status_move(current: str, target: str) -> Move:
    """``pending -> launching -> running -> succeeded | failed | cancelled``;
    a terminal status never changes again."""
    return _move(Attempt.RANK, Attempt.TERMINAL, current, target)


def run_status_move(current: str, target: str) -> Move:
    """``queued -> running -> succeeded | failed | cancelled``, the same way."""
    return _move(NativeRun.RANK, NativeRun.TERMINAL, current, target)
