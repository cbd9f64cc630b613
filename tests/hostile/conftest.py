"""A small world to attack: a task with a current attempt that a native run
reports on, an operator and an executor with API tokens, dashboard and admin
sessions. ``no_change`` proves a refusal wrote nothing."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from rest_framework.test import APIClient

from missioncontrol.api.services import api_token_create
from planning.models import Event, PlanningTask
from retries.models import Attempt, NativeRun
from tests.factories import TEST_EXECUTORS, AgentFactory, ProcedureFactory, ProjectFactory, TaskFactory
from tests.steps import fail_current

API_ERROR_KEYS = {"detail", "code", "errors"}


def token_client(username: str, role: str) -> APIClient:
    client = APIClient(raise_request_exception=False)
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {api_token_create(username=username, role=role, executors=TEST_EXECUTORS if role == 'executor' else ()).key}"
    )
    return client


def session_client(username: str, role: str, *, staff: bool = False) -> Client:
    user = get_user_model().objects.create_user(username=username, password="pw-" + username, is_staff=staff)
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def row_counts() -> dict[str, int]:
    return {
        "tasks": PlanningTask.objects.count(),
        "attempts": Attempt.objects.count(),
        "native_runs": NativeRun.objects.count(),
        "events": Event.objects.count(),
    }


def assert_api_error(response, status: int, code: str | None = None) -> dict:
    """The API's one error shape, as JSON, with no trace of a stack."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].split(";")[0] == "application/json", response["Content-Type"]
    body = response.json()
    assert set(body) <= API_ERROR_KEYS and {"detail", "code"} <= set(body), body
    assert isinstance(body["detail"], str) and body["detail"]
    if code is not None:
        assert body["code"] == code, body
    assert "Traceback" not in response.content.decode()
    return body


def assert_html_error(response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("text/html"), response["Content-Type"]
    html = response.content.decode()
    assert "Traceback" not in html
    return html


@pytest.fixture
def world(db):
    owner = AgentFactory(name="owner-bot")
    project = ProjectFactory(slug="policy", owner=owner)
    procedure = ProcedureFactory(slug="aemeath", phases=["preflight", "execute", "finalize"], max_attempts=5)
    task = TaskFactory(slug="policy-proc-0", project=project, procedure=procedure)
    failed = fail_current(task, native_run_id="nr-seed")
    task.refresh_from_db()
    return {"task": task, "attempt": failed, "project": project, "procedure": procedure}


@pytest.fixture
def operator(db):
    return token_client("op-bot", "operator")


@pytest.fixture
def executor(db):
    return token_client("exec-bot", "executor")


@pytest.fixture
def dashboard(db):
    return session_client("olga", "operator")


@pytest.fixture
def staff(db):
    return session_client("sam", "operator", staff=True)


@contextmanager
def no_change():
    """The body of the ``with`` wrote no task, attempt, native run or ledger event."""
    before = row_counts()
    yield
    assert row_counts() == before
