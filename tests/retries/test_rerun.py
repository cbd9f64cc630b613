"""Rule 1 (fresh identity), rule 3 (frozen assignee) and rule 4 (idempotent
requests) through the rerun service, with every refusal."""

import pytest

from missioncontrol.errors import ServiceError
from planning import services as planning_services
from planning.models import Event, PlanningTask
from retries import services
from retries.models import Attempt, RetiredNativeId
from tests.factories import AgentFactory, TaskFactory
from tests.steps import current, fail_current, launch

pytestmark = pytest.mark.django_db


def rerun(task, **kwargs):
    kwargs.setdefault("reason", "try again")
    return services.task_rerun(slug=task.slug, actor="operator", **kwargs)


def test_rerun_creates_a_fresh_attempt_and_supersedes_the_old_one():
    task = TaskFactory()
    old = fail_current(task, native_run_id="nr-1")

    new = rerun(task).attempt

    old.refresh_from_db()
    task.refresh_from_db()
    assert new.id != old.id
    assert new.number == old.number + 1 == 2
    assert new.kind == Attempt.Kind.RERUN
    assert new.status == Attempt.Status.PENDING
    assert old.superseded_at is not None and old.superseded_by_id == new.id
    assert task.status == PlanningTask.Status.LAUNCH_REQUESTED
    assert task.attempt_count == 2
    assert set(RetiredNativeId.objects.filter(task=task).values_list("value", flat=True)) == {"nr-1", "nt-nr-1"}
    types = list(Event.objects.filter(task=task).values_list("type", flat=True))
    assert "attempt.superseded" in types and types.count("attempt.requested") == 2


def test_explicit_assignee_is_frozen_on_the_attempt():
    task = TaskFactory()
    fail_current(task)
    other = AgentFactory(name="shorekeeper-bot")

    attempt = rerun(task, assignee=other.name).attempt

    assert attempt.requested_assignee == other


def test_later_rerun_keeps_the_frozen_assignee_after_owner_and_assignee_change():
    task = TaskFactory()
    chosen = AgentFactory(name="chosen")
    fail_current(task)
    rerun(task, assignee=chosen.name)
    fail_current(task)

    new_owner = AgentFactory(name="new-owner")
    planning_services.project_update(slug=task.project.slug, owner=new_owner.name, actor="admin")
    planning_services.task_update(slug=task.slug, assignee=AgentFactory(name="someone-else").name, actor="op")
    third = rerun(task).attempt

    assert third.number == 3
    assert third.requested_assignee == chosen


def test_first_attempt_assignee_is_the_task_assignee_then_the_owner():
    task = TaskFactory()
    assert launch(task).requested_assignee == task.project.owner  # task assignee defaulted to the owner
    explicit = AgentFactory(name="explicit")
    task2 = TaskFactory(assignee=explicit)
    assert launch(task2).requested_assignee == explicit


def test_owner_change_does_not_touch_existing_attempts():
    task = TaskFactory()
    attempt = launch(task)
    frozen = attempt.requested_assignee
    planning_services.project_update(slug=task.project.slug, owner=AgentFactory(name="other-owner").name, actor="a")
    attempt.refresh_from_db()
    assert attempt.requested_assignee == frozen


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ("draft", "not_launched"),
        ("succeeded", "use_repair"),
        ("launch_requested", "attempt_active"),
        ("running", "attempt_active"),
    ],
)
def test_rerun_refusals_change_nothing(setup, code):
    task = TaskFactory()
    if setup != "draft":
        attempt = launch(task)
    if setup == "running":
        services.attempt_record_phase(attempt_id=attempt.id, phase="preflight", outcome="passed", actor="x")
    if setup == "succeeded":
        for phase in task.procedure.phases:
            services.attempt_record_phase(attempt_id=attempt.id, phase=phase, outcome="passed", actor="x")
    task.refresh_from_db()
    assert task.status == setup
    before = (Attempt.objects.count(), Event.objects.count())

    with pytest.raises(ServiceError) as exc:
        rerun(task)

    assert exc.value.code == code
    assert (Attempt.objects.count(), Event.objects.count()) == before


def test_supersede_active_cancels_and_replaces_the_running_attempt():
    task = TaskFactory()
    first = launch(task)
    second = rerun(task, supersede_active=True).attempt
    first.refresh_from_db()
    assert first.status == Attempt.Status.CANCELLED and first.superseded_by_id == second.id
    assert current(task) == second


def test_budget_exhausted_unless_overridden():
    task = TaskFactory(max_attempts=2)
    fail_current(task)
    rerun(task)
    fail_current(task)
    with pytest.raises(ServiceError) as exc:
        rerun(task)
    assert exc.value.code == "budget_exhausted"
    third = rerun(task, override_budget=True, reason="operator knows the fix landed").attempt
    assert third.number == 3
    event = Event.objects.get(attempt_id=third.id, type="attempt.requested")
    assert event.data["override_budget"] is True


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_reason_is_required(reason):
    task = TaskFactory()
    fail_current(task)
    with pytest.raises(ServiceError) as exc:
        services.task_rerun(slug=task.slug, actor="op", reason=reason)
    assert exc.value.code == "invalid" and "reason" in exc.value.errors


def test_assignee_must_be_an_active_agent():
    task = TaskFactory()
    fail_current(task)
    AgentFactory(name="retired", active=False)
    for name in ("retired", "nobody"):
        with pytest.raises(ServiceError) as exc:
            rerun(task, assignee=name)
        assert exc.value.code == "invalid" and "assignee" in exc.value.errors
    assert Attempt.objects.filter(task=task).count() == 1


def test_unknown_task_is_404():
    with pytest.raises(ServiceError) as exc:
        services.task_rerun(slug="nope", actor="op", reason="x")
    assert exc.value.code == "not_found"


def test_same_idempotency_key_returns_the_first_attempt_and_creates_nothing():
    task = TaskFactory()
    fail_current(task)
    first = rerun(task, idempotency_key="k-1")
    count = Attempt.objects.count()
    again = rerun(task, idempotency_key="k-1")
    assert first.created and not again.created and again.replayed
    assert again.attempt.id == first.attempt.id
    assert Attempt.objects.count() == count


def test_same_key_with_a_different_body_is_refused():
    task = TaskFactory()
    fail_current(task)
    rerun(task, idempotency_key="k-2")
    with pytest.raises(ServiceError) as exc:
        rerun(task, idempotency_key="k-2", reason="another reason")
    assert exc.value.code == "idempotency_key_reused"


def test_keys_are_scoped_to_the_task():
    a, b = TaskFactory(), TaskFactory()
    fail_current(a)
    fail_current(b)
    ra = rerun(a, idempotency_key="shared")
    rb = rerun(b, idempotency_key="shared")
    assert ra.attempt.task_id == a.id and rb.attempt.task_id == b.id and rb.created


def test_expired_key_can_be_used_again(settings):
    task = TaskFactory()
    fail_current(task)
    rerun(task, idempotency_key="k-old")
    fail_current(task)
    settings.IDEMPOTENCY_KEY_TTL_SECONDS = 0
    assert services.idempotency_keys_expire() == 1
    again = rerun(task, idempotency_key="k-old")
    assert again.created and again.attempt.number == 3


def test_cancelled_after_failure_stays_cancelled_and_rerun_keeps_previous_frozen_assignee():
    task = TaskFactory()
    chosen = AgentFactory(name="kept")
    fail_current(task)
    services.task_rerun(slug=task.slug, actor="op", reason="x", assignee=chosen.name)
    fail_current(task)
    services.task_cancel(slug=task.slug, actor="op", reason="stop for now")
    again = rerun(task, override_budget=True).attempt
    assert again.requested_assignee == chosen
