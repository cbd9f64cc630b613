"""Tasks: create, read, filter, edit, and the actions launch, rerun, repair
and cancel with every error code API.md gives them."""

import pytest

from planning.models import Event, PlanningTask
from retries.models import Attempt
from tests.api.conftest import assert_error
from tests.factories import AgentFactory, PlanFactory, TaskFactory
from tests.steps import current, fail_current, launch

pytestmark = pytest.mark.django_db


def url(task, action=""):
    return f"/api/v1/tasks/{task.slug}/{action + '/' if action else ''}"


def succeed(executor, task):
    attempt = current(task)
    for phase in task.procedure.phases:
        assert (
            executor.post(f"/api/v1/attempts/{attempt.id}/phases/", {"phase": phase, "outcome": "passed"}).status_code
            == 201
        )
    task.refresh_from_db()
    assert task.status == PlanningTask.Status.SUCCEEDED


# --- create, read, filter, edit ---------------------------------------------------


def test_create_a_task_in_draft_with_the_owner_as_assignee(operator, task):
    response = operator.post(
        "/api/v1/tasks/",
        {
            "slug": "t-new",
            "title": "New",
            "project": task.project.slug,
            "procedure": task.procedure.slug,
            "params": {"depth": 2, "tags": ["a"]},
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft" and body["assignee"] == "owner-bot"
    assert body["params"] == {"depth": 2, "tags": ["a"]}
    assert body["max_attempts"] == 3 and body["attempt_count"] == 0
    assert body["current_attempt"] is None and body["diagnostics"] is None and body["plan"] is None
    assert set(body) == {
        "slug",
        "title",
        "project",
        "procedure",
        "plan",
        "status",
        "params",
        "assignee",
        "max_attempts",
        "attempt_count",
        "current_attempt",
        "diagnostics",
        "created_at",
        "updated_at",
    }


def test_create_errors_name_each_field_and_change_nothing(operator, task):
    other_plan = PlanFactory()
    before = PlanningTask.objects.count()
    body = {"slug": "t-bad", "title": "x", "project": "nope", "procedure": "nope"}
    assert_error(operator.post("/api/v1/tasks/", body), 400, "invalid", {"project", "procedure"})
    body = {
        "slug": "t-bad",
        "title": "x",
        "project": task.project.slug,
        "procedure": task.procedure.slug,
        "plan": str(other_plan.id),
        "assignee": "ghost",
    }
    assert_error(operator.post("/api/v1/tasks/", body), 400, "invalid", {"plan", "assignee"})
    body = {"slug": task.slug, "title": "dup", "project": task.project.slug, "procedure": task.procedure.slug}
    assert_error(operator.post("/api/v1/tasks/", body), 400, "invalid", {"slug"})
    body = {
        "slug": "Bad Slug",
        "title": "",
        "project": task.project.slug,
        "procedure": task.procedure.slug,
        "params": ["not", "an", "object"],
        "max_attempts": 0,
    }
    assert_error(operator.post("/api/v1/tasks/", body), 400, "invalid", {"slug", "title", "params", "max_attempts"})
    body = {
        "slug": "t-nul",
        "title": "x",
        "project": task.project.slug,
        "procedure": task.procedure.slug,
        "params": {"k": "nul\u0000byte"},
    }
    assert_error(operator.post("/api/v1/tasks/", body), 400, "invalid", {"params"})
    assert PlanningTask.objects.count() == before


def test_filters(viewer, task):
    other_owner = AgentFactory(name="other")
    plan = PlanFactory(project=task.project)
    in_plan = TaskFactory(
        slug="alpha-in-plan",
        title="Index rebuild",
        project=task.project,
        plan=plan,
        procedure=task.procedure,
        assignee=other_owner,
    )
    fail_current(in_plan)

    def slugs(query):
        response = viewer.get(f"/api/v1/tasks/?{query}")
        assert response.status_code == 200, response.content
        return [t["slug"] for t in response.json()["results"]]

    assert slugs("") == ["alpha-in-plan", task.slug]
    assert slugs("status=failed") == ["alpha-in-plan"]
    assert slugs("status=draft") == [task.slug]
    assert slugs(f"plan={plan.id}") == ["alpha-in-plan"]
    assert slugs("assignee=other") == ["alpha-in-plan"]
    assert slugs(f"project={task.project.slug}&procedure={task.procedure.slug}") == ["alpha-in-plan", task.slug]
    assert slugs("project=elsewhere") == []
    assert slugs("search=REBUILD") == ["alpha-in-plan"]
    assert slugs("search=protocol-index") == [task.slug]
    assert_error(viewer.get("/api/v1/tasks/?status=exploded"), 400, "invalid", {"status"})
    assert_error(viewer.get("/api/v1/tasks/?plan=not-a-uuid"), 400, "invalid", {"plan"})


def test_patch_edits_fields_but_never_status(operator, task):
    AgentFactory(name="new-assignee")
    response = operator.patch(
        url(task), {"title": "Renamed", "params": {"x": 1}, "assignee": "new-assignee", "max_attempts": 5}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["title"], body["params"], body["assignee"], body["max_attempts"]) == (
        "Renamed",
        {"x": 1},
        "new-assignee",
        5,
    )
    assert_error(operator.patch(url(task), {"status": "succeeded"}), 400, "invalid", {"status"})
    assert_error(operator.patch(url(task), {"assignee": "ghost"}), 400, "invalid", {"assignee"})
    assert_error(operator.patch(url(task), {"max_attempts": "many"}), 400, "invalid", {"max_attempts"})
    assert_error(operator.patch("/api/v1/tasks/ghost/", {"title": "x"}), 404, "not_found")
    task.refresh_from_db()
    assert task.status == PlanningTask.Status.DRAFT and task.title == "Renamed"


def test_patch_assignee_to_null(operator, task):
    response = operator.patch(url(task), {"assignee": None})
    assert response.status_code == 200 and response.json()["assignee"] is None


# --- launch -----------------------------------------------------------------------


def test_launch_creates_attempt_one_then_answers_200_with_it(operator, task):
    first = operator.post(url(task, "launch"))
    assert first.status_code == 201, first.content
    attempt = first.json()
    assert attempt["number"] == 1 and attempt["kind"] == "initial" and attempt["status"] == "pending"
    assert attempt["task"] == task.slug and attempt["requested_by"] == "operator-user"
    assert attempt["requested_assignee"] == "owner-bot" and attempt["phases"] == []
    again = operator.post(url(task, "launch"))
    assert again.status_code == 200 and again.json()["id"] == attempt["id"]
    assert Attempt.objects.filter(task=task).count() == 1


def test_launch_refusals(operator, task):
    assert_error(operator.post("/api/v1/tasks/ghost/launch/"), 404, "not_found")
    fail_current(task)
    assert_error(operator.post(url(task, "launch")), 409, "already_launched")
    plan = PlanFactory(project=task.project, on_error="pause")
    paused = TaskFactory(project=task.project, procedure=task.procedure, plan=plan)
    failing = TaskFactory(project=task.project, procedure=task.procedure, plan=plan)
    fail_current(failing)
    assert_error(operator.post(url(paused, "launch")), 409, "plan_paused")
    resumed = operator.post(f"/api/v1/plans/{plan.id}/resume/")
    assert resumed.status_code == 200 and resumed.json()["status"] != "paused"
    assert operator.post(url(paused, "launch")).status_code == 201


# --- rerun ------------------------------------------------------------------------


def test_rerun_makes_a_fresh_attempt_with_a_frozen_assignee(operator, task):
    AgentFactory(name="shorekeeper")
    old = fail_current(task)
    response = operator.post(url(task, "rerun"), {"reason": "flaky network", "assignee": "shorekeeper"})
    assert response.status_code == 201, response.content
    new = response.json()
    assert new["number"] == 2 and new["kind"] == "rerun" and new["id"] != str(old.id)
    assert new["reason"] == "flaky network" and new["requested_assignee"] == "shorekeeper"
    attempts = operator.get(url(task, "attempts")).json()["results"]
    assert [a["number"] for a in attempts] == [2, 1]
    assert attempts[1]["superseded_by"] == new["id"] and attempts[1]["superseded_at"] is not None
    assert attempts[1]["failure"] == {"kind": "executor_failed", "phase": None, "message": "boom"}


def test_rerun_refusals(operator, task):
    assert_error(operator.post(url(task, "rerun"), {"reason": "x"}), 409, "not_launched")
    launch(task)
    assert_error(operator.post(url(task, "rerun"), {"reason": "x"}), 409, "attempt_active")
    assert_error(operator.post(url(task, "rerun"), {"reason": "   "}), 400, "invalid", {"reason"})
    assert_error(operator.post(url(task, "rerun"), {}), 400, "invalid", {"reason"})
    assert_error(
        operator.post(url(task, "rerun"), {"reason": "x", "supersede_active": "yes"}),
        400,
        "invalid",
        {"supersede_active"},
    )
    AgentFactory(name="retired", active=False)
    assert_error(
        operator.post(url(task, "rerun"), {"reason": "x", "assignee": "retired", "supersede_active": True}),
        400,
        "invalid",
        {"assignee"},
    )
    assert_error(operator.post("/api/v1/tasks/ghost/rerun/", {"reason": "x"}), 404, "not_found")
    assert Attempt.objects.filter(task=task).count() == 1


def test_rerun_supersede_active_cancels_the_active_attempt(operator, task):
    old = launch(task)
    response = operator.post(url(task, "rerun"), {"reason": "stuck", "supersede_active": True})
    assert response.status_code == 201
    old.refresh_from_db()
    assert old.status == Attempt.Status.CANCELLED and str(old.superseded_by_id) == response.json()["id"]


def test_rerun_of_a_succeeded_task_needs_repair(operator, executor, task):
    launch(task)
    succeed(executor, task)
    assert_error(operator.post(url(task, "rerun"), {"reason": "x"}), 409, "use_repair")


def test_rerun_past_the_budget_needs_an_override(operator, task):
    operator.patch(url(task), {"max_attempts": 1})
    fail_current(task)
    assert_error(operator.post(url(task, "rerun"), {"reason": "x"}), 409, "budget_exhausted")
    response = operator.post(url(task, "rerun"), {"reason": "operator override", "override_budget": True})
    assert response.status_code == 201 and response.json()["number"] == 2


# --- repair and cancel ------------------------------------------------------------


def test_repair_reopens_succeeded_work(operator, executor, task):
    assert_error(operator.post(url(task, "repair"), {"reason": "x"}), 409, "not_launched")
    launch(task)
    succeed(executor, task)
    assert_error(operator.post(url(task, "repair"), {"reason": ""}), 400, "invalid", {"reason"})
    response = operator.post(url(task, "repair"), {"reason": "output was wrong"})
    assert response.status_code == 201
    assert response.json()["kind"] == "repair" and response.json()["requested_assignee"] == "owner-bot"
    assert operator.get(url(task)).json()["status"] == "launch_requested"
    assert_error(operator.post("/api/v1/tasks/ghost/repair/", {"reason": "x"}), 404, "not_found")


def test_cancel_answers_the_task(operator, executor, task):
    attempt = launch(task)
    assert_error(operator.post(url(task, "cancel"), {}), 400, "invalid", {"reason"})
    response = operator.post(url(task, "cancel"), {"reason": "not needed"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "cancelled" and body["current_attempt"]["status"] == "cancelled"
    assert body["diagnostics"]["failure_kind"] == "cancelled"
    assert operator.post(url(task, "cancel"), {"reason": "again"}).status_code == 200  # a no-op
    assert_error(operator.post("/api/v1/tasks/ghost/cancel/", {"reason": "x"}), 404, "not_found")
    done = TaskFactory(project=task.project, procedure=task.procedure)
    launch(done)
    succeed(executor, done)
    assert_error(operator.post(url(done, "cancel"), {"reason": "x"}), 409, "not_cancellable")
    assert str(attempt.id) == body["current_attempt"]["id"]


# --- attempts and events ----------------------------------------------------------


def test_events_are_the_ledger_oldest_first(viewer, task):
    fail_current(task)
    response = viewer.get(url(task, "events"))
    assert response.status_code == 200
    events = response.json()["results"]
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and events[0]["type"] == "task.created"
    assert list(Event.objects.filter(task=task).order_by("id").values_list("type", flat=True)) == [
        e["type"] for e in events
    ]
    assert all(e["task"] == task.slug for e in events)
    assert set(events[0]) == {"id", "at", "type", "actor", "task", "attempt_id", "data"}
    assert_error(viewer.get("/api/v1/tasks/ghost/events/"), 404, "not_found")
    assert_error(viewer.get("/api/v1/tasks/ghost/attempts/"), 404, "not_found")


def test_failed_task_shows_diagnostics(viewer, task):
    fail_current(task)
    body = viewer.get(url(task)).json()
    assert body["status"] == "failed"
    assert body["diagnostics"]["attempt_number"] == 1 and body["diagnostics"]["max_attempts"] == 3
    assert body["diagnostics"]["failure_kind"] == "executor_failed" and body["diagnostics"]["message"] == "boom"


def test_a_task_marked_inconsistent_waits_for_repair(operator, task):
    from planning.services import task_mark_inconsistent

    fail_current(task)
    task_mark_inconsistent(task_id=task.id, problems=["status disagrees with the ledger"])
    assert_error(operator.post(url(task, "rerun"), {"reason": "x"}), 409, "inconsistent")
    response = operator.post(url(task, "repair"), {"reason": "checked by hand"})
    assert response.status_code == 201
    task.refresh_from_db()
    assert task.inconsistent_since is None


def test_detail_404s(viewer):
    for path in ("agents/ghost", "projects/ghost", "procedures/ghost", "tasks/ghost"):
        assert_error(viewer.get(f"/api/v1/{path}/"), 404, "not_found")
