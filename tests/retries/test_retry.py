"""Rule 6: automatic retries resume at the first phase not yet passed, the
budget ends in blocked, and stalls are detected (seed 001)."""

import datetime as dt

import pytest
from django.utils import timezone

from planning.models import PlanningTask
from retries import services
from retries.models import Attempt
from tests.factories import PlanFactory, TaskFactory
from tests.steps import current, launch

pytestmark = pytest.mark.django_db


def phase(attempt, name, outcome="passed"):
    services.attempt_record_phase(attempt_id=attempt.id, phase=name, outcome=outcome, actor="ex")


def stall(attempt, seconds=10_000):
    later = timezone.now() + dt.timedelta(seconds=seconds)
    return services.attempt_fail_if_stalled(attempt_id=attempt.id, now=later)


def test_stalled_execute_resumes_at_execute_not_preflight():
    task = TaskFactory()
    first = launch(task)
    phase(first, "preflight")

    assert stall(first)
    first.refresh_from_db()
    assert first.failure_kind == "stalled" and first.failure_phase == "execute"

    retry = services.task_retry_or_block(task_id=task.id)
    assert retry.kind == Attempt.Kind.RETRY and retry.number == 2
    assert retry.resume_phase == "execute"
    assert retry.requested_by == "system"


def test_a_fresh_heartbeat_is_not_a_stall():
    task = TaskFactory()
    attempt = launch(task)
    phase(attempt, "preflight")
    assert not services.attempt_fail_if_stalled(attempt_id=attempt.id)
    attempt.refresh_from_db()
    assert attempt.status == "running"


def test_resumed_retry_succeeds_after_the_remaining_phases_only():
    task = TaskFactory()
    first = launch(task)
    phase(first, "preflight")
    phase(first, "execute", "failed")
    retry = services.task_retry_or_block(task_id=task.id)
    assert retry.resume_phase == "execute"
    phase(retry, "execute")
    phase(retry, "finalize")
    retry.refresh_from_db()
    task.refresh_from_db()
    assert retry.status == "succeeded" and task.status == "succeeded"


def test_finalization_failure_retries_only_finalize():
    task = TaskFactory()
    first = launch(task)
    for name in ("preflight", "execute"):
        phase(first, name)
    phase(first, "finalize", "failed")
    retry = services.task_retry_or_block(task_id=task.id)
    assert retry.resume_phase == "finalize"
    phase(retry, "finalize")
    retry.refresh_from_db()
    assert retry.status == "succeeded"
    assert not retry.phase_outcomes.filter(phase="execute").exists()


def test_budget_spent_ends_in_blocked_with_diagnostics_not_a_loop():
    task = TaskFactory(max_attempts=2)
    for _ in range(2):
        attempt = current(task) if task.attempt_count else launch(task)
        attempt = current(task)
        phase(attempt, "preflight", "failed")
        services.task_retry_or_block(task_id=task.id)
        task.refresh_from_db()
    assert task.status == PlanningTask.Status.BLOCKED
    assert task.attempt_count == 2
    # Further passes change nothing: no loop.
    assert services.task_retry_or_block(task_id=task.id) is None
    assert Attempt.objects.filter(task=task).count() == 2
    from retries.selectors import task_diagnostics

    diagnostics = task_diagnostics(task)
    assert diagnostics["attempt_number"] == 2 and diagnostics["max_attempts"] == 2
    assert diagnostics["failed_phase"] == "preflight" and diagnostics["failure_kind"] == "phase_failed"


def test_operator_rerun_starts_a_new_chain_from_the_first_phase():
    task = TaskFactory(max_attempts=5)
    first = launch(task)
    phase(first, "preflight")
    phase(first, "execute", "failed")
    services.task_retry_or_block(task_id=task.id)
    rerun = services.task_rerun(slug=task.slug, actor="op", reason="fresh start", supersede_active=True).attempt
    assert rerun.resume_phase is None
    phase(rerun, "preflight", "failed")
    retry = services.task_retry_or_block(task_id=task.id)
    assert retry.resume_phase == "preflight"


def test_paused_plan_stops_automatic_retries():
    plan = PlanFactory(on_error="pause")
    task = TaskFactory(plan=plan, project=plan.project)
    attempt = launch(task)
    phase(attempt, "preflight", "failed")
    plan.refresh_from_db()
    assert plan.status == "paused" and plan.paused_at is not None
    assert services.task_retry_or_block(task_id=task.id) is None
    task.refresh_from_db()
    assert task.status == "failed"


def test_retry_ignores_tasks_that_are_not_failed():
    task = TaskFactory()
    launch(task)
    assert services.task_retry_or_block(task_id=task.id) is None


def test_sync_and_heartbeats_never_pull_a_blocked_or_cancelled_task_back():
    task = TaskFactory(max_attempts=1)
    attempt = launch(task)
    from tests.steps import report

    report(task, status="running", native_run_id="nr-1", attempt=attempt)
    report(task, status="failed", native_run_id="nr-1", attempt=attempt)
    services.task_retry_or_block(task_id=task.id)
    task.refresh_from_db()
    assert task.status == "blocked"
    assert services.task_sync_with_attempt(task_id=task.id) is False
    report(task, status="failed", native_run_id="nr-1", attempt=attempt)  # heartbeat of the same state
    services.task_cancel(slug=task.slug, actor="op", reason="give up")
    report(task, status="failed", native_run_id="nr-1", attempt=attempt)
    task.refresh_from_db()
    assert task.status == "cancelled"


def test_sync_moves_an_active_task_whose_bound_run_is_terminal():
    task = TaskFactory()
    attempt = launch(task)
    from tests.steps import report

    report(task, status="running", native_run_id="nr-1", attempt=attempt)
    # The run's terminal state was recorded, but the attempt lagged behind
    # (the failure mode of seed 002); the safety net brings both in line.
    from retries.models import NativeRun

    NativeRun.objects.filter(native_run_id="nr-1").update(status="succeeded")
    assert services.task_sync_with_attempt(task_id=task.id) is True
    task.refresh_from_db()
    attempt.refresh_from_db()
    assert attempt.status == "succeeded" and task.status == "succeeded"
