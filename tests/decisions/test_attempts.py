"""Table-driven tests of the request decisions (rules 1, 3, 9 and API.md's
refusal codes): plain facts in, the answer and its reason out."""

from __future__ import annotations

import pytest

from retries.decisions import (
    CancelDecision,
    NextAttempt,
    Refusal,
    decide_cancel,
    decide_launch,
    decide_repair,
    decide_rerun,
    frozen_assignee,
)

from .builders import T0, attempt, task


@pytest.mark.parametrize(
    ("facts", "flags", "code"),
    [
        (dict(status="draft", attempt_count=0), {}, "not_launched"),
        (dict(status="succeeded"), {}, "use_repair"),
        (dict(status="running"), {}, "attempt_active"),
        (dict(status="launch_requested"), {}, "attempt_active"),
        (dict(status="failed", attempt_count=3), {}, "budget_exhausted"),
        (dict(status="blocked", attempt_count=3), {}, "budget_exhausted"),
        (dict(status="failed", inconsistency="status is failed but the ledger says succeeded"), {}, "inconsistent"),
        (dict(status="failed"), {}, None),
        (dict(status="blocked", attempt_count=3), {"override_budget": True}, None),
        (dict(status="cancelled"), {}, None),
        (dict(status="running"), {"supersede_active": True}, None),
    ],
)
def test_rerun_refusals(facts, flags, code):
    current = attempt(1, status="running" if facts.get("status") == "running" else "failed")
    decision = decide_rerun(task(**facts), [current], reason="why", **flags)
    if code is None:
        assert isinstance(decision, NextAttempt) and decision.kind == "rerun"
    else:
        assert isinstance(decision, Refusal) and decision.code == code
        assert decision.detail


@pytest.mark.parametrize(
    ("explicit", "previous", "task_assignee", "owner", "expected"),
    [
        ("chosen", attempt(2, requested_assignee="aemeath"), "tasker", "owner", ("chosen", "explicit")),
        (None, attempt(2, requested_assignee="aemeath"), "tasker", "owner", ("aemeath", "previous attempt #2")),
        (
            None,
            attempt(1, requested_assignee="aemeath", imported=True, superseded_at=T0),
            "owner",
            "owner",
            ("aemeath", "previous imported attempt #1"),
        ),
        (None, attempt(2, requested_assignee=None), "tasker", "owner", ("tasker", "task assignee")),
        (None, None, "tasker", "owner", ("tasker", "task assignee")),
        (None, None, None, "owner", ("owner", "project owner")),
        (None, None, None, None, (None, "nobody")),
    ],
)
def test_every_assignee_source(explicit, previous, task_assignee, owner, expected):
    answer = frozen_assignee(explicit=explicit, previous=previous, task_assignee=task_assignee, project_owner=owner)
    assert (answer.name, answer.source) == expected


def test_a_rerun_of_imported_history_freezes_the_imported_assignee_not_the_task_assignee():
    """The seed-000 drift, through a default: the task's own assignee is the
    owner, the imported attempt asked for aemeath."""
    imported = attempt(1, requested_assignee="aemeath", imported=True, superseded_at=T0)
    plan = decide_rerun(task(assignee="owner"), [imported], reason="after migration")
    assert (plan.assignee.name, plan.assignee.source) == ("aemeath", "previous imported attempt #1")
    assert plan.supersedes is None and plan.number == 2 and plan.retires == ()


def test_a_rerun_supersedes_the_current_attempt_and_retires_what_it_claimed_or_bound():
    current = attempt(1, native_ids=(("task", "nt-X"), ("run", "nt-X-r1")))
    plan = decide_rerun(task(), [current], reason="again")
    assert plan.supersedes == current and not plan.cancels_active
    assert [(k, v, n) for k, v, n, _ in plan.retires] == [("run", "nt-X-r1", 1), ("task", "nt-X", 1)]
    assert (plan.budget_used, plan.budget_max, plan.budget_left) == (2, 3, 1)


def test_supersede_active_cancels_the_running_attempt():
    plan = decide_rerun(task(status="running"), [attempt(1, status="running")], reason="r", supersede_active=True)
    assert plan.cancels_active and "cancel and supersede attempt #1" in plan.summary()


def test_override_is_recorded_only_past_the_budget():
    within = decide_rerun(task(attempt_count=1), [attempt(1)], reason="r", override_budget=True)
    past = decide_rerun(task(attempt_count=3), [attempt(3)], reason="r", override_budget=True)
    assert not within.over_budget and past.over_budget and past.budget_left == 0


@pytest.mark.parametrize(
    ("status", "current_kind", "expected"),
    [
        ("draft", None, "plan"),
        ("launch_requested", "initial", "noop"),
        ("launch_requested", "rerun", "already_launched"),
        ("failed", "initial", "already_launched"),
    ],
)
def test_launch(status, current_kind, expected):
    attempts = [attempt(1, kind=current_kind, status="pending")] if current_kind else []
    decision = decide_launch(task(status=status, attempt_count=len(attempts)), attempts)
    if expected == "plan":
        assert isinstance(decision, NextAttempt) and decision.number == 1 and decision.kind == "initial"
    elif expected == "noop":
        assert decision == attempts[0]
    else:
        assert isinstance(decision, Refusal) and decision.code == expected


def test_launch_refused_while_the_plan_is_paused_or_inconsistent():
    assert decide_launch(task(status="draft", plan_paused=True), []).code == "plan_paused"
    assert decide_launch(task(status="draft", inconsistency="x"), []).code == "inconsistent"


def test_repair_supersedes_everything_and_numbers_after_the_highest():
    rows = [
        attempt(1, imported=True, superseded_at=T0, native_ids=(("task", "nt-1"),)),
        attempt(2, kind="rerun", native_ids=(("run", "nr-2"),), requested_assignee="aemeath"),
    ]
    plan = decide_repair(task(status="succeeded", attempt_count=1), rows, reason="relinked")
    assert plan.number == 3 and plan.kind == "repair", "a damaged counter does not make it collide"
    assert {v for _, v, _, _ in plan.retires} == {"nt-1", "nr-2"}
    assert (plan.assignee.name, plan.assignee.source) == ("aemeath", "previous attempt #2")
    assert decide_repair(task(status="draft", attempt_count=0), [], reason="x").code == "not_launched"


@pytest.mark.parametrize(
    ("status", "current_status", "expected"),
    [
        ("cancelled", "cancelled", "noop"),
        ("succeeded", "succeeded", "not_cancellable"),
        ("running", "running", "cancels"),
        ("failed", "failed", "stops_retries"),
        ("failed", None, "nothing_to_cancel"),
        ("draft", None, "draft"),
    ],
)
def test_cancel(status, current_status, expected):
    attempts = [attempt(1, status=current_status)] if current_status else []
    decision = decide_cancel(task(status=status), attempts)
    if isinstance(decision, Refusal):
        assert decision.code == expected
        return
    assert isinstance(decision, CancelDecision)
    assert {
        "noop": decision.noop,
        "cancels": decision.cancels == attempts[0] if attempts else False,
        "stops_retries": decision.cancels is None and not decision.noop,
        "draft": decision.cancels is None and not decision.noop,
    }[expected]


@pytest.mark.parametrize(
    ("facts", "attempts", "refused"),
    [
        (dict(status="cancelled", attempt_count=0), [], True),  # a draft cancelled before its launch
        (dict(status="cancelled", attempt_count=1), [], False),  # a counter says it ran: not this rule's case
        (dict(status="cancelled", attempt_count=0), [attempt(1, imported=True)], False),  # imported history counts
        (dict(status="failed", attempt_count=1), [attempt(1, status="failed")], False),
    ],
)
def test_rerun_and_repair_need_a_first_attempt(facts, attempts, refused):
    for decision in (
        decide_rerun(task(**facts), attempts, reason="why"),
        decide_repair(task(**facts), attempts, reason="why"),
    ):
        if refused:
            assert isinstance(decision, Refusal) and decision.code == "not_launched"
            assert "cancelled before it was ever launched" in decision.detail
        else:
            assert isinstance(decision, NextAttempt), decision
