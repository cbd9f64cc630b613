"""Edits in the admin go through the services, so the ledger records them;
no status field can be changed, not even by a crafted POST."""

import pytest

from planning.models import Agent, Event, Plan, PlanningTask, Procedure, Project
from retries.models import Attempt, NativeRun
from tests.factories import AgentFactory, PlanFactory, ProcedureFactory, ProjectFactory
from tests.steps import current

from .helpers import admin_url, form_data

pytestmark = pytest.mark.django_db


def test_a_task_added_in_the_admin_is_created_by_the_service(clients):
    project, procedure = ProjectFactory(), ProcedureFactory(max_attempts=4)

    data = form_data(clients["operator"], admin_url(PlanningTask, "add"))
    data.update(
        {
            "slug": "made-in-admin",
            "title": "Made in admin",
            "project": project.pk,
            "procedure": procedure.pk,
            "params": '{"k": 1}',
            "status": "succeeded",
        }
    )
    response = clients["operator"].post(admin_url(PlanningTask, "add"), data)

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    task = PlanningTask.objects.get(slug="made-in-admin")
    assert (task.status, task.assignee, task.max_attempts, task.params) == ("draft", project.owner, 4, {"k": 1})
    created = Event.objects.get(task=task, type="task.created")
    assert created.actor == "staff-operator" and created.data["assignee"] == project.owner.name


def test_assignee_edit_is_a_ledger_fact_and_a_crafted_status_is_ignored(clients, world):
    other = AgentFactory(name="new-assignee")
    frozen = current(world).requested_assignee
    url = admin_url(PlanningTask, "change", world.pk)
    data = form_data(clients["operator"], url)
    data.update(
        assignee=other.pk,
        title="Renamed",
        # A crafted POST: none of these are form fields.
        status="succeeded",
        attempt_count="99",
        inconsistent_since="2026-01-01 00:00",
        inconsistency="x",
        slug="renamed-slug",
        project=ProjectFactory().pk,
    )

    response = clients["operator"].post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    world.refresh_from_db()
    assert (world.slug, world.title, world.assignee) == ("world-task", "Renamed", other)
    assert (world.status, world.attempt_count, world.inconsistent_since) == ("launch_requested", 2, None)
    changed = Event.objects.get(task=world, type="task.assignee_changed")
    assert changed.actor == "staff-operator" and changed.data["to"] == "new-assignee"
    assert Event.objects.filter(task=world, type="task.updated", data__fields=["title"]).exists()
    assert current(world).requested_assignee == frozen, "the frozen assignee of the attempt is untouched"


def test_an_inactive_assignee_is_refused_and_nothing_changes(clients, world):
    inactive = AgentFactory(name="retired-agent", active=False)
    url = admin_url(PlanningTask, "change", world.pk)
    data = form_data(clients["operator"], url)
    data["assignee"] = inactive.pk
    events = Event.objects.count()

    response = clients["operator"].post(url, data)

    assert response.status_code == 200
    assert "Agent retired-agent is not active." in response.content.decode()
    world.refresh_from_db()
    assert world.assignee != inactive and Event.objects.count() == events


def test_a_plan_of_another_project_is_refused_on_add(clients):
    plan_project, project = ProjectFactory(), ProjectFactory()
    plan = PlanFactory(project=plan_project)
    data = form_data(clients["operator"], admin_url(PlanningTask, "add"))
    data.update(
        {"slug": "wrong-plan", "title": "t", "project": project.pk, "procedure": ProcedureFactory().pk, "plan": plan.pk}
    )
    response = clients["operator"].post(admin_url(PlanningTask, "add"), data)
    assert response.status_code == 200 and "The plan belongs to another project." in response.content.decode()
    assert not PlanningTask.objects.filter(slug="wrong-plan").exists()


def test_project_owner_edit_is_a_ledger_fact_and_changes_no_attempt(clients, world):
    project = world.project
    new_owner = AgentFactory(name="new-owner")
    frozen = current(world).requested_assignee
    url = admin_url(Project, "change", project.pk)
    data = form_data(clients["admin"], url)
    data["owner"] = new_owner.pk

    assert clients["admin"].post(url, data).status_code == 302

    project.refresh_from_db()
    assert project.owner == new_owner
    event = Event.objects.get(type="project.owner_changed")
    assert (event.actor, event.data["to"]) == ("staff-admin", "new-owner")
    assert current(world).requested_assignee == frozen


def test_an_operator_cannot_change_a_project(clients, world):
    url = admin_url(Project, "change", world.project.pk)
    assert clients["operator"].post(url, {"name": "x", "owner": world.project.owner.pk}).status_code == 403


def test_agents_and_procedures_are_saved_by_their_services(clients):
    client = clients["admin"]
    assert client.post(admin_url(Agent, "add"), {"name": "aemeath", "kind": "ai", "active": "on"}).status_code == 302
    agent = Agent.objects.get(name="aemeath")
    data = form_data(client, admin_url(Agent, "change", agent.pk))
    data.pop("active")
    assert client.post(admin_url(Agent, "change", agent.pk), data).status_code == 302
    agent.refresh_from_db()
    assert agent.active is False
    assert list(Event.objects.filter(type__startswith="agent.").values_list("type", flat=True)) == [
        "agent.created",
        "agent.updated",
    ]

    bad = client.post(
        admin_url(Procedure, "add"),
        {
            "slug": "p",
            "name": "P",
            "phases": '["a", "a"]',
            "executor": "external",
            "max_attempts": 3,
            "stall_timeout_seconds": 60,
        },
    )
    assert bad.status_code == 200 and "distinct phase names" in bad.content.decode()
    good = client.post(
        admin_url(Procedure, "add"),
        {
            "slug": "p",
            "name": "P",
            "phases": '["a", "b"]',
            "executor": "external",
            "max_attempts": 3,
            "stall_timeout_seconds": 60,
        },
    )
    assert good.status_code == 302
    assert Event.objects.filter(type="procedure.created", data__slug="p").exists()


def test_plan_status_cannot_be_changed(clients, world):
    plan = world.plan
    status = plan.status
    response = clients["operator"].post(
        admin_url(Plan, "change", plan.pk), {"status": "succeeded", "paused_at": "2026-01-01 00:00", "name": "x"}
    )
    assert response.status_code == 302
    plan.refresh_from_db()
    assert (plan.status, plan.paused_at, plan.name) == (status, None, plan.name)
    assert plan.name != "x"


def test_plans_added_in_the_admin_are_created_by_the_service(clients):
    project = ProjectFactory()
    response = clients["operator"].post(
        admin_url(Plan, "add"), {"name": "wave 1", "project": project.pk, "on_error": "pause", "status": "failed"}
    )
    assert response.status_code == 302
    plan = Plan.objects.get(name="wave 1")
    assert (plan.status, plan.on_error) == ("draft", "pause")
    assert Event.objects.filter(plan=plan, type="plan.created").exists()


def test_attempts_and_native_runs_cannot_be_changed_even_by_a_superuser(clients, world):
    attempt = current(world)
    run = NativeRun.objects.get(native_run_id="nr-world")
    client = clients["superuser"]

    assert client.post(admin_url(Attempt, "change", attempt.pk), {"status": "succeeded"}).status_code == 403
    assert (
        client.post(admin_url(NativeRun, "change", run.pk), {"binding": "bound", "status": "queued"}).status_code == 403
    )
    attempt.refresh_from_db()
    run.refresh_from_db()
    assert attempt.status == "pending" and run.status == "failed"
    page = client.get(admin_url(Attempt, "change", attempt.pk)).content.decode()
    assert 'name="status"' not in page, "the status is shown, never editable"


def test_service_refusal_after_the_form_is_reported_and_nothing_is_saved(clients, world, monkeypatch):
    from missioncontrol.errors import ServiceError
    from planning import services

    def refuse(**kwargs):
        raise ServiceError("conflict", "Changed meanwhile.")

    monkeypatch.setattr(services, "task_update", refuse)
    url = admin_url(PlanningTask, "change", world.pk)
    data = form_data(clients["operator"], url)
    data["title"] = "Never saved"

    response = clients["operator"].post(url, data, follow=True)

    assert "Nothing was saved: Changed meanwhile." in response.content.decode()
    world.refresh_from_db()
    assert world.title != "Never saved"
