"""Table-driven tests of rule 2 (``decide_binding``) and its explanation."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from retries.decisions import ClaimedAttempt, CurrentAttempt, RetiredId, RunFacts, decide_binding, explain_binding

from .builders import T0

NOW = T0 + dt.timedelta(hours=1)
SKEW = dt.timedelta(minutes=5)
A1, A2 = uuid.UUID(int=1), uuid.UUID(int=2)
CURRENT = CurrentAttempt(A2, 2, T0 + dt.timedelta(minutes=30))
SUPERSEDED = ClaimedAttempt(
    A1, 7, 1, superseded_at=T0 + dt.timedelta(minutes=30), superseded_by_number=2, superseded_by_actor="operator"
)


def run(claimed=None, created_at=None, native_run_id="nr-1") -> RunFacts:
    return RunFacts("ext", "nt-1", native_run_id, claimed, created_at)


@pytest.mark.parametrize(
    ("name", "kwargs", "state", "reason"),
    [
        ("unknown task", dict(run=run(A2), task_id=None, current=None, claimed=None), "rejected", "unknown_task"),
        ("unknown attempt", dict(run=run(uuid.UUID(int=9)), claimed=None), "rejected", "unknown_attempt"),
        ("other task's attempt", dict(run=run(A2), claimed=ClaimedAttempt(A2, 8, 2)), "rejected", "task_mismatch"),
        ("superseded claim", dict(run=run(A1), claimed=SUPERSEDED), "rejected", "superseded"),
        (
            "claim, no current",
            dict(run=run(A2), claimed=ClaimedAttempt(A2, 7, 2), current=None),
            "rejected",
            "superseded",
        ),
        ("current claim", dict(run=run(A2), claimed=ClaimedAttempt(A2, 7, 2)), "bound", None),
        (
            "retired id",
            dict(run=run(None, NOW), retired=RetiredId("task", "nt-1", 1, T0)),
            "rejected",
            "retired_native_id",
        ),
        ("legacy, no current", dict(run=run(None, NOW), current=None), "unbound", "no_current_attempt"),
        ("legacy, no created_at", dict(run=run(None, None)), "rejected", "legacy_run_without_created_at"),
        ("legacy, future", dict(run=run(None, NOW + dt.timedelta(minutes=6))), "rejected", "created_in_future"),
        ("legacy, within skew", dict(run=run(None, NOW + dt.timedelta(minutes=4))), "bound", None),
        ("legacy, older", dict(run=run(None, T0)), "rejected", "predates_current_attempt"),
        ("legacy, newer", dict(run=run(None, NOW)), "bound", None),
        (
            "already bound",
            dict(run=run(None, NOW, "nr-2"), current=CurrentAttempt(A2, 2, T0, bound_native_run_id="nr-1")),
            "rejected",
            "attempt_already_bound",
        ),
    ],
)
def test_every_binding_reason(name, kwargs, state, reason):
    args = dict(task_id=7, current=CURRENT, claimed=None, retired=None, now=NOW, clock_skew=SKEW)
    args.update(kwargs)
    decision = decide_binding(**args)
    assert (decision.state, decision.reason) == (state, reason), name
    assert decision.explanation and "None" not in decision.explanation


def test_a_claim_for_a_superseded_attempt_retires_the_runs_ids():
    """Seed 000's relink: the old runtime's claim ties its ids to attempt #1;
    they are retired so that its next report without an attempt id cannot bind."""
    decision = decide_binding(
        run=run(A1), task_id=7, current=CURRENT, claimed=SUPERSEDED, retired=None, now=NOW, clock_skew=SKEW
    )
    assert decision.retire_claimed
    assert decision.explanation.startswith(
        "Refused: names attempt #1, superseded by #2 at 2026-11-02 09:44:00 UTC "
        "by operator; a superseded run never binds again"
    )


def test_the_facts_compared_are_kept():
    decision = decide_binding(
        run=run(None, T0), task_id=7, current=CURRENT, claimed=None, retired=None, now=NOW, clock_skew=SKEW
    )
    assert decision.facts["created_at"] == T0.isoformat()
    assert decision.facts["current_attempt"]["number"] == 2
    assert "before attempt #2 was requested" in explain_binding(decision.state, decision.reason, decision.facts)


def test_imported_supersession_is_told_apart():
    claimed = ClaimedAttempt(A1, 7, 1, superseded_at=T0)
    text = decide_binding(
        run=run(A1), task_id=7, current=None, claimed=claimed, retired=None, now=NOW, clock_skew=SKEW
    ).explanation
    assert "(imported history)" in text and "#None" not in text


def test_a_bound_runs_sentence_stays_true_after_its_attempt_is_superseded():
    """The sentence is built from the binding's facts whenever it is shown:
    it speaks of then, not of now (a stranger read "the current one" on a
    run whose attempt a rerun had superseded since)."""
    decision = decide_binding(
        run=run(A2),
        task_id=7,
        current=CURRENT,
        claimed=ClaimedAttempt(A2, 7, 2),
        retired=None,
        now=NOW,
        clock_skew=SKEW,
    )
    assert decision.state == "bound"
    text = explain_binding(decision.state, decision.reason, decision.facts)
    assert text.startswith("Bound to attempt #2: it named attempt #2, the current one when it was bound"), text
