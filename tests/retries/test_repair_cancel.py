"""Rule 9, explicit repair, and cancel."""

import pytest

from missioncontrol.errors import ServiceError
from planning.models import Event
from retries import services
from retries.models import Attempt, NativeRun, RetiredNativeId
from tests.factories import AgentFactory, TaskFactory
from tests.steps import ago, current, fail_current, launch, report

pytestmark = pytest.mark.django_db


def succeed(task):
    attempt = launch(task)
    report(task, status="running", native_run_id="nr-ok", attempt=attempt)
    report(task, status="succeeded", native_run_id="nr-ok", attempt=attempt)
    task.refresh_from_db()
    return attempt


def test_repair_reopens_succeeded_work_with_a_fresh_attempt():
    task = TaskFactory()
    chosen = AgentFactory(name="chosen")
    old = succeed(task)
    assert task.status == "succeeded"

    result = services.task_repair(slug=task.slug, actor="admin", reason="output was wrong")

    task.refresh_from_db()
    old.refresh_from_db()
    assert result.attempt.kind == Attempt.Kind.REPAIR and result.attempt.number == 2
    assert task.status == "launch_requested"
    assert old.superseded_by_id == result.attempt.id
    assert result.attempt.requested_assignee == old.requested_assignee != chosen
    assert RetiredNativeId.objects.filter(value="nr-ok").exists()
    assert Event.objects.filter(task=task, type="repair.started", data__reason="output was wrong").exists()


def test_repair_retires_every_earlier_native_id_so_old_runs_never_bind():
    task = TaskFactory(max_attempts=5)
    fail_current(task, native_run_id="nr-a")
    services.task_rerun(slug=task.slug, actor="op", reason="again")
    fail_current(task, native_run_id="nr-b")
    repair = services.task_repair(slug=task.slug, actor="admin", reason="clean slate").attempt
    for run_id in ("nr-a", "nr-b"):
        run, _ = report(
            task, status="running", native_run_id=run_id + "-x", native_task_id="nt-" + run_id, created_at=ago(-1)
        )
        assert run.binding == NativeRun.Binding.REJECTED
    repair.refresh_from_db()
    assert repair.native_run_id is None


def test_repair_keeps_frozen_assignee_unless_one_is_given():
    task = TaskFactory()
    first_choice = AgentFactory(name="first-choice")
    fail_current(task)
    services.task_rerun(slug=task.slug, actor="op", reason="x", assignee=first_choice.name)
    kept = services.task_repair(slug=task.slug, actor="admin", reason="r1").attempt
    assert kept.requested_assignee == first_choice
    given = services.task_repair(
        slug=task.slug, actor="admin", reason="r2", assignee=AgentFactory(name="g").name
    ).attempt
    assert given.requested_assignee.name == "g"


def test_repair_needs_a_reason_and_a_launched_task():
    task = TaskFactory()
    with pytest.raises(ServiceError) as exc:
        services.task_repair(slug=task.slug, actor="a", reason="x")
    assert exc.value.code == "not_launched"
    launch(task)
    with pytest.raises(ServiceError) as exc:
        services.task_repair(slug=task.slug, actor="a", reason=" ")
    assert exc.value.code == "invalid"


def test_cancel_cancels_the_current_attempt_and_repeats_are_no_ops():
    task = TaskFactory()
    attempt = launch(task)
    services.task_cancel(slug=task.slug, actor="op", reason="not needed")
    attempt.refresh_from_db()
    task.refresh_from_db()
    assert task.status == "cancelled" and attempt.status == "cancelled"
    events = Event.objects.count()
    services.task_cancel(slug=task.slug, actor="op", reason="not needed")
    assert Event.objects.count() == events
    # A late success of the cancelled attempt's run changes nothing.
    report(task, status="succeeded", native_run_id="nr-late", attempt=attempt)
    task.refresh_from_db()
    assert task.status == "cancelled"


def test_cancel_refuses_succeeded_tasks_and_needs_a_reason():
    task = TaskFactory()
    succeed(task)
    with pytest.raises(ServiceError) as exc:
        services.task_cancel(slug=task.slug, actor="op", reason="stop")
    assert exc.value.code == "not_cancellable"
    with pytest.raises(ServiceError) as exc:
        services.task_cancel(slug=task.slug, actor="op", reason="")
    assert exc.value.code == "invalid"


def test_cancelled_task_can_be_rerun():
    task = TaskFactory()
    launch(task)
    services.task_cancel(slug=task.slug, actor="op", reason="pause")
    attempt = services.task_rerun(slug=task.slug, actor="op", reason="resume").attempt
    assert current(task) == attempt and attempt.number == 2
