"""Idempotency-Key on launch, rerun and repair (rule 4)."""

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from missioncontrol.api.services import api_token_create
from planning.models import Event
from retries.models import Attempt, IdempotencyKey
from retries.services import idempotency_keys_expire
from tests.api.conftest import assert_error
from tests.factories import ProcedureFactory, ProjectFactory, TaskFactory
from tests.steps import fail_current, launch

pytestmark = pytest.mark.django_db


def rerun(client, task, key, **body):
    body.setdefault("reason", "retry")
    return client.post(f"/api/v1/tasks/{task.slug}/rerun/", body, HTTP_IDEMPOTENCY_KEY=key)


def test_a_repeat_returns_the_first_response_and_creates_nothing(operator, task):
    fail_current(task)
    first = rerun(operator, task, "key-1")
    events = Event.objects.count()
    second = rerun(operator, task, "key-1")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert Attempt.objects.filter(task=task).count() == 2 and Event.objects.count() == events


def test_the_stored_response_is_the_first_one_even_after_the_attempt_moved(operator, executor, task):
    fail_current(task)
    first = rerun(operator, task, "key-1").json()
    executor.post(f"/api/v1/attempts/{first['id']}/phases/", {"phase": "preflight", "outcome": "passed"})
    assert rerun(operator, task, "key-1").json() == first  # status "pending", as first answered


def test_the_same_key_with_another_body_is_422(operator, task):
    fail_current(task)
    rerun(operator, task, "key-1", reason="one")
    assert_error(rerun(operator, task, "key-1", reason="two"), 422, "idempotency_key_reused")
    assert Attempt.objects.filter(task=task).count() == 2


def test_keys_are_per_task(operator, task):
    other = TaskFactory(project=task.project, procedure=task.procedure)
    fail_current(task)
    fail_current(other)
    a, b = rerun(operator, task, "shared"), rerun(operator, other, "shared")
    assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]


def test_launch_and_repair_take_a_key_too(operator, task):
    first = operator.post(f"/api/v1/tasks/{task.slug}/launch/", HTTP_IDEMPOTENCY_KEY="launch-1")
    again = operator.post(f"/api/v1/tasks/{task.slug}/launch/", HTTP_IDEMPOTENCY_KEY="launch-1")
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    repair = operator.post(f"/api/v1/tasks/{task.slug}/repair/", {"reason": "fix"}, HTTP_IDEMPOTENCY_KEY="r-1")
    repeat = operator.post(f"/api/v1/tasks/{task.slug}/repair/", {"reason": "fix"}, HTTP_IDEMPOTENCY_KEY="r-1")
    assert repair.status_code == repeat.status_code == 201 and repair.json() == repeat.json()
    assert Attempt.objects.filter(task=task).count() == 2
    assert_error(
        operator.post(f"/api/v1/tasks/{task.slug}/repair/", {"reason": "other"}, HTTP_IDEMPOTENCY_KEY="r-1"),
        422,
        "idempotency_key_reused",
    )


def test_a_refused_request_stores_nothing_under_its_key(operator, task):
    launch(task)
    assert_error(rerun(operator, task, "key-1"), 409, "attempt_active")
    assert not IdempotencyKey.objects.exists()
    assert rerun(operator, task, "key-1", supersede_active=True).status_code == 201


@pytest.mark.parametrize("key", ["x" * 201, "has space", "caf\u00e9"])
def test_a_malformed_key_is_a_400(operator, task, key):
    fail_current(task)
    response = operator.post(f"/api/v1/tasks/{task.slug}/rerun/", {"reason": "r"}, headers={"Idempotency-Key": key})
    assert_error(response, 400, "invalid", {"Idempotency-Key"})
    assert Attempt.objects.filter(task=task).count() == 1


def test_keys_expire_after_24_hours(operator, task):
    fail_current(task)
    first = rerun(operator, task, "key-1").json()
    fail_current(task)
    IdempotencyKey.objects.update(created_at=timezone.now() - dt.timedelta(hours=24, seconds=1))
    assert idempotency_keys_expire() == 1
    second = rerun(operator, task, "key-1")
    assert second.status_code == 201 and second.json()["id"] != first["id"] and second.json()["number"] == 3


@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_reruns_with_one_key_make_one_attempt_and_identical_answers():
    task = TaskFactory(project=ProjectFactory(), procedure=ProcedureFactory())
    fail_current(task)
    key = api_token_create(username="concurrent-operator", role="operator").key
    barrier = threading.Barrier(20)
    answers: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def send():
        try:
            barrier.wait()
            client = APIClient()  # one client per thread, each on its own connection
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
            response = client.post(
                f"/api/v1/tasks/{task.slug}/rerun/",
                {"reason": "storm"},
                format="json",
                HTTP_IDEMPOTENCY_KEY="storm-key",
            )
            with lock:
                answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(answers) == 20
    assert {status for status, _ in answers} == {201}
    bodies = [body for _, body in answers]
    assert all(body == bodies[0] for body in bodies)
    assert Attempt.objects.filter(task=task).count() == 2
    assert Attempt.objects.get(task=task, superseded_at__isnull=True).id.hex == bodies[0]["id"].replace("-", "")
