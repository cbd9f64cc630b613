"""The lean path of POST /api/v1/native-runs/ (missioncontrol/api/report_path.py)
answers exactly as the DRF view does, and leaves everything else to it."""

from unittest import mock

import pytest

from missioncontrol.api.native_runs import NativeRunViewSet
from tests.api.conftest import assert_error
from tests.factories import TaskFactory
from tests.steps import launch

pytestmark = pytest.mark.django_db

URL = "/api/v1/native-runs/"
# An Accept header the lean path does not take: the DRF view answers.
TO_DRF = {"HTTP_ACCEPT": "application/json, */*"}


def body(task, attempt, run_id, status="running"):
    return {
        "executor": "ext",
        "native_task_id": f"nt-{run_id}",
        "native_run_id": run_id,
        "task": task.slug,
        "attempt_id": str(attempt.id),
        "status": status,
    }


def comparable(response) -> tuple:
    headers = {k: v for k, v in response.headers.items() if k not in ("X-Request-ID",)}
    data = response.json()
    headers.pop("Expires")  # a time
    assert int(headers.pop("Content-Length")) == len(response.content)  # the slugs differ in length
    for key in ("native_task_id", "native_run_id", "task", "attempt_id", "last_seen_at"):
        data.pop(key)
    data["binding"].pop("attempt_id")
    return response.status_code, headers, data


def test_the_lean_path_answers_as_the_view_does(executor, task):
    attempt = launch(task)
    other = TaskFactory(project=task.project, procedure=task.procedure)
    other_attempt = launch(other)
    with mock.patch.object(NativeRunViewSet, "create", side_effect=AssertionError("the lean path answers")):
        lean_new = executor.post(URL, body(task, attempt, "a"), format="json")
        lean_change = executor.post(URL, body(task, attempt, "a", "failed"), format="json")
    drf_new = executor.post(URL, body(other, other_attempt, "b"), format="json", **TO_DRF)
    drf_change = executor.post(URL, body(other, other_attempt, "b", "failed"), format="json", **TO_DRF)
    assert lean_new.status_code == 201 and lean_change.status_code == 200
    for lean, drf in ((lean_new, drf_new), (lean_change, drf_change)):
        assert comparable(lean) == comparable(drf)
    assert lean_new.content.startswith(b'{"executor":"ext"')
    assert lean_new.headers["Allow"] == "GET, POST, HEAD"
    # The run was applied as the full path applies it.
    assert lean_change.json()["status"] == "failed"


@pytest.mark.parametrize(
    ("client", "data", "status", "code"),
    [
        ("anonymous", {}, 401, "not_authenticated"),
        ("viewer", {}, 403, "permission_denied"),
        ("executor", {"status": "running"}, 400, "invalid"),
        ("executor", {"executor": "not-granted"}, 403, "executor_not_allowed"),
    ],
)
def test_refusals_are_the_views(clients, task, client, data, status, code):
    attempt = launch(task)
    report = {**body(task, attempt, "r"), **data}
    if code == "invalid":
        del report["task"]
    assert_error(clients[client].post(URL, report, format="json"), status, code)


def test_a_bad_token_and_a_bad_body_are_the_views(clients, task):
    response = clients["executor"].generic("POST", URL, b'{"executor": ', content_type="application/json")
    assert_error(response, 400, "parse_error")
    client = clients["executor"]
    client.credentials(HTTP_AUTHORIZATION="Token nope")
    assert_error(client.post(URL, {}, format="json"), 401, "authentication_failed")
