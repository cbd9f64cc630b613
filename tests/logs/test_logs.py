"""Structured logs: one request's lines share its request id and name the
task and attempt; the Celery task the request enqueued logs the same id."""

import json
import re

import pytest
from rest_framework.test import APIClient

from missioncontrol.api.services import api_token_create
from missioncontrol.observability.logs import request_id_from
from tests.execution.conftest import wait_for
from tests.factories import ProcedureFactory, TaskFactory
from tests.observe_worker import OBSERVE_WORKER_GROUP
from tests.steps import fail_current


def operator_client() -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(username='op', role='operator').key}")
    return client


@pytest.mark.django_db(transaction=True)  # facts are heard when the request's transaction commits
def test_a_requests_lines_share_its_id_and_name_task_and_attempt(json_lines):
    task = TaskFactory()
    fail_current(task)
    client = operator_client()
    json_lines.clear()
    response = client.post(f"/api/v1/tasks/{task.slug}/rerun/", {"reason": "again"}, HTTP_X_REQUEST_ID="req-0042.abc")
    assert response.status_code == 201, response.content
    assert response["X-Request-ID"] == "req-0042.abc"
    attempt_id = response.json()["id"]

    assert json_lines and all(line.get("request_id") == "req-0042.abc" for line in json_lines), json_lines
    [request_line] = [line for line in json_lines if line["event"] == "http request"]
    assert request_line | {"duration_ms": 0} == request_line | {
        "method": "POST",
        "path": f"/api/v1/tasks/{task.slug}/rerun/",
        "view": "api:task-rerun",
        "status": 201,
        "user": "op",
        "duration_ms": 0,
    }
    facts = {line["event_type"]: line for line in json_lines if line["event"] == "ledger fact"}
    assert {"attempt.superseded", "attempt.requested", "task.status_changed"} <= set(facts)
    requested = facts["attempt.requested"]
    assert (requested["task"], requested["attempt_id"], requested["actor"]) == (task.slug, attempt_id, "op")
    assert all(line["task"] == task.slug for line in facts.values())


@pytest.mark.parametrize("given", [None, "", "has spaces", "x" * 200, "new\nline", "-leading-dash"])
def test_an_insane_request_id_is_replaced(given):
    made = request_id_from(given)
    assert made != given and re.fullmatch(r"[0-9a-f]{32}", made)


@pytest.mark.django_db
def test_every_response_carries_a_request_id(client):
    first, second = client.get("/healthz"), client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", first["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]


@pytest.mark.worker
@pytest.mark.xdist_group(OBSERVE_WORKER_GROUP)
@pytest.mark.django_db(transaction=True)
def test_the_celery_task_a_request_enqueued_logs_the_same_request_id(observe_worker, json_lines):
    procedure = ProcedureFactory(executor="local", phases=["only"], max_attempts=1)
    task = TaskFactory(procedure=procedure, params={"phase_seconds": 0.05})
    response = operator_client().post(f"/api/v1/tasks/{task.slug}/launch/", {}, HTTP_X_REQUEST_ID="req-celery-7")
    assert response.status_code == 201, response.content
    attempt_id = response.json()["id"]

    def worker_lines() -> list[dict]:
        lines = []
        for raw in observe_worker.log_path.read_text(errors="replace").splitlines():
            if raw.startswith("{"):
                line = json.loads(raw)
                if line.get("request_id") == "req-celery-7":
                    lines.append(line)
        return lines

    def done() -> list[dict]:
        lines = worker_lines()
        finished = {line.get("celery_task") for line in lines if "succeeded in" in line["event"]}
        # Two pool processes: the phase may end before the launch has logged.
        return lines if {"retries.tasks.launch_attempt", "retries.tasks.run_phase"} <= finished else []

    lines = wait_for(done, timeout=60, what="the worker's lines for the request")
    tasks = {line.get("celery_task") for line in lines}
    assert {"retries.tasks.launch_attempt", "retries.tasks.run_phase"} <= tasks, tasks
    facts = [line for line in lines if line["event"] == "ledger fact"]
    assert facts and all(line["task"] == task.slug for line in facts), facts
    assert any(line["attempt_id"] == attempt_id for line in facts)
    # The request's own lines, in this process, carry the same id.
    assert any(line["event"] == "http request" and line["request_id"] == "req-celery-7" for line in json_lines)


@pytest.mark.django_db
def test_the_request_line_never_loads_the_user_itself(client, json_lines, django_assert_num_queries):
    """/healthz never asks who the user is: its log line must not load the
    session (a query, which fails when the database is down)."""
    from tests.web.conftest import make_user

    client.force_login(make_user("someone", "viewer"))
    json_lines.clear()
    with django_assert_num_queries(1):  # healthz's own SELECT 1
        assert client.get("/healthz").status_code == 200
    [line] = [line for line in json_lines if line["event"] == "http request"]
    assert line["user"] is None and line["status"] == 200
