"""Rule 6: durable phases, bounded retries. Where a retry resumes, whether a
failure was the work's or the bookkeeping's (finalization), when an attempt
is complete, when it stalled, and whether a failed task is retried or
blocked."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from planning.models import PlanningTask

from ..models import Attempt
from .attempts import NextAttempt, Refusal, _next
from .facts import AttemptFacts, TaskFacts

TS = PlanningTask.Status


def resume_phase(phases: list[str] | tuple[str, ...], passed: set[str] | frozenset[str]) -> str | None:
    """The first phase not yet passed (None: every phase passed)."""
    return next((phase for phase in phases if phase not in passed), None)


def phase_failure_kind(phases: list[str] | tuple[str, ...], phase: str) -> str:
    """A failure in the last phase of a multi-phase procedure is
    bookkeeping, not the work itself: the retry resumes there and does not
    redo what passed."""
    return "finalization_failed" if len(phases) > 1 and phase == phases[-1] else "phase_failed"


def attempt_completes(phases: list[str] | tuple[str, ...], resume: str | None, passed: set[str]) -> bool:
    """An attempt succeeds when every phase from where it resumed has passed."""
    start = list(phases).index(resume) if resume is not None and resume in phases else 0
    return all(p in passed for p in list(phases)[start:])


@dataclass(frozen=True)
class Stall:
    stalled: bool
    silent_seconds: int
    reason: str


def stall_check(
    *, now: dt.datetime, last_sign_of_life: dt.datetime, timeout_seconds: int, coalesce_seconds: float = 0
) -> Stall:
    """Is an active attempt stalled? ``coalesce_seconds``: heartbeats within
    that interval of the recorded one are not written (heartbeats.py), so
    the last one heard may be that much newer than the record. The attempt
    is stalled only when even that newest possible heartbeat is older than
    the timeout: a run heard from within its timeout is never failed."""
    silent = int((now - last_sign_of_life).total_seconds())
    allowed = dt.timedelta(seconds=timeout_seconds + coalesce_seconds)
    slack = f" + {coalesce_seconds:g} s of heartbeat coalescing" if coalesce_seconds else ""
    if now - last_sign_of_life < allowed:
        return Stall(
            False, silent, f"heard from {silent} s ago, within the stall timeout of {timeout_seconds} s{slack}"
        )
    return Stall(True, silent, f"No heartbeat for {silent} s (stall timeout {timeout_seconds} s{slack}).")


@dataclass(frozen=True)
class Skip:
    reason: str


@dataclass(frozen=True)
class Block:
    reason: str
    data: dict


def _failure_text(current: AttemptFacts) -> str:
    text = current.failure_kind or "failure"
    return text + (f" in {current.failure_phase}" if current.failure_phase else "")


def decide_retry_or_block(
    task: TaskFacts, attempts: list[AttemptFacts], *, passed: frozenset[str] | set[str]
) -> NextAttempt | Block | Skip:
    """Reconciliation's answer to a failed task. Only a consistent failed
    task whose current attempt failed, outside a paused plan, is acted on:
    within budget a ``retry`` resuming at the first phase not yet passed by
    the current chain (``passed``); past it, ``blocked``."""
    current = next((a for a in attempts if a.current), None)
    if task.status != TS.FAILED:
        return Skip(f"task is {task.status}, not failed")
    if task.inconsistency:
        return Skip(f"task disagrees with its ledger ({task.inconsistency}); it waits for a repair")
    if current is None or current.status != Attempt.Status.FAILED:
        return Skip("no failed current attempt")
    if task.plan_paused:
        return Skip("its plan is paused")
    finalization = current.failure_kind == "finalization_failed"
    if task.attempt_count >= task.max_attempts:
        return Block(
            f"budget_exhausted: {task.attempt_count} of {task.max_attempts} attempts used; "
            f"the last one ended in {_failure_text(current)}",
            {
                "reason": "budget_exhausted",
                "attempt_number": current.number,
                "max_attempts": task.max_attempts,
                "failure": {"kind": current.failure_kind, "phase": current.failure_phase},
                "finalization": finalization,
            },
        )
    resume = resume_phase(task.phases, passed)
    done = tuple(p for p in task.phases if p in passed)
    where = (
        f"resume at {resume}, the first phase not yet passed" + (f" ({', '.join(done)} passed)" if done else "")
        if resume
        else "every phase passed; start again from the first"
    )
    reason = f"automatic retry after {_failure_text(current)}; {where}"
    plan = _next(
        task, attempts, kind=Attempt.Kind.RETRY, explicit=None, reason=reason, resume_phase=resume, passed=done
    )
    return replace(plan, extra={"finalization": finalization})


@dataclass(frozen=True)
class PhaseRecord:
    """``record`` false with no refusal: a repeat, a no-op that succeeds."""

    record: bool
    # After recording: the attempt's new status ("failed" or "succeeded"),
    # None when it just keeps running.
    ends_as: str | None = None
    failure_kind: str | None = None
    reason: str = ""


def decide_phase_outcome(
    *,
    phases: tuple[str, ...] | list[str],
    phase: str,
    outcome: str,
    existing: str | None,
    attempt: AttemptFacts,
    passed: set[str],
) -> PhaseRecord | Refusal:
    """Rule 4 and 6 for ``POST /attempts/{id}/phases/``: an unknown phase is
    bad input; the same outcome again is a no-op; another outcome for a
    recorded phase, a superseded or a finished attempt are refused. A
    failure ends the attempt (told apart: finalization or the work); a
    pass that completes every phase from where it resumed succeeds it."""
    if phase not in phases:
        return Refusal("invalid", f"This procedure has no phase {phase!r}; it has {list(phases)}.")
    if existing is not None:
        if existing == outcome:
            return PhaseRecord(False, reason=f"{phase} was already recorded as {outcome}")
        return Refusal(
            "phase_conflict", f"Phase {phase} of attempt #{attempt.number} was already recorded as {existing}."
        )
    if not attempt.current:
        return Refusal("superseded", f"Attempt #{attempt.number} was superseded; its reports change nothing.")
    if attempt.status in Attempt.TERMINAL:
        return Refusal("attempt_finished", f"Attempt #{attempt.number} is {attempt.status} already.")
    if outcome == "failed":
        kind = phase_failure_kind(phases, phase)
        return PhaseRecord(True, Attempt.Status.FAILED, kind, f"{phase} failed: {kind.replace('_', ' ')}")
    if attempt_completes(phases, attempt.resume_phase, passed | {phase}):
        return PhaseRecord(
            True,
            Attempt.Status.SUCCEEDED,
            None,
            f"{phase} passed; every phase from {attempt.resume_phase or phases[0]} has passed",
        )
    return PhaseRecord(True, None, None, f"{phase} passed")
