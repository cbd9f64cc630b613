"""Rule 7: the ledger is truth. Before any automatic action (reconcile's
retry, block, stall, sync, relaunch, bind) the rows it is about to act on
are compared with what the ledger last said of them; a disagreement is an
inconsistency to repair, never an instruction."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedulable:
    ok: bool
    # Each disagreement, as verify_integrity words it; empty when ok.
    problems: tuple[str, ...]
    reason: str


def decide_schedulable(
    *,
    task_status: str,
    task_ledger_status: str | None,
    attempt_number: int | None = None,
    attempt_status: str | None = None,
    attempt_ledger_status: str | None = None,
    inconsistency: str | None = None,
    restores_task_to: str | None = None,
) -> Schedulable:
    """``*_ledger_status`` is the status carried by the last status event
    of the task (of its current attempt); None when the ledger has none.
    ``restores_task_to``: the action would only move the task row to this
    status (the seed-002 safety net, a task left behind its attempt); when
    that is what the ledger says, the action puts the row back to the truth
    and may go ahead."""
    if inconsistency:
        return Schedulable(False, (), f"marked inconsistent ({inconsistency}); it waits for a repair")
    problems: list[str] = []
    if task_ledger_status is None:
        problems.append("no task.created event in the ledger")
    elif task_ledger_status not in {task_status, restores_task_to}:
        problems.append(f"status is {task_status} but the ledger says {task_ledger_status}")
    if attempt_number is not None:
        if attempt_ledger_status is None:
            problems.append(f"attempt #{attempt_number} has no request event in the ledger")
        elif attempt_ledger_status != attempt_status:
            problems.append(
                f"attempt #{attempt_number} status is {attempt_status} but the ledger says {attempt_ledger_status}"
            )
    if problems:
        return Schedulable(False, tuple(problems), "rows disagree with the ledger: " + "; ".join(problems))
    return Schedulable(True, (), "rows agree with the ledger")
