import pytest

from planning import services
from planning.models import Plan
from retries import services as retry_services
from retries.selectors import plan_list_with_projection
from tests.factories import PlanFactory, TaskFactory
from tests.steps import launch

pytestmark = pytest.mark.django_db


def phase(attempt, name, outcome="passed"):
    retry_services.attempt_record_phase(attempt_id=attempt.id, phase=name, outcome=outcome, actor="ex")


def test_plan_status_and_counts_follow_the_tasks():
    plan = PlanFactory()
    tasks = [TaskFactory(plan=plan, project=plan.project) for _ in range(3)]
    plan.refresh_from_db()
    assert plan.status == Plan.Status.DRAFT
    attempts = [launch(t) for t in tasks]
    plan.refresh_from_db()
    assert plan.status == Plan.Status.RUNNING
    for attempt in attempts[:2]:
        for name in ("preflight", "execute", "finalize"):
            phase(attempt, name)
    phase(attempts[2], "preflight", "failed")
    (projected,) = plan_list_with_projection([Plan.objects.get(id=plan.id)])
    assert projected.counts["succeeded"] == 2 and projected.counts["failed"] == 1
    assert projected.status == Plan.Status.FAILED
    assert [d["task"] for d in projected.failed_tasks] == [tasks[2].slug]
    assert projected.failed_tasks[0]["failed_phase"] == "preflight"


def test_pause_on_error_stops_launches_until_resumed():
    plan = PlanFactory(on_error=Plan.OnError.PAUSE)
    failing, waiting = TaskFactory(plan=plan, project=plan.project), TaskFactory(plan=plan, project=plan.project)
    phase(launch(failing), "preflight", "failed")
    plan.refresh_from_db()
    assert plan.status == Plan.Status.PAUSED
    from missioncontrol.errors import ServiceError

    with pytest.raises(ServiceError) as exc:
        retry_services.task_launch(slug=waiting.slug, actor="op")
    assert exc.value.code == "plan_paused"
    services.plan_resume(plan_id=plan.id, actor="op")
    plan.refresh_from_db()
    assert plan.paused_at is None and plan.status == Plan.Status.RUNNING
    assert retry_services.task_launch(slug=waiting.slug, actor="op").created
