"""Agents, projects and procedures: shapes, writes by admin, every refusal."""

import pytest

from planning.models import Agent, Event, Procedure, Project
from tests.api.conftest import assert_error
from tests.factories import TaskFactory
from tests.steps import launch

pytestmark = pytest.mark.django_db


def test_agent_create_list_get_and_patch(admin, viewer):
    created = admin.post("/api/v1/agents/", {"name": "aemeath", "kind": "human"})
    assert created.status_code == 201
    assert created.json() == {"name": "aemeath", "kind": "human", "active": True}
    listed = viewer.get("/api/v1/agents/").json()
    assert listed["count"] == 1 and listed["results"] == [created.json()]
    assert listed["next"] is None and listed["previous"] is None
    patched = admin.patch("/api/v1/agents/aemeath/", {"active": False})
    assert patched.status_code == 200 and patched.json()["active"] is False
    assert viewer.get("/api/v1/agents/aemeath/").json()["active"] is False
    assert Event.objects.filter(type="agent.updated").count() == 1


def test_agent_errors(admin):
    admin.post("/api/v1/agents/", {"name": "taken"})
    assert_error(admin.post("/api/v1/agents/", {"name": "taken"}), 400, "invalid", {"name"})
    assert_error(admin.post("/api/v1/agents/", {}), 400, "invalid", {"name"})
    assert_error(admin.post("/api/v1/agents/", {"name": 7}), 400, "invalid", {"name"})
    assert_error(admin.patch("/api/v1/agents/nobody/", {"active": False}), 404, "not_found")
    assert_error(admin.patch("/api/v1/agents/taken/", {"kind": "cyborg"}), 400, "invalid", {"kind"})
    assert_error(admin.patch("/api/v1/agents/taken/", {"active": 1}), 400, "invalid", {"active"})
    assert Agent.objects.get(name="taken").active is True


def test_project_create_and_owner_change_moves_future_defaults_only(admin, operator):
    admin.post("/api/v1/agents/", {"name": "first-owner"})
    admin.post("/api/v1/agents/", {"name": "second-owner"})
    created = admin.post("/api/v1/projects/", {"slug": "policy", "name": "Policy", "owner": "first-owner"})
    assert created.status_code == 201
    assert created.json() == {"slug": "policy", "name": "Policy", "owner": "first-owner"}
    admin.post("/api/v1/procedures/", {"slug": "aemeath", "name": "A", "phases": ["run"]})
    operator.post("/api/v1/tasks/", {"slug": "t1", "title": "T1", "project": "policy", "procedure": "aemeath"})
    attempt = operator.post("/api/v1/tasks/t1/launch/").json()

    patched = admin.patch("/api/v1/projects/policy/", {"owner": "second-owner"})

    assert patched.status_code == 200 and patched.json()["owner"] == "second-owner"
    assert operator.get(f"/api/v1/attempts/{attempt['id']}/").json()["requested_assignee"] == "first-owner"
    t2 = operator.post("/api/v1/tasks/", {"slug": "t2", "title": "T2", "project": "policy", "procedure": "aemeath"})
    assert t2.json()["assignee"] == "second-owner"


def test_project_errors(admin):
    assert_error(
        admin.post("/api/v1/projects/", {"slug": "p", "name": "P", "owner": "ghost"}), 400, "invalid", {"owner"}
    )
    assert_error(admin.post("/api/v1/projects/", {"slug": "P!", "name": "P"}), 400, "invalid", {"slug", "owner"})
    assert_error(admin.patch("/api/v1/projects/nope/", {"name": "x"}), 404, "not_found")
    assert not Project.objects.exists()


def test_procedure_create_get_patch(admin, viewer):
    body = {
        "slug": "shorekeeper",
        "name": "Shorekeeper",
        "phases": ["preflight", "execute", "finalize"],
        "executor": "local",
        "max_attempts": 5,
        "stall_timeout_seconds": 60,
    }
    created = admin.post("/api/v1/procedures/", body)
    assert created.status_code == 201 and created.json() == body
    assert viewer.get("/api/v1/procedures/shorekeeper/").json() == body
    patched = admin.patch("/api/v1/procedures/shorekeeper/", {"max_attempts": 2})
    assert patched.status_code == 200 and patched.json()["max_attempts"] == 2


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"slug": "p", "name": "P", "phases": []}, {"phases"}),
        ({"slug": "p", "name": "P", "phases": ["a", "a"]}, {"phases"}),
        ({"slug": "p", "name": "P", "phases": ["a"], "executor": "cloud"}, {"executor"}),
        ({"slug": "p", "name": "P", "phases": ["a"], "max_attempts": 0}, {"max_attempts"}),
        ({"slug": "p", "name": "P", "phases": ["a"], "stall_timeout_seconds": 2**40}, {"stall_timeout_seconds"}),
        ({"slug": "p", "name": "P", "phases": "a"}, {"phases"}),
    ],
)
def test_procedure_bad_input_is_refused_and_changes_nothing(admin, body, fields):
    assert_error(admin.post("/api/v1/procedures/", body), 400, "invalid", fields)
    assert not Procedure.objects.exists()


def test_procedure_patch_errors(admin):
    admin.post("/api/v1/procedures/", {"slug": "p", "name": "P", "phases": ["a"]})
    assert_error(admin.patch("/api/v1/procedures/p/", {"phases": [""]}), 400, "invalid", {"phases.0"})
    assert_error(admin.patch("/api/v1/procedures/ghost/", {"name": "x"}), 404, "not_found")


def test_lists_paginate_with_page_and_page_size(admin, viewer):
    for n in range(5):
        admin.post("/api/v1/agents/", {"name": f"agent-{n}"})
    first = viewer.get("/api/v1/agents/?page_size=2").json()
    assert first["count"] == 5 and [a["name"] for a in first["results"]] == ["agent-0", "agent-1"]
    assert first["previous"] is None and "page=2" in first["next"]
    last = viewer.get("/api/v1/agents/?page_size=2&page=3").json()
    assert [a["name"] for a in last["results"]] == ["agent-4"] and last["next"] is None


def test_task_detail_is_readable_by_an_executor(clients):
    task = TaskFactory()
    launch(task)
    body = clients["executor"].get(f"/api/v1/tasks/{task.slug}/").json()
    assert body["status"] == "launch_requested" and body["current_attempt"]["number"] == 1
