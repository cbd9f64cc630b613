"""Whether a launch, rerun, repair or cancel is allowed now, and what the
next attempt will be (rules 1, 3, 6 and 9). One function per request; the
service that applies it and every preview of it call the same one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from planning.models import PlanningTask

from ..models import Attempt
from .facts import AttemptFacts, TaskFacts

TS = PlanningTask.Status
AK = Attempt.Kind


@dataclass(frozen=True)
class Refusal:
    """Not allowed now: ``code`` is API.md's refusal code."""

    code: str
    detail: str


@dataclass(frozen=True)
class FrozenAssignee:
    name: str | None
    # "explicit", "previous attempt #n", "imported attempt #n",
    # "task assignee", "project owner" or "nobody".
    source: str


def frozen_assignee(
    *, explicit: str | None, previous: AttemptFacts | None, task_assignee: str | None, project_owner: str | None
) -> FrozenAssignee:
    """Rule 3: explicit choice ?? previous attempt's requested assignee ??
    task assignee ?? project owner. ``previous`` is the task's latest
    attempt, current or not, imported or not."""
    if explicit:
        return FrozenAssignee(explicit, "explicit")
    if previous is not None and previous.requested_assignee:
        return FrozenAssignee(previous.requested_assignee, f"previous {previous.label}")
    if task_assignee:
        return FrozenAssignee(task_assignee, "task assignee")
    if project_owner:
        return FrozenAssignee(project_owner, "project owner")
    return FrozenAssignee(None, "nobody")


@dataclass(frozen=True)
class NextAttempt:
    """What a launch, rerun, retry or repair will create, and why."""

    number: int
    kind: str
    assignee: FrozenAssignee
    resume_phase: str | None
    passed_phases: tuple[str, ...]
    # Counted after the new attempt exists.
    budget_used: int
    budget_max: int
    over_budget: bool
    # The current attempt it supersedes (cancelled first when still active).
    supersedes: AttemptFacts | None
    cancels_active: bool
    # Every native id it retires as (kind, value, attempt number, attempt
    # id) of the attempt it is retired for; none may ever bind again (rule 2).
    retires: tuple[tuple[str, str, int, uuid.UUID], ...]
    reason: str
    extra: dict = field(default_factory=dict)

    @property
    def budget_left(self) -> int:
        return max(self.budget_max - self.budget_used, 0)

    def summary(self) -> str:
        """One sentence for a person (previews, admin, ``--dry-run``)."""
        parts = [
            f"start {self.kind} attempt #{self.number} for {self.assignee.name or 'nobody'} ({self.assignee.source})"
        ]
        if self.supersedes is not None:
            verb = "cancel and supersede" if self.cancels_active else "supersede"
            parts.append(f"{verb} {self.supersedes.label}")
        parts.append(
            "resume at "
            + self.resume_phase
            + (f" ({', '.join(self.passed_phases)} passed)" if self.passed_phases else "")
            if self.resume_phase
            else "start from the first phase"
        )
        if self.retires:
            parts.append("retire native ids " + ", ".join(value for _, value, _, _ in self.retires))
        budget = f"attempt {self.budget_used} of {self.budget_max}"
        parts.append(budget + (" (past the budget, by override)" if self.over_budget else ""))
        return "; ".join(parts)


def _retires(attempts: list[AttemptFacts]) -> tuple[tuple[str, str, int, uuid.UUID], ...]:
    seen: dict[tuple[str, str], AttemptFacts] = {}
    for attempt in sorted(attempts, key=lambda a: a.number):
        for kind, value in attempt.native_ids:
            seen.setdefault((kind, value), attempt)
    return tuple((kind, value, a.number, a.id) for (kind, value), a in sorted(seen.items()))


def _latest(attempts: list[AttemptFacts]) -> AttemptFacts | None:
    return max(attempts, key=lambda a: a.number, default=None)


def _current(attempts: list[AttemptFacts]) -> AttemptFacts | None:
    return next((a for a in attempts if a.current), None)


def _next(
    task: TaskFacts,
    attempts: list[AttemptFacts],
    *,
    kind: str,
    explicit: str | None,
    reason: str,
    number: int | None = None,
    retire: list[AttemptFacts] | None = None,
    resume_phase: str | None = None,
    passed: tuple[str, ...] = (),
    override: bool = False,
) -> NextAttempt:
    current = _current(attempts)
    number = number if number is not None else task.attempt_count + 1
    return NextAttempt(
        number=number,
        kind=kind,
        assignee=frozen_assignee(
            explicit=explicit, previous=_latest(attempts), task_assignee=task.assignee, project_owner=task.project_owner
        ),
        resume_phase=resume_phase,
        passed_phases=passed,
        budget_used=number,
        budget_max=task.max_attempts,
        over_budget=override and task.attempt_count >= task.max_attempts,
        supersedes=current,
        cancels_active=current is not None and current.status not in Attempt.TERMINAL,
        retires=_retires(retire if retire is not None else ([current] if current else [])),
        reason=reason,
    )


def _inconsistent(task: TaskFacts) -> Refusal | None:
    if task.inconsistency:
        return Refusal(
            "inconsistent", f"Task {task.slug} disagrees with its ledger ({task.inconsistency}); repair it first."
        )
    return None


def decide_launch(task: TaskFacts, attempts: list[AttemptFacts]) -> NextAttempt | AttemptFacts | Refusal:
    """From draft: attempt 1. Launching again what is already launched
    (its initial attempt still waiting) answers that attempt, a no-op."""
    if task.status != TS.DRAFT:
        current = _current(attempts)
        if task.status == TS.LAUNCH_REQUESTED and current is not None and current.kind == AK.INITIAL:
            return current
        # A draft cancelled before its launch was never launched either.
        if refusal := _never_launched(task, attempts):
            return refusal
        return Refusal("already_launched", f"Task {task.slug} was launched already; use rerun or repair.")
    if refusal := _inconsistent(task):
        return refusal
    if task.plan_paused:
        return Refusal("plan_paused", f"The plan of {task.slug} is paused after a failure; resume it first.")
    return _next(task, attempts, kind=AK.INITIAL, explicit=None, reason="launch")


def _never_launched(task: TaskFacts, attempts: list[AttemptFacts]) -> Refusal | None:
    """Rerun and repair make a next attempt, so a task needs a first one: a
    draft is launched instead, and a draft cancelled before its launch stays
    cancelled (its cancel said it would never be launched; a rerun would
    have launched it as attempt #1 of kind rerun). No attempt at all and a
    zero counter is what a cancelled draft looks like; imported history
    counts as attempts."""
    if task.status == TS.DRAFT:
        return Refusal("not_launched", f"Task {task.slug} was never launched; launch it instead.")
    if not attempts and task.attempt_count == 0:
        return Refusal(
            "not_launched",
            f"Task {task.slug} was cancelled before it was ever launched; create a new task to run this work.",
        )
    return None


def decide_rerun(
    task: TaskFacts,
    attempts: list[AttemptFacts],
    *,
    reason: str,
    explicit: str | None = None,
    override_budget: bool = False,
    supersede_active: bool = False,
) -> NextAttempt | Refusal:
    """API.md "Rerun": an operator's fresh attempt at a failed, blocked or
    cancelled task; an active one only with ``supersede_active``; past the
    budget only with ``override_budget``."""
    slug = task.slug
    if refusal := _never_launched(task, attempts):
        return refusal
    if task.status == TS.SUCCEEDED:
        return Refusal("use_repair", f"Task {slug} succeeded; reopening it needs a repair with a reason.")
    if task.status in PlanningTask.ACTIVE_STATUSES and not supersede_active:
        return Refusal(
            "attempt_active", f"Task {slug} has an active attempt; set supersede_active to cancel and replace it."
        )
    if task.attempt_count >= task.max_attempts and not override_budget:
        return Refusal(
            "budget_exhausted",
            f"Task {slug} used {task.attempt_count} of {task.max_attempts} attempts; "
            "set override_budget to go past the budget.",
        )
    if refusal := _inconsistent(task):
        return refusal
    return _next(task, attempts, kind=AK.RERUN, explicit=explicit, reason=reason, override=override_budget)


def decide_repair(
    task: TaskFacts, attempts: list[AttemptFacts], *, reason: str, explicit: str | None = None
) -> NextAttempt | Refusal:
    """Rule 9: allowed from any status but draft (``task.status`` is the
    ledger's, a hand-edited row having been put back first). Supersedes
    every earlier attempt, retires all their native ids, keeps the frozen
    assignee unless one is given; numbered after the highest attempt, so a
    damaged counter cannot make it collide."""
    if refusal := _never_launched(task, attempts):
        return refusal
    number = max((a.number for a in attempts), default=0) + 1
    return _next(task, attempts, kind=AK.REPAIR, explicit=explicit, reason=reason, number=number, retire=attempts)


@dataclass(frozen=True)
class CancelDecision:
    noop: bool
    # The current attempt to cancel, when it has not finished.
    cancels: AttemptFacts | None
    reason: str


def decide_cancel(task: TaskFacts, attempts: list[AttemptFacts]) -> CancelDecision | Refusal:
    """Cancelling stops the current attempt and the task's automatic retries,
    or a draft before it is ever launched. A launched task needs a current
    attempt (one with only imported history has nothing to cancel); a
    succeeded task needs no cancel."""
    if task.status == TS.CANCELLED:
        return CancelDecision(True, None, f"Task {task.slug} is cancelled already.")
    if task.status == TS.SUCCEEDED:
        return Refusal("not_cancellable", f"Task {task.slug} already succeeded; there is nothing to cancel.")
    current = _current(attempts)
    if current is None and task.status == TS.DRAFT:
        return CancelDecision(False, None, "cancel the draft: it will never be launched")
    if current is None:
        return Refusal("nothing_to_cancel", f"Task {task.slug} has no current attempt to cancel.")
    active = current.status not in Attempt.TERMINAL
    return CancelDecision(
        False,
        current if active else None,
        f"cancel {current.label}" if active else f"stop the automatic retries after {current.label} ({current.status})",
    )
