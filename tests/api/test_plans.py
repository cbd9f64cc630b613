"""Plans: counts per status and failure diagnostics."""

import pytest

from tests.api.conftest import assert_error
from tests.factories import TaskFactory
from tests.steps import fail_current, launch

pytestmark = pytest.mark.django_db


def test_create_and_read_a_plan_with_counts_and_diagnostics(operator, viewer, task):
    response = operator.post("/api/v1/plans/", {"name": "wave 1", "project": task.project.slug, "on_error": "pause"})
    assert response.status_code == 201, response.content
    plan = response.json()
    assert plan["status"] == "draft" and plan["on_error"] == "pause" and plan["failed_tasks"] == []
    assert plan["counts"] == dict.fromkeys(
        ("draft", "launch_requested", "running", "succeeded", "failed", "blocked", "cancelled"), 0
    )
    from planning.models import Plan

    plan_obj = Plan.objects.get(id=plan["id"])
    a = TaskFactory(slug="a", project=task.project, procedure=task.procedure, plan=plan_obj)
    b = TaskFactory(slug="b", project=task.project, procedure=task.procedure, plan=plan_obj)
    launch(b)
    fail_current(a)

    body = viewer.get(f"/api/v1/plans/{plan['id']}/").json()
    assert body["counts"]["failed"] == 1 and body["counts"]["launch_requested"] == 1
    assert body["status"] == "paused"
    assert body["failed_tasks"] == [
        {
            "task": "a",
            "attempt_number": 1,
            "max_attempts": 3,
            "failed_phase": None,
            "failure_kind": "executor_failed",
            "message": "boom",
            "at": body["failed_tasks"][0]["at"],
        }
    ]
    listed = viewer.get(f"/api/v1/plans/?project={task.project.slug}").json()
    assert listed["count"] == 1 and listed["results"][0] == body
    assert viewer.get("/api/v1/plans/?status=paused").json()["count"] == 1
    assert viewer.get("/api/v1/plans/?status=running").json()["count"] == 0

    resumed = operator.post(f"/api/v1/plans/{plan['id']}/resume/")
    assert resumed.status_code == 200 and resumed.json()["status"] == "running"


def test_plan_errors(operator, viewer, task):
    assert_error(operator.post("/api/v1/plans/", {"name": "x", "project": "ghost"}), 400, "invalid", {"project"})
    assert_error(
        operator.post("/api/v1/plans/", {"name": "x", "project": task.project.slug, "on_error": "panic"}),
        400,
        "invalid",
        {"on_error"},
    )
    missing = "00000000-0000-4000-8000-000000000000"
    assert_error(viewer.get(f"/api/v1/plans/{missing}/"), 404, "not_found")
    assert_error(operator.post(f"/api/v1/plans/{missing}/resume/"), 404, "not_found")
    assert_error(viewer.get("/api/v1/plans/?status=lost"), 400, "invalid", {"status"})
