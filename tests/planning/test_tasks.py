import pytest

from missioncontrol.errors import ServiceError
from planning import services
from planning.models import Event, PlanningTask
from tests.factories import AgentFactory, PlanFactory, ProcedureFactory, ProjectFactory, TaskFactory

pytestmark = pytest.mark.django_db


def test_new_task_without_assignee_gets_the_project_owner_and_starts_in_draft():
    project = ProjectFactory()
    procedure = ProcedureFactory(max_attempts=4)
    task = services.task_create(slug="t-1", title="T", project=project.slug, procedure=procedure.slug, actor="op")
    assert task.assignee == project.owner
    assert task.status == PlanningTask.Status.DRAFT
    assert task.max_attempts == 4
    event = Event.objects.get(task=task)
    assert event.type == "task.created" and event.data["status"] == "draft" and event.actor == "op"


def test_explicit_assignee_and_budget_are_kept():
    agent = AgentFactory(name="aemeath")
    task = TaskFactory(assignee=agent, max_attempts=7)
    assert task.assignee == agent and task.max_attempts == 7


def test_bad_input_lists_every_field_and_writes_nothing():
    AgentFactory(name="sleepy", active=False)
    with pytest.raises(ServiceError) as exc:
        services.task_create(
            slug="Bad Slug!", title="", project="nope", procedure="nope", assignee="sleepy", params=[1], actor="op"
        )
    assert exc.value.code == "invalid"
    assert {"project", "procedure", "assignee", "params"} <= set(exc.value.errors)
    assert not PlanningTask.objects.exists() and not Event.objects.exists()


def test_model_validation_errors_are_field_errors():
    project, procedure = ProjectFactory(), ProcedureFactory()
    TaskFactory(slug="dup", project=project, procedure=procedure)
    with pytest.raises(ServiceError) as exc:
        services.task_create(slug="dup", title="x", project=project.slug, procedure=procedure.slug, actor="op")
    assert "slug" in exc.value.errors
    with pytest.raises(ServiceError) as exc:
        services.task_create(slug="UPPER", title="x", project=project.slug, procedure=procedure.slug, actor="op")
    assert "slug" in exc.value.errors
    # A final newline: "$" would have let it through (callers that do not trim, e.g. commands).
    with pytest.raises(ServiceError) as exc:
        services.task_create(slug="ok\n", title="x", project=project.slug, procedure=procedure.slug, actor="op")
    assert "slug" in exc.value.errors
    assert not PlanningTask.objects.filter(slug__startswith="ok").exists()


def test_plan_must_belong_to_the_tasks_project():
    plan = PlanFactory()
    other = ProjectFactory()
    with pytest.raises(ServiceError) as exc:
        services.task_create(
            slug="t", title="t", project=other.slug, procedure=ProcedureFactory().slug, plan=plan.id, actor="op"
        )
    assert "plan" in exc.value.errors


def test_assignee_change_is_a_ledger_fact_and_unchanged_update_is_a_no_op():
    task = TaskFactory()
    new = AgentFactory(name="new-assignee")
    services.task_update(slug=task.slug, assignee=new.name, actor="op")
    event = Event.objects.get(task=task, type="task.assignee_changed")
    assert event.data == {"from": task.assignee.name, "to": "new-assignee"}
    count = Event.objects.count()
    services.task_update(slug=task.slug, assignee=new.name, actor="op")
    assert Event.objects.count() == count


def test_project_owner_change_is_recorded():
    project = ProjectFactory()
    new_owner = AgentFactory(name="boss")
    services.project_update(slug=project.slug, owner=new_owner.name, actor="admin")
    assert Event.objects.filter(type="project.owner_changed", data__to="boss").exists()


def test_procedure_phases_are_validated():
    for phases in ([], ["a", "a"], "preflight", [""]):
        with pytest.raises(ServiceError) as exc:
            services.procedure_create(slug="p", name="P", phases=phases, actor="admin")
        assert "phases" in exc.value.errors
