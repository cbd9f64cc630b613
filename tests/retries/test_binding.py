"""Rule 2, bind by attempt, and the regression list of seed 000."""

import pytest

from planning.models import Event, PlanningTask
from retries import services
from retries.models import Attempt, NativeRun
from tests.factories import TaskFactory
from tests.steps import ago, current, fail_current, launch, report

pytestmark = pytest.mark.django_db


def rerun(task):
    return services.task_rerun(slug=task.slug, actor="operator", reason="retry").attempt


@pytest.mark.parametrize("with_attempt_id", [True, False])
def test_old_failed_run_reporting_again_never_binds_to_the_new_attempt(with_attempt_id):
    task = TaskFactory()
    old = fail_current(task, native_run_id="nr-old")
    new = rerun(task)

    # The stale executor keeps reporting, with or without the old attempt id,
    # and even as a new run id that reuses the old native task id.
    run, created = report(
        task, status="running", native_run_id="nr-old", attempt=old if with_attempt_id else None, created_at=ago(-5)
    )
    other, _ = report(
        task, status="running", native_run_id="nr-old-2", native_task_id="nt-nr-old", attempt=None, created_at=ago(-5)
    )

    new.refresh_from_db()
    task.refresh_from_db()
    assert not created and run.attempt_id == old.id  # stays history
    assert other.binding == NativeRun.Binding.REJECTED and other.binding_reason == "retired_native_id"
    assert new.native_run_id is None and new.status == Attempt.Status.PENDING
    assert task.status == PlanningTask.Status.LAUNCH_REQUESTED


def test_report_naming_a_superseded_attempt_is_rejected_and_changes_nothing():
    task = TaskFactory()
    old = launch(task)
    new = rerun_active = services.task_rerun(slug=task.slug, actor="op", reason="x", supersede_active=True).attempt
    run, _ = report(task, status="succeeded", native_run_id="nr-late", attempt=old)
    task.refresh_from_db()
    assert run.binding == NativeRun.Binding.REJECTED and run.binding_reason == "superseded"
    assert task.status == PlanningTask.Status.LAUNCH_REQUESTED
    assert current(task) == rerun_active == new
    assert Event.objects.filter(type="native_run.rejected", task=task).exists()


def test_report_naming_the_current_attempt_binds_and_moves_state():
    task = TaskFactory()
    attempt = launch(task)
    run, created = report(task, status="running", native_run_id="nr-1", attempt=attempt)
    attempt.refresh_from_db()
    task.refresh_from_db()
    assert created and run.binding == NativeRun.Binding.BOUND and run.attempt_id == attempt.id
    assert attempt.native_run_id == "nr-1" and attempt.status == Attempt.Status.RUNNING
    assert task.status == PlanningTask.Status.RUNNING


def test_unknown_attempt_and_wrong_task_are_rejected():
    task, other = TaskFactory(), TaskFactory()
    launch(task)
    other_attempt = launch(other)
    import uuid

    run, _ = report(task, status="running", native_run_id="nr-x", attempt=None)
    run2, _ = services.native_run_report(
        report=services.RunReport(
            executor="ext",
            native_task_id="t",
            native_run_id="nr-y",
            task=task.slug,
            status="running",
            attempt_id=uuid.uuid4(),
        ),
        actor="e",
    )
    run3, _ = report(task, status="running", native_run_id="nr-z", attempt=other_attempt)
    assert run2.binding_reason == "unknown_attempt"
    assert run3.binding_reason == "task_mismatch"
    assert run.binding_reason == "legacy_run_without_created_at"


def test_legacy_run_newer_than_the_retry_request_binds_once():
    task = TaskFactory()
    fail_current(task, native_run_id="nr-1")
    new = rerun(task)

    run, _ = report(task, status="running", native_run_id="nr-2", created_at=ago(-1))
    second, _ = report(task, status="running", native_run_id="nr-3", created_at=ago(-2))

    new.refresh_from_db()
    assert run.binding == NativeRun.Binding.BOUND and run.attempt_id == new.id
    assert second.binding == NativeRun.Binding.REJECTED and second.binding_reason == "attempt_already_bound"
    assert new.native_run_id == "nr-2"


def test_legacy_run_older_than_the_retry_request_does_not_bind():
    task = TaskFactory()
    fail_current(task)
    new = rerun(task)
    run, _ = report(
        task,
        status="running",
        native_run_id="nr-before",
        created_at=new.requested_at - __import__("datetime").timedelta(seconds=1),
    )
    assert run.binding == NativeRun.Binding.REJECTED and run.binding_reason == "predates_current_attempt"


def test_unbound_run_for_a_draft_task_binds_later_through_reconciliation():
    task = TaskFactory()
    run, _ = report(task, status="queued", native_run_id="nr-early", created_at=ago(-60))
    assert run.binding == NativeRun.Binding.UNBOUND
    attempt = launch(task)
    # The run was created "in the future" relative to the request: it may bind.
    assert services.native_run_try_bind(run_id=run.id) == NativeRun.Binding.BOUND
    attempt.refresh_from_db()
    assert attempt.native_run_id == "nr-early" and attempt.status == Attempt.Status.LAUNCHING


def test_unknown_task_is_recorded_as_rejected():
    run, created = services.native_run_report(
        report=services.RunReport(executor="ext", native_task_id="t", native_run_id="r", task="nope", status="running"),
        actor="e",
    )
    assert created and run.binding == NativeRun.Binding.REJECTED and run.binding_reason == "unknown_task"


def test_same_report_twice_is_a_no_op():
    task = TaskFactory()
    attempt = launch(task)
    report(task, status="running", native_run_id="nr-1", attempt=attempt)
    events = Event.objects.count()
    run, created = report(task, status="running", native_run_id="nr-1", attempt=attempt)
    assert not created and run.status == "running"
    assert Event.objects.count() == events


def test_late_running_after_succeeded_leaves_everything_succeeded():
    task = TaskFactory()
    attempt = launch(task)
    report(task, status="running", native_run_id="nr-1", attempt=attempt)
    report(task, status="succeeded", native_run_id="nr-1", attempt=attempt)
    run, _ = report(task, status="running", native_run_id="nr-1", attempt=attempt)
    attempt.refresh_from_db()
    task.refresh_from_db()
    assert run.status == "succeeded" and attempt.status == "succeeded" and task.status == "succeeded"
    assert Event.objects.filter(type="native_run.late_report", task=task).count() == 1


def test_report_for_superseded_attempts_run_changes_no_task_state():
    task = TaskFactory()
    old = launch(task)
    report(task, status="running", native_run_id="nr-1", attempt=old)
    services.task_rerun(slug=task.slug, actor="op", reason="stuck", supersede_active=True)
    task.refresh_from_db()
    before = (task.status, current(task).status)
    report(task, status="succeeded", native_run_id="nr-1", attempt=old)
    report(task, status="failed", native_run_id="nr-1", attempt=old)
    task.refresh_from_db()
    assert (task.status, current(task).status) == before


def test_batch_applies_in_order_with_the_same_rules():
    a, b = TaskFactory(), TaskFactory()
    aa, ba = launch(a), launch(b)
    results = services.native_run_report_batch(
        reports=[
            services.RunReport(
                executor="e", native_task_id="t1", native_run_id="r1", task=a.slug, status="running", attempt_id=aa.id
            ),
            services.RunReport(
                executor="e", native_task_id="t2", native_run_id="r2", task=b.slug, status="failed", attempt_id=ba.id
            ),
            services.RunReport(
                executor="e", native_task_id="t1", native_run_id="r1", task=a.slug, status="succeeded", attempt_id=aa.id
            ),
        ],
        actor="e",
    )
    assert [r.native_run_id for r, _ in results] == ["r1", "r2", "r1"]
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.status == "succeeded" and b.status == "failed"
