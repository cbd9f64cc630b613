"""Seed 000 end to end through HTTP only: a rerun must not re-link the task to
the old failed native run, and the assignee must not drift to the owner."""

import datetime as dt

import pytest

from tests.api.conftest import binding_of

pytestmark = pytest.mark.django_db

SLUG = "policy-protocol-index-creation-proc-0"


def later(seconds=5):
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).isoformat()


@pytest.mark.parametrize("old_run_names_its_attempt", [True, False])
def test_seed_000_through_the_api(clients, old_run_names_its_attempt):
    admin, operator, executor = clients["admin"], clients["operator"], clients["executor"]

    def ok(response, status):
        assert response.status_code == status, response.content
        return response.json()

    for name in ("aemeath", "shorekeeper", "new-owner", "someone-else"):
        ok(admin.post("/api/v1/agents/", {"name": name}), 201)
    ok(admin.post("/api/v1/projects/", {"slug": "policy", "name": "Policy", "owner": "aemeath"}), 201)
    ok(admin.post("/api/v1/procedures/", {"slug": "index", "name": "Index", "phases": ["preflight", "execute"]}), 201)
    ok(
        operator.post(
            "/api/v1/tasks/", {"slug": SLUG, "title": "Index creation", "project": "policy", "procedure": "index"}
        ),
        201,
    )

    # Launch, bind, fail.
    first = ok(operator.post(f"/api/v1/tasks/{SLUG}/launch/"), 201)
    old_run = {"executor": "ext", "native_task_id": "nt-8812", "native_run_id": "nr-8812-1", "task": SLUG}
    bound = ok(executor.post("/api/v1/native-runs/", {**old_run, "status": "running", "attempt_id": first["id"]}), 201)
    assert binding_of(bound) == {"state": "bound", "attempt_id": first["id"], "reason": None}
    ok(
        executor.post(
            "/api/v1/native-runs/",
            {**old_run, "status": "failed", "attempt_id": first["id"], "message": "index build failed"},
        ),
        200,
    )
    assert ok(operator.get(f"/api/v1/tasks/{SLUG}/"), 200)["status"] == "failed"

    # Rerun with another assignee: a fresh attempt identity, the assignee frozen on it.
    second = ok(
        operator.post(f"/api/v1/tasks/{SLUG}/rerun/", {"reason": "retry on shorekeeper", "assignee": "shorekeeper"}),
        201,
    )
    assert second["id"] != first["id"] and second["number"] == 2
    assert second["requested_assignee"] == "shorekeeper" and second["native_run_id"] is None
    old = ok(operator.get(f"/api/v1/attempts/{first['id']}/"), 200)
    assert old["superseded_by"] == second["id"] and old["superseded_at"] is not None

    # The old run reports again, with and without its attempt id: never bound to the new attempt.
    again = {**old_run, "status": "running", "created_at": later()}
    if old_run_names_its_attempt:
        again["attempt_id"] = first["id"]
    replay = ok(executor.post("/api/v1/native-runs/", again), 200)
    assert replay["binding"]["attempt_id"] == first["id"]  # stays with the superseded attempt: history
    reused_task_id = ok(
        executor.post(
            "/api/v1/native-runs/",
            {
                **old_run,
                "native_run_id": "nr-8812-2",
                "status": "running",
                "created_at": later(),
                **({"attempt_id": first["id"]} if old_run_names_its_attempt else {}),
            },
        ),
        201,
    )
    assert reused_task_id["binding"]["state"] == "rejected"
    assert reused_task_id["binding"]["reason"] == ("superseded" if old_run_names_its_attempt else "retired_native_id")
    task = ok(operator.get(f"/api/v1/tasks/{SLUG}/"), 200)
    assert task["status"] == "launch_requested"
    assert task["current_attempt"]["id"] == second["id"] and task["current_attempt"]["native_run_id"] is None
    rejected = ok(operator.get(f"/api/v1/native-runs/?binding=rejected&task={SLUG}"), 200)["results"]
    assert [r["native_run_id"] for r in rejected] == ["nr-8812-2"]

    # Owner and task assignee change: the frozen requested assignee does not move.
    ok(admin.patch("/api/v1/projects/policy/", {"owner": "new-owner"}), 200)
    ok(operator.patch(f"/api/v1/tasks/{SLUG}/", {"assignee": "someone-else"}), 200)
    assert ok(operator.get(f"/api/v1/attempts/{second['id']}/"), 200)["requested_assignee"] == "shorekeeper"

    # The new attempt's own run binds; a later rerun keeps the frozen assignee.
    fresh = ok(
        executor.post(
            "/api/v1/native-runs/",
            {
                "executor": "ext",
                "native_task_id": "nt-9001",
                "native_run_id": "nr-9001-1",
                "task": SLUG,
                "status": "failed",
                "attempt_id": second["id"],
            },
        ),
        201,
    )
    assert binding_of(fresh) == {"state": "bound", "attempt_id": second["id"], "reason": None}
    third = ok(operator.post(f"/api/v1/tasks/{SLUG}/rerun/", {"reason": "once more"}), 201)
    assert third["requested_assignee"] == "shorekeeper"
    history = ok(operator.get(f"/api/v1/tasks/{SLUG}/attempts/"), 200)["results"]
    assert [a["number"] for a in history] == [3, 2, 1]
    assert [a["native_run_id"] for a in history] == [None, "nr-9001-1", "nr-8812-1"]
