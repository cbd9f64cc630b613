"""Table-driven tests of rule 6 (resume, finalization, stall, retry or
block, phase outcomes), rule 7 (``decide_schedulable``), forward-only moves
and plan status."""

from __future__ import annotations

import datetime as dt

import pytest

from planning.decisions import plan_pause, plan_status
from retries.decisions import (
    Block,
    NextAttempt,
    PhaseRecord,
    Refusal,
    Skip,
    attempt_status_move,
    decide_phase_outcome,
    decide_retry_or_block,
    decide_schedulable,
    phase_failure_kind,
    resume_phase,
    run_status_move,
    stall_check,
)

from .builders import PHASES, T0, attempt, task


@pytest.mark.parametrize(
    ("passed", "expected"),
    [(set(), "preflight"), ({"preflight"}, "execute"), ({"preflight", "execute"}, "finalize"), (set(PHASES), None)],
)
def test_resume_after_each_phase(passed, expected):
    assert resume_phase(PHASES, passed) == expected


@pytest.mark.parametrize(
    ("phases", "phase", "kind"),
    [
        (PHASES, "finalize", "finalization_failed"),
        (PHASES, "execute", "phase_failed"),
        (PHASES, "preflight", "phase_failed"),
        (("only",), "only", "phase_failed"),
    ],
)
def test_finalization_is_told_from_the_work(phases, phase, kind):
    assert phase_failure_kind(phases, phase) == kind


def test_retry_resumes_at_the_first_phase_not_passed_and_says_why():
    current = attempt(1, failure_kind="stalled", failure_phase="execute")
    plan = decide_retry_or_block(task(), [current], passed={"preflight"})
    assert isinstance(plan, NextAttempt) and plan.kind == "retry" and plan.resume_phase == "execute"
    assert plan.reason == (
        "automatic retry after stalled in execute; resume at execute, the first phase not yet passed (preflight passed)"
    )
    assert plan.extra == {"finalization": False}


def test_a_finalization_failure_retries_only_finalize():
    current = attempt(1, failure_kind="finalization_failed", failure_phase="finalize")
    plan = decide_retry_or_block(task(), [current], passed={"preflight", "execute"})
    assert plan.resume_phase == "finalize" and plan.extra == {"finalization": True}


def test_a_spent_budget_blocks_with_the_budget_decision():
    current = attempt(3, failure_kind="phase_failed", failure_phase="execute")
    decision = decide_retry_or_block(task(attempt_count=3), [current], passed=set())
    assert isinstance(decision, Block)
    assert decision.reason.startswith("budget_exhausted: 3 of 3 attempts used")
    assert decision.data["reason"] == "budget_exhausted" and decision.data["attempt_number"] == 3


@pytest.mark.parametrize(
    ("facts", "current_status"),
    [
        (dict(status="succeeded"), "succeeded"),
        (dict(inconsistency="x"), "failed"),
        (dict(), "running"),
        (dict(plan_paused=True), "failed"),
    ],
)
def test_retry_skips(facts, current_status):
    assert isinstance(decide_retry_or_block(task(**facts), [attempt(1, status=current_status)], passed=set()), Skip)


@pytest.mark.parametrize(("silent", "stalled"), [(dt.timedelta(seconds=59), False), (dt.timedelta(seconds=60), True)])
def test_stall(silent, stalled):
    check = stall_check(now=T0 + silent, last_sign_of_life=T0, timeout_seconds=60)
    assert check.stalled is stalled and check.reason


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (dict(phase="nope"), ("refused", "invalid")),
        (dict(existing="passed"), ("noop", None)),
        (dict(existing="failed"), ("refused", "phase_conflict")),
        (dict(attempt=attempt(1, status="running", superseded_at=T0)), ("refused", "superseded")),
        (dict(attempt=attempt(1, status="succeeded")), ("refused", "attempt_finished")),
        (dict(phase="execute", outcome="failed"), ("record", "failed")),
        (dict(phase="finalize", passed={"preflight", "execute"}), ("record", "succeeded")),
        (dict(phase="execute"), ("record", None)),
        (
            dict(phase="finalize", attempt=attempt(2, status="running", resume_phase="finalize")),
            ("record", "succeeded"),
        ),
    ],
)
def test_phase_outcomes(kwargs, expected):
    args = dict(
        phases=PHASES,
        phase="preflight",
        outcome="passed",
        existing=None,
        attempt=attempt(1, status="running"),
        passed=set(),
    )
    args.update(kwargs)
    decision = decide_phase_outcome(**args)
    if isinstance(decision, Refusal):
        assert ("refused", decision.code) == expected
    elif not decision.record:
        assert expected == ("noop", None)
    else:
        assert isinstance(decision, PhaseRecord) and ("record", decision.ends_as) == expected


@pytest.mark.parametrize(
    ("kwargs", "ok"),
    [
        (
            dict(
                task_status="failed",
                task_ledger_status="failed",
                attempt_number=1,
                attempt_status="failed",
                attempt_ledger_status="failed",
            ),
            True,
        ),
        (
            dict(
                task_status="failed",
                task_ledger_status="succeeded",
                attempt_number=1,
                attempt_status="failed",
                attempt_ledger_status="succeeded",
            ),
            False,
        ),
        (
            dict(
                task_status="failed",
                task_ledger_status="failed",
                attempt_number=1,
                attempt_status="failed",
                attempt_ledger_status="running",
            ),
            False,
        ),
        (dict(task_status="failed", task_ledger_status=None), False),
        (dict(task_status="failed", task_ledger_status="failed", inconsistency="marked"), False),
        # The seed-002 safety net: a row left running while the ledger says
        # succeeded may be put back to succeeded, and only to that.
        (dict(task_status="running", task_ledger_status="succeeded", restores_task_to="succeeded"), True),
        (dict(task_status="running", task_ledger_status="succeeded", restores_task_to="failed"), False),
    ],
)
def test_schedulable_only_when_rows_agree_with_the_ledger(kwargs, ok):
    decision = decide_schedulable(**kwargs)
    assert decision.ok is ok and decision.reason


@pytest.mark.parametrize(
    ("move", "current", "target", "apply", "late"),
    [
        (attempt_status_move, "pending", "running", True, False),
        (attempt_status_move, "running", "running", False, False),
        (attempt_status_move, "running", "launching", False, True),
        (attempt_status_move, "failed", "succeeded", False, True),
        (run_status_move, "queued", "succeeded", True, False),
        (run_status_move, "succeeded", "failed", False, True),
    ],
)
def test_forward_only(move, current, target, apply, late):
    decision = move(current, target)
    assert (decision.apply, decision.late) == (apply, late)


@pytest.mark.parametrize(
    ("counts", "paused", "status"),
    [
        ({}, False, "draft"),
        ({"draft": 2}, False, "draft"),
        ({"running": 1, "failed": 1}, False, "running"),
        ({"failed": 1, "succeeded": 2}, False, "failed"),
        ({"blocked": 1}, False, "failed"),
        ({"succeeded": 2, "cancelled": 1}, False, "succeeded"),
        ({"cancelled": 2}, False, "cancelled"),
        ({"running": 1}, True, "paused"),
    ],
)
def test_plan_status(counts, paused, status):
    assert plan_status(counts, paused=paused).status == status


def test_plan_pause():
    assert plan_pause(on_error="pause", failure_seen=True, paused=False)
    assert not plan_pause(on_error="pause", failure_seen=True, paused=True)
    assert not plan_pause(on_error="continue", failure_seen=True, paused=False)
    assert not plan_pause(on_error="pause", failure_seen=False, paused=False)
