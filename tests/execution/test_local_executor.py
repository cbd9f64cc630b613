"""The local executor end to end: a real Celery worker on Redis runs the
phases, reconciliation passes are called directly."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from missioncontrol.errors import ServiceError
from planning import services as planning_services
from planning.models import Event, Plan, PlanningTask
from retries.executors import native_ids
from retries.models import Attempt, NativeRun, PhaseOutcome
from retries.reconcile import reconcile_pass
from retries.selectors import plan_list_with_projection, task_diagnostics
from tests.execution.conftest import WORKER_GROUP, wait_for
from tests.factories import PlanFactory, ProcedureFactory, TaskFactory
from tests.steps import current, launch

pytestmark = [pytest.mark.worker, pytest.mark.xdist_group(WORKER_GROUP), pytest.mark.django_db(transaction=True)]

PHASES = ["preflight", "execute", "finalize"]


def local_task(*, params: dict, max_attempts: int = 3, stall_timeout_seconds: int = 30) -> PlanningTask:
    procedure = ProcedureFactory(
        executor="local", phases=PHASES, max_attempts=max_attempts, stall_timeout_seconds=stall_timeout_seconds
    )
    return TaskFactory(procedure=procedure, params={"phase_seconds": 0.1, **params})


def status_of(task: PlanningTask) -> str:
    return PlanningTask.objects.values_list("status", flat=True).get(id=task.id)


def wait_status(task: PlanningTask, *statuses: str, timeout: float = 60) -> str:
    return wait_for(
        lambda: (s := status_of(task)) in statuses and s, timeout=timeout, what=f"{task.slug} to reach {statuses}"
    )


def phases_of(attempt: Attempt) -> list[tuple[str, str]]:
    return list(PhaseOutcome.objects.filter(attempt=attempt).order_by("at", "id").values_list("phase", "outcome"))


def test_launch_runs_every_phase_to_succeeded(worker):
    task = local_task(params={})
    attempt = launch(task)

    wait_status(task, "succeeded")
    # The run's own final report follows the last phase's outcome.
    wait_for(lambda: NativeRun.objects.filter(attempt=attempt, status="succeeded").exists(), what="the final report")

    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.SUCCEEDED and attempt.finished_at is not None
    assert phases_of(attempt) == [(p, "passed") for p in PHASES]
    native_task_id, native_run_id = native_ids("local", attempt.id)
    run = NativeRun.objects.get(attempt=attempt)
    assert (run.native_task_id, run.native_run_id) == (native_task_id, native_run_id)
    assert run.claimed_attempt_id == attempt.id and run.binding == NativeRun.Binding.BOUND
    assert run.status == NativeRun.Status.SUCCEEDED
    assert (attempt.native_task_id, attempt.native_run_id) == (native_task_id, native_run_id)


def test_stalled_attempt_is_retried_and_resumes_at_execute_not_preflight(worker):
    task = local_task(params={"stall_phase": "execute", "stall_on_attempts": [1]}, stall_timeout_seconds=2)
    first = launch(task)
    wait_for(lambda: NativeRun.objects.filter(attempt=first, phase="execute").exists(), what="execute to start")
    assert phases_of(first) == [("preflight", "passed")]

    # Nothing is failed before the stall timeout has passed...
    assert reconcile_pass().stalled == 0
    # ...and then one pass fails it as stalled and starts the retry.
    summary = wait_for(lambda: (s := reconcile_pass()).stalled and s, timeout=30, interval=0.5, what="the stall")
    assert summary.retried == 1

    first.refresh_from_db()
    assert (first.status, first.failure_kind, first.failure_phase) == ("failed", "stalled", "execute")
    wait_status(task, "succeeded")
    second = current(task)
    assert (second.number, second.kind, second.resume_phase) == (2, "retry", "execute")
    assert phases_of(second) == [("execute", "passed"), ("finalize", "passed")]
    assert not Event.objects.filter(attempt_id=second.id, type__startswith="phase.", data__phase="preflight").exists()
    # The stalled run was told to stop; the retry has its own run.
    wait_for(lambda: NativeRun.objects.get(attempt=first).status == "cancelled", what="the stalled run to be cancelled")
    wait_for(lambda: NativeRun.objects.get(attempt=second).status == "succeeded", what="the retry's final report")


def test_budget_ends_in_blocked_with_diagnostics_not_a_loop(worker):
    task = local_task(params={"fail_phase": "execute", "fail_message": "disk full"}, max_attempts=2)
    launch(task)
    wait_status(task, "failed")
    assert reconcile_pass().retried == 1
    wait_status(task, "failed")  # attempt 2 fails the same way
    assert current(task).number == 2

    summary = reconcile_pass()
    assert (summary.retried, summary.blocked) == (0, 1)
    for _ in range(3):
        assert reconcile_pass().retried == 0

    task.refresh_from_db()
    assert task.status == "blocked" and task.attempt_count == 2
    assert Attempt.objects.filter(task=task).count() == 2
    diagnostics = task_diagnostics(task)
    assert diagnostics["attempt_number"] == 2 and diagnostics["max_attempts"] == 2
    assert diagnostics["failed_phase"] == "execute" and diagnostics["failure_kind"] == "phase_failed"
    assert diagnostics["message"] == "disk full"
    blocked = Event.objects.get(task=task, type="task.status_changed", data__status="blocked")
    assert blocked.data["reason"] == "budget_exhausted"
    assert current(task).resume_phase == "execute"


def test_finalization_failure_retries_only_finalize_and_never_reruns_execute(worker):
    task = local_task(params={"fail_phase": "finalize", "fail_on_attempts": [1]})
    first = launch(task)
    wait_status(task, "failed")
    first.refresh_from_db()
    assert (first.failure_kind, first.failure_phase) == ("finalization_failed", "finalize")

    assert reconcile_pass().retried == 1
    wait_status(task, "succeeded")

    second = current(task)
    assert second.resume_phase == "finalize"
    assert phases_of(second) == [("finalize", "passed")]
    assert PhaseOutcome.objects.filter(attempt__task=task, phase="execute").count() == 1
    assert Event.objects.filter(task=task, type="phase.passed", data__phase="execute").count() == 1


@pytest.mark.parametrize("use_lock", [True, False], ids=["advisory-lock", "services-only"])
def test_two_reconcile_passes_at_once_create_one_retry(worker, use_lock):
    task = local_task(params={"fail_phase": "preflight", "fail_on_attempts": [1]})
    launch(task)
    wait_status(task, "failed")

    barrier = threading.Barrier(2)
    summaries, errors = [], []

    def one_pass():
        try:
            barrier.wait(timeout=10)
            summaries.append(reconcile_pass(use_lock=use_lock))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=one_pass) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors and len(summaries) == 2
    assert sum(s.retried for s in summaries) == 1
    assert Attempt.objects.filter(task=task, kind="retry").count() == 1
    assert Attempt.objects.filter(task=task).count() == 2
    wait_status(task, "succeeded")


def test_plan_on_error_pause_stops_further_launches_and_shows_diagnostics(worker):
    plan = PlanFactory(on_error=Plan.OnError.PAUSE)
    procedure = ProcedureFactory(executor="local", phases=PHASES, max_attempts=3)
    failing = TaskFactory(
        procedure=procedure,
        plan=plan,
        project=plan.project,
        params={"phase_seconds": 0.1, "fail_phase": "preflight", "fail_message": "no quota"},
    )
    waiting = TaskFactory(procedure=procedure, plan=plan, project=plan.project, params={"phase_seconds": 0.1})
    launch(failing)
    wait_status(failing, "failed")

    plan.refresh_from_db()
    assert plan.status == Plan.Status.PAUSED and plan.paused_at is not None
    [projected] = plan_list_with_projection([plan])
    assert projected.counts["failed"] == 1 and projected.counts["draft"] == 1
    [diag] = projected.failed_tasks
    assert (diag["task"], diag["failed_phase"], diag["message"]) == (failing.slug, "preflight", "no quota")
    assert (diag["attempt_number"], diag["max_attempts"]) == (1, 3)

    # No automatic retry and no new launch while paused.
    assert reconcile_pass().retried == 0
    with pytest.raises(ServiceError) as refused:
        launch(waiting)
    assert refused.value.code == "plan_paused"
    assert Attempt.objects.filter(task__plan=plan).count() == 1
    assert status_of(waiting) == "draft"

    # Once an operator resumes the plan, reconciliation retries again.
    planning_services.plan_resume(plan_id=plan.id, actor="operator")
    assert reconcile_pass().retried == 1
    wait_status(failing, "failed")
    assert current(failing).number == 2
    plan.refresh_from_db()
    assert plan.status == Plan.Status.PAUSED


def test_params_the_phases_cannot_follow_fail_the_launch_closed(worker):
    task = local_task(params={"fail_phase": "deploy"})
    attempt = launch(task)
    wait_status(task, "failed")
    attempt.refresh_from_db()
    assert attempt.failure_kind == "launch_failed"
    assert "fail_phase" in attempt.failure_message and "deploy" in attempt.failure_message
    assert not NativeRun.objects.filter(task=task).exists()
    assert not PhaseOutcome.objects.filter(attempt=attempt).exists()


def test_a_lost_launch_message_is_sent_again_by_reconciliation(worker, worker_queue, settings):
    from tests.execution.conftest import publishing_nowhere

    task = local_task(params={})
    # Publish the launch where no worker listens: as good as lost.
    with publishing_nowhere(f"{worker_queue}-lost"):
        attempt = launch(task)
    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.PENDING

    assert reconcile_pass().relaunched == 0  # too young to be called lost
    settings.RECONCILE_RELAUNCH_AFTER_SECONDS = 0
    assert reconcile_pass().relaunched == 1

    wait_status(task, "succeeded")
    assert NativeRun.objects.filter(task=task).count() == 1


def test_cancelling_a_running_local_attempt_stops_its_phases(worker):
    from retries import services

    task = local_task(params={"phase_seconds": 3})
    attempt = launch(task)
    wait_for(lambda: NativeRun.objects.filter(attempt=attempt, status="running").exists(), what="preflight to start")

    services.task_cancel(slug=task.slug, actor="operator", reason="wrong shard")

    wait_for(lambda: NativeRun.objects.get(attempt=attempt).status == "cancelled", what="the run to be stopped")
    worker.wait_idle()
    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.CANCELLED and attempt.failure_message == "wrong shard"
    assert not PhaseOutcome.objects.filter(attempt=attempt).exists()
    assert status_of(task) == "cancelled"


def test_a_launch_already_queued_when_the_plan_pauses_is_held_until_it_resumes(worker, worker_queue, settings):
    from retries.tasks import launch_attempt
    from tests.execution.conftest import publishing_nowhere

    plan = PlanFactory(on_error=Plan.OnError.PAUSE)
    procedure = ProcedureFactory(executor="local", phases=PHASES, max_attempts=3)
    failing = TaskFactory(
        procedure=procedure,
        plan=plan,
        project=plan.project,
        params={"phase_seconds": 0.1, "fail_phase": "preflight", "fail_on_attempts": [1]},
    )
    queued = TaskFactory(procedure=procedure, plan=plan, project=plan.project, params={"phase_seconds": 0.1})
    # Launched together; the sibling's launch message is still in flight
    # (published where no worker listens yet) when the first task fails.
    with publishing_nowhere(f"{worker_queue}-later"):
        held = launch(queued)
    launch(failing)
    wait_status(failing, "failed")
    plan.refresh_from_db()
    assert plan.paused_at is not None

    # Now the sibling's launch arrives: held, not launched.
    launch_attempt.delay(str(held.id))
    worker.wait_idle()
    held.refresh_from_db()
    assert held.status == Attempt.Status.PENDING and not NativeRun.objects.filter(task=queued).exists()
    settings.RECONCILE_RELAUNCH_AFTER_SECONDS = 0
    summary = reconcile_pass()
    assert (summary.relaunched, summary.retried) == (0, 0)

    planning_services.plan_resume(plan_id=plan.id, actor="operator")
    summary = reconcile_pass()
    assert (summary.relaunched, summary.retried) == (1, 1)
    wait_status(queued, "succeeded")
    wait_status(failing, "succeeded")
    assert Attempt.objects.filter(task=queued).count() == 1
