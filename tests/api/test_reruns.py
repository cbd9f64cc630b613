"""``POST /api/v1/reruns/``: many reruns in one request, all or nothing (an
extension of API.md; each task gets what ``/tasks/{slug}/rerun/`` gives)."""

import pytest

from planning.models import Event, PlanningTask
from retries.models import Attempt
from tests.api.conftest import assert_error
from tests.factories import TaskFactory
from tests.steps import fail_current, launch

pytestmark = pytest.mark.django_db
URL = "/api/v1/reruns/"


@pytest.fixture
def failed(task) -> list[PlanningTask]:
    tasks = [task] + [
        TaskFactory(slug=f"{task.slug}-{i}", project=task.project, procedure=task.procedure) for i in range(2)
    ]
    for t in tasks:
        fail_current(t)
    return tasks


def test_reruns_every_task_and_answers_in_request_order(operator, failed):
    slugs = [t.slug for t in reversed(failed)]
    response = operator.post(URL, {"tasks": slugs, "reason": "flaky network"}, format="json")
    assert response.status_code == 201, response.content
    results = response.json()["results"]
    assert [r["task"] for r in results] == slugs
    assert {(r["number"], r["kind"], r["status"], r["reason"]) for r in results} == {
        (2, "rerun", "pending", "flaky network")
    }
    for t in failed:
        t.refresh_from_db()
        assert t.status == PlanningTask.Status.LAUNCH_REQUESTED and t.attempt_count == 2


def test_one_task_that_cannot_be_rerun_refuses_the_request(operator, failed):
    launched = TaskFactory(slug="still-running", project=failed[0].project, procedure=failed[0].procedure)
    launch(launched)
    before = Event.objects.count()
    body = assert_error(
        operator.post(URL, {"tasks": [failed[0].slug, launched.slug], "reason": "again"}, format="json"),
        409,
        "rerun_refused",
        {"still-running"},
    )
    assert body["errors"]["still-running"][0].startswith("attempt_active:")
    body = assert_error(
        operator.post(URL, {"tasks": [failed[0].slug, "ghost"], "reason": "again"}, format="json"),
        404,
        "not_found",
        {"ghost"},
    )
    assert Event.objects.count() == before
    assert Attempt.objects.filter(task=failed[0]).count() == 1


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"tasks": [], "reason": "x"}, {"tasks"}),
        ({"tasks": ["a", "a"], "reason": "x"}, {"tasks"}),
        ({"tasks": "a", "reason": "x"}, {"tasks"}),
        ({"tasks": [1], "reason": "x"}, {"tasks.0"}),
        ({"tasks": ["a"]}, {"reason"}),
        ({"tasks": ["a"], "reason": "  "}, {"reason"}),
        ({"tasks": [f"t{i}" for i in range(501)], "reason": "x"}, {"tasks"}),
        ({"tasks": ["a"], "reason": "x", "override_budget": "yes"}, {"override_budget"}),
    ],
)
def test_bad_input_is_a_400_and_changes_nothing(operator, failed, body, fields):
    before = Event.objects.count()
    assert_error(operator.post(URL, body, format="json"), 400, "invalid", fields)
    assert Event.objects.count() == before


def test_options_apply_to_every_task(operator, failed):
    for t in failed:
        t.max_attempts = 1
        t.save(update_fields=["max_attempts"])
    slugs = [t.slug for t in failed]
    assert_error(operator.post(URL, {"tasks": slugs, "reason": "r"}, format="json"), 409, "rerun_refused", set(slugs))
    response = operator.post(
        URL, {"tasks": slugs, "reason": "r", "override_budget": True, "assignee": "owner-bot"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert {r["requested_assignee"] for r in response.json()["results"]} == {"owner-bot"}


def test_a_repeated_key_returns_the_first_response_and_creates_nothing(operator, executor, failed):
    slugs = [t.slug for t in failed]
    first = operator.post(URL, {"tasks": slugs, "reason": "r"}, format="json", HTTP_IDEMPOTENCY_KEY="bulk-1")
    assert first.status_code == 201
    # The attempts move on; the repeat still answers what the first request did.
    attempt_id = first.json()["results"][0]["id"]
    assert (
        executor.post(
            f"/api/v1/attempts/{attempt_id}/phases/", {"phase": "preflight", "outcome": "passed"}, format="json"
        ).status_code
        == 201
    )
    before = Event.objects.count()
    again = operator.post(URL, {"tasks": slugs, "reason": "r"}, format="json", HTTP_IDEMPOTENCY_KEY="bulk-1")
    assert (again.status_code, again.json()) == (201, first.json())
    assert Event.objects.count() == before
    assert_error(
        operator.post(URL, {"tasks": slugs, "reason": "other"}, format="json", HTTP_IDEMPOTENCY_KEY="bulk-1"),
        422,
        "idempotency_key_reused",
    )


def test_get_is_not_allowed(operator):
    assert_error(operator.get(URL), 405, "method_not_allowed")


def test_a_bulk_rerun_reads_a_fixed_number_of_queries(operator, task):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from missioncontrol.api.authentication import auth_cache_clear

    def tasks(prefix: str, n: int) -> list[str]:
        made = [TaskFactory(slug=f"{prefix}-{i}", project=task.project, procedure=task.procedure) for i in range(n)]
        for t in made:
            fail_current(t)
        return [t.slug for t in made]

    counts = []
    for prefix, n in (("few", 2), ("many", 12)):
        slugs = tasks(prefix, n)
        auth_cache_clear()  # each request reads its token, as the first one after the cache's TTL
        with CaptureQueriesContext(connection) as queries:
            response = operator.post(
                URL, {"tasks": slugs, "reason": "r"}, format="json", HTTP_IDEMPOTENCY_KEY=f"count-{prefix}"
            )
        assert response.status_code == 201, response.content
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1], counts
