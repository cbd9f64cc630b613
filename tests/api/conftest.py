"""API clients per role, authenticated with real tokens from the same
service the create_api_token command uses."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from missioncontrol.api.services import api_token_create
from planning.models import PlanningTask
from tests.factories import TEST_EXECUTORS, AgentFactory, ProcedureFactory, ProjectFactory, TaskFactory

ROLE_NAMES = ("viewer", "operator", "executor", "admin")


def token_client(username: str, role: str | None) -> APIClient:
    client = APIClient()
    if role is None:
        # An outsider: a real, authenticated user in no role.
        user = get_user_model().objects.create_user(username=username)
        from rest_framework.authtoken.models import Token

        key = Token.objects.create(user=user).key
    else:
        key = api_token_create(username=username, role=role, executors=TEST_EXECUTORS if role == "executor" else ()).key
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def clients(db):
    """A client per role, plus ``anonymous`` and ``outsider``."""
    made = {role: token_client(f"{role}-user", role) for role in ROLE_NAMES}
    made["outsider"] = token_client("outsider-user", None)
    made["anonymous"] = APIClient()
    return made


@pytest.fixture
def operator(clients):
    return clients["operator"]


@pytest.fixture
def executor(clients):
    return clients["executor"]


@pytest.fixture
def admin(clients):
    return clients["admin"]


@pytest.fixture
def viewer(clients):
    return clients["viewer"]


@pytest.fixture
def task(db) -> PlanningTask:
    owner = AgentFactory(name="owner-bot")
    project = ProjectFactory(slug="policy", owner=owner)
    procedure = ProcedureFactory(slug="aemeath", phases=["preflight", "execute", "finalize"], max_attempts=3)
    return TaskFactory(slug="policy-protocol-index-creation-proc-0", project=project, procedure=procedure)


def assert_error(response, status: int, code: str, fields: set[str] | None = None) -> dict:
    """The one error shape: detail (a sentence) and code, errors for fields."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["detail"], str) and body["detail"], body
    assert set(body) <= {"detail", "code", "errors"}, body
    if fields is not None:
        assert set(body["errors"]) == fields, body
        assert all(isinstance(m, list) and m for m in body["errors"].values()), body
    return body


def binding_of(run: dict) -> dict:
    """A native run's binding without its explanation, which must be a
    sentence (its wording is tested with the decision)."""
    binding = dict(run["binding"])
    explanation = binding.pop("explanation")
    assert isinstance(explanation, str) and explanation.endswith("."), explanation
    return binding
