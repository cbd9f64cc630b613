"""Which committed facts are alerts: the table, without a database."""

import pytest

from missioncontrol.alerts.events import ALERT_EVENTS, alert_events

CASES = [
    # (fact type, data, alert events)
    ("task.status_changed", {"from": "failed", "status": "blocked", "reason": "budget_exhausted"}, ["task.blocked"]),
    ("task.status_changed", {"from": "running", "status": "blocked"}, ["task.blocked"]),
    ("task.status_changed", {"from": "running", "status": "failed"}, []),
    ("task.status_changed", {}, []),
    ("attempt.status_changed", {"from": "running", "status": "failed", "kind": "stalled"}, ["attempt.stalled"]),
    ("attempt.status_changed", {"from": "running", "status": "failed"}, []),
    ("attempt.status_changed", {"from": "running", "status": "cancelled", "reason": "stop"}, []),
    ("task.marked_inconsistent", {"problems": ["status differs"]}, ["task.inconsistent"]),
    ("plan.paused", {"counts": {"failed": 1}}, ["plan.paused"]),
    ("plan.status_changed", {"from": "running", "status": "paused"}, []),
    ("native_run.rejected", {"reason": "superseded"}, ["native_run.refused_superseded"]),
    ("native_run.rejected", {"reason": "retired_native_id"}, ["native_run.refused_superseded"]),
    ("native_run.rejected", {"reason": "unknown_attempt"}, []),
    ("native_run.rejected", {"reason": "predates_current_attempt", "decision": "legacy"}, []),
    ("native_run.rejected", {}, []),
    ("native_run.bound", {"reason": "superseded"}, []),
    ("native_run.reported", {"status": "running", "new": True}, []),
    ("attempt.requested", {"kind": "retry"}, []),
    ("unknown.type", {"status": "blocked"}, []),
]


@pytest.mark.parametrize(("fact_type", "data", "expected"), CASES)
def test_alert_events(fact_type, data, expected):
    assert alert_events(fact_type, data) == expected


def test_a_fact_without_data_raises_nothing_it_should_not():
    assert alert_events("task.status_changed", None) == []
    assert alert_events("plan.paused", None) == ["plan.paused"]


def test_every_alert_event_has_a_case():
    assert {e for _, _, events in CASES for e in events} == set(ALERT_EVENTS)
