"""Durable phases (rule 6) and idempotent phase markers (rule 4)."""

import uuid

import pytest

from missioncontrol.errors import ServiceError
from planning.models import Event
from retries import services
from retries.models import Attempt, PhaseOutcome
from tests.factories import TaskFactory
from tests.steps import launch

pytestmark = pytest.mark.django_db


def phase(attempt, name, outcome="passed", message=""):
    return services.attempt_record_phase(
        attempt_id=attempt.id, phase=name, outcome=outcome, message=message, actor="ex"
    )


def test_passing_every_phase_succeeds_the_attempt_and_the_task():
    task = TaskFactory()
    attempt = launch(task)
    for name in ("preflight", "execute", "finalize"):
        _, created = phase(attempt, name)
        assert created
    attempt.refresh_from_db()
    task.refresh_from_db()
    assert attempt.status == "succeeded" and attempt.started_at and attempt.finished_at
    assert task.status == "succeeded"
    assert list(
        Event.objects.filter(attempt_id=attempt.id, type="phase.passed").values_list("data__phase", flat=True)
    ) == ["preflight", "execute", "finalize"]


def test_first_phase_moves_the_attempt_to_running():
    task = TaskFactory()
    attempt = launch(task)
    phase(attempt, "preflight")
    attempt.refresh_from_db()
    task.refresh_from_db()
    assert attempt.status == "running" and task.status == "running"


def test_recording_the_same_phase_again_is_a_no_op():
    task = TaskFactory()
    attempt = launch(task)
    first, created = phase(attempt, "preflight")
    events = Event.objects.count()
    again, created_again = phase(attempt, "preflight")
    assert created and not created_again and first.id == again.id
    assert Event.objects.count() == events and PhaseOutcome.objects.count() == 1


def test_a_contradicting_outcome_is_refused():
    task = TaskFactory()
    attempt = launch(task)
    phase(attempt, "preflight")
    with pytest.raises(ServiceError) as exc:
        phase(attempt, "preflight", "failed")
    assert exc.value.code == "phase_conflict"


def test_unknown_phase_and_outcome_are_bad_input():
    task = TaskFactory()
    attempt = launch(task)
    with pytest.raises(ServiceError) as exc:
        phase(attempt, "deploy")
    assert exc.value.code == "invalid" and "phase" in exc.value.errors
    with pytest.raises(ServiceError) as exc:
        phase(attempt, "preflight", "maybe")
    assert exc.value.code == "invalid" and "outcome" in exc.value.errors
    assert PhaseOutcome.objects.count() == 0


def test_unknown_attempt_is_404():
    with pytest.raises(ServiceError) as exc:
        services.attempt_record_phase(attempt_id=uuid.uuid4(), phase="x", outcome="passed", actor="e")
    assert exc.value.code == "not_found"


def test_superseded_attempt_is_refused():
    task = TaskFactory()
    old = launch(task)
    services.task_rerun(slug=task.slug, actor="op", reason="replace", supersede_active=True)
    with pytest.raises(ServiceError) as exc:
        phase(old, "preflight")
    assert exc.value.code == "superseded"
    assert not PhaseOutcome.objects.filter(attempt=old).exists()


def test_failure_in_work_and_in_finalization_are_told_apart():
    work, final = TaskFactory(), TaskFactory()
    wa, fa = launch(work), launch(final)
    phase(wa, "preflight")
    phase(wa, "execute", "failed", "tool crashed")
    for name in ("preflight", "execute"):
        phase(fa, name)
    phase(fa, "finalize", "failed", "could not write summary")
    wa.refresh_from_db()
    fa.refresh_from_db()
    assert wa.failure == {"kind": "phase_failed", "phase": "execute", "message": "tool crashed"}
    assert fa.failure == {"kind": "finalization_failed", "phase": "finalize", "message": "could not write summary"}
    assert wa.status == fa.status == Attempt.Status.FAILED
