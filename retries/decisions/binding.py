"""Rule 2: bind by attempt. Whether a reported native run binds to the
task's current attempt, is rejected (and why), or waits unbound — with the
facts compared, kept on the run and in the ledger, and one sentence built
from them for every screen (``explain_binding``)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

BOUND, REJECTED, UNBOUND = "bound", "rejected", "unbound"


@dataclass(frozen=True)
class ClaimedAttempt:
    """The attempt a report names (``attempt_id``)."""

    id: uuid.UUID
    task_id: int
    number: int
    superseded_at: dt.datetime | None = None
    superseded_by_number: int | None = None
    superseded_by_actor: str | None = None


@dataclass(frozen=True)
class CurrentAttempt:
    id: uuid.UUID
    number: int
    requested_at: dt.datetime
    bound_native_run_id: str | None = None


@dataclass(frozen=True)
class RetiredId:
    kind: str  # "task" | "run"
    value: str
    attempt_number: int | None
    retired_at: dt.datetime | None


@dataclass(frozen=True)
class RunFacts:
    executor: str
    native_task_id: str
    native_run_id: str
    claimed_attempt_id: uuid.UUID | None
    created_at: dt.datetime | None


@dataclass(frozen=True)
class Binding:
    state: str
    reason: str | None
    # What was compared, as JSON-ready values: kept on the run
    # (``binding_facts``) and in the ledger event, read by ``explain_binding``.
    facts: dict[str, Any] = field(default_factory=dict)
    # The run tied its ids to a superseded attempt by its own claim: they
    # are retired now, so no later report carrying them binds (rule 2).
    retire_claimed: bool = False

    @property
    def explanation(self) -> str:
        return explain_binding(self.state, self.reason, self.facts)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def decide_binding(
    *,
    run: RunFacts,
    task_id: int | None,
    current: CurrentAttempt | None,
    claimed: ClaimedAttempt | None,
    retired: RetiredId | None,
    now: dt.datetime,
    clock_skew: dt.timedelta,
) -> Binding:
    """``claimed`` is the attempt the run names, None when it names none or
    one that does not exist (told apart by ``run.claimed_attempt_id``);
    ``retired`` the first of the run's ids found retired, if any."""
    facts: dict[str, Any] = {}
    if current is not None:
        facts["current_attempt"] = {
            "id": str(current.id),
            "number": current.number,
            "requested_at": _iso(current.requested_at),
        }
    if task_id is None:
        return Binding(REJECTED, "unknown_task", facts)
    if run.claimed_attempt_id is not None:
        facts["claimed_attempt_id"] = str(run.claimed_attempt_id)
        if claimed is None:
            return Binding(REJECTED, "unknown_attempt", facts)
        facts["claimed_attempt"] = {
            "number": claimed.number,
            "superseded_at": _iso(claimed.superseded_at),
            "superseded_by_number": claimed.superseded_by_number,
            "superseded_by_actor": claimed.superseded_by_actor,
        }
        if claimed.task_id != task_id:
            return Binding(REJECTED, "task_mismatch", facts)
        if claimed.superseded_at is not None or current is None or current.id != claimed.id:
            return Binding(REJECTED, "superseded", facts, retire_claimed=claimed.superseded_at is not None)
    # A retired id is refused at once, even while no attempt is current
    # (a task with only imported history): it can never bind.
    if retired is not None:
        facts["retired"] = {
            "kind": retired.kind,
            "value": retired.value,
            "attempt_number": retired.attempt_number,
            "retired_at": _iso(retired.retired_at),
        }
        return Binding(REJECTED, "retired_native_id", facts)
    if run.claimed_attempt_id is None:
        if current is None:
            return Binding(UNBOUND, "no_current_attempt", facts)
        if run.created_at is None:
            return Binding(REJECTED, "legacy_run_without_created_at", facts)
        facts["created_at"] = _iso(run.created_at)
        if run.created_at > now + clock_skew:
            facts["now"] = _iso(now)
            facts["clock_skew_seconds"] = int(clock_skew.total_seconds())
            return Binding(REJECTED, "created_in_future", facts)
        if run.created_at < current.requested_at:
            return Binding(REJECTED, "predates_current_attempt", facts)
    # Without a current attempt every path above has returned.
    assert current is not None
    if current.bound_native_run_id and current.bound_native_run_id != run.native_run_id:
        facts["bound_native_run_id"] = current.bound_native_run_id
        return Binding(REJECTED, "attempt_already_bound", facts)
    return Binding(BOUND, None, facts)


def _time(value: str | None) -> str:
    if not value:
        return "an unknown time"
    try:
        return dt.datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    except ValueError:
        return value


def explain_binding(state: str, reason: str | None, facts: dict[str, Any] | None) -> str:
    """One sentence from the decision's facts, the same on every screen."""
    facts = facts or {}
    current = facts.get("current_attempt") or {}
    claimed = facts.get("claimed_attempt") or {}
    now_n = f"#{current['number']}" if current.get("number") else "none"
    if state == BOUND:
        how = (
            f"named attempt #{claimed.get('number')}, the current one when it was bound"
            if claimed
            else f"named no attempt; created {_time(facts.get('created_at'))}, at or after attempt {now_n} "
            f"was requested ({_time(current.get('requested_at'))})"
        )
        # Past tense: the facts are the binding's, and a later rerun or
        # repair supersedes the attempt without unbinding the run.
        return f"Bound to attempt {now_n}: it {how}."
    if state == UNBOUND:
        return "Waiting: the task has no current attempt to bind to; a rerun or repair makes one."
    if reason == "unknown_task":
        return "Refused: it names no known task."
    if reason == "unknown_attempt":
        return f"Refused: it names attempt {facts.get('claimed_attempt_id')}, which does not exist."
    if reason == "task_mismatch":
        return f"Refused: it names attempt #{claimed.get('number')} of another task."
    if reason == "superseded":
        if claimed.get("superseded_at"):
            by = claimed.get("superseded_by_number")
            who = claimed.get("superseded_by_actor")
            return (
                f"Refused: names attempt #{claimed.get('number')}, superseded"
                + (f" by #{by}" if by else " (imported history)")
                + f" at {_time(claimed.get('superseded_at'))}"
                + (f" by {who}" if who else "")
                + "; a superseded run never binds again, and its ids are retired."
            )
        return f"Refused: names attempt #{claimed.get('number')}, which is not the current attempt ({now_n})."
    if reason == "retired_native_id":
        retired = facts.get("retired") or {}
        of = f"attempt #{retired['attempt_number']}" if retired.get("attempt_number") else "a superseded attempt"
        return (
            f"Refused: its {retired.get('kind')} id {retired.get('value')} was retired with {of} at "
            f"{_time(retired.get('retired_at'))}; a superseded run never binds again."
        )
    if reason == "legacy_run_without_created_at":
        return "Refused: it names no attempt and no created_at, so it cannot be told apart from an old run."
    if reason == "created_in_future":
        return (
            f"Refused: its created_at {_time(facts.get('created_at'))} lies more than "
            f"{facts.get('clock_skew_seconds')} s in the future."
        )
    if reason == "predates_current_attempt":
        return (
            f"Refused: created {_time(facts.get('created_at'))}, before attempt {now_n} was requested "
            f"({_time(current.get('requested_at'))})."
        )
    if reason == "attempt_already_bound":
        return f"Refused: attempt {now_n} is already bound to run {facts.get('bound_native_run_id')}."
    return f"Refused: {reason}." if reason else state.capitalize() + "."
