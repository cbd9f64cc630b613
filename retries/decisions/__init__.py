"""Every rule of DESIGN.md about attempts is decided here, once, by a pure
function: plain values in (``facts``), an answer and its reason out. No
database, no locks, no request. Services lock their rows, read the facts,
call the decision, apply it and write its reason into the ledger; previews,
screens, the admin and commands ask the same function. ``docs/rules.md``
maps each rule to its function and tests."""

from .attempts import (
    CancelDecision,
    FrozenAssignee,
    NextAttempt,
    Refusal,
    decide_cancel,
    decide_launch,
    decide_repair,
    decide_rerun,
    frozen_assignee,
)
from .binding import (
    Binding,
    ClaimedAttempt,
    CurrentAttempt,
    RetiredId,
    RunFacts,
    decide_binding,
    explain_binding,
)
from .facts import AttemptFacts, TaskFacts
from .ledger import Schedulable, decide_schedulable
from .retry import (
    Block,
    PhaseRecord,
    Skip,
    Stall,
    attempt_completes,
    decide_phase_outcome,
    decide_retry_or_block,
    phase_failure_kind,
    resume_phase,
    stall_check,
)
from .transitions import (
    ATTEMPT_STATUS_FOR_RUN,
    TASK_STATUS_FOR_ATTEMPT,
    Move,
    attempt_status_move,
    run_status_move,
)

__all__ = [
    "ATTEMPT_STATUS_FOR_RUN",
    "TASK_STATUS_FOR_ATTEMPT",
    "AttemptFacts",
    "Binding",
    "Block",
    "CancelDecision",
    "ClaimedAttempt",
    "CurrentAttempt",
    "FrozenAssignee",
    "Move",
    "NextAttempt",
    "PhaseRecord",
    "Refusal",
    "RetiredId",
    "RunFacts",
    "Schedulable",
    "Skip",
    "Stall",
    "TaskFacts",
    "attempt_completes",
    "attempt_status_move",
    "decide_binding",
    "decide_cancel",
    "decide_launch",
    "decide_phase_outcome",
    "decide_repair",
    "decide_rerun",
    "decide_retry_or_block",
    "decide_schedulable",
    "explain_binding",
    "frozen_assignee",
    "phase_failure_kind",
    "resume_phase",
    "run_status_move",
    "stall_check",
]
