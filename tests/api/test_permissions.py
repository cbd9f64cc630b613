"""The role matrix of API.md for every endpoint: anonymous 401; an
authenticated user without the role 403; the roles that may, never refused."""

import pytest

from planning.models import Event
from tests.api.conftest import assert_error
from tests.factories import PlanFactory
from tests.steps import launch

pytestmark = pytest.mark.django_db

READ = {"viewer", "operator", "executor", "admin"}
ADMIN = {"admin"}
OPERATOR = {"operator", "admin"}
EXECUTOR = {"executor"}

T = "/api/v1/tasks/policy-protocol-index-creation-proc-0"
RUN = {
    "executor": "ext",
    "native_task_id": "nt-1",
    "native_run_id": "nr-1",
    "task": "policy-protocol-index-creation-proc-0",
    "status": "running",
}

ENDPOINTS = [
    ("get", "/api/v1/agents/", None, READ),
    ("post", "/api/v1/agents/", {"name": "new-agent"}, ADMIN),
    ("get", "/api/v1/agents/owner-bot/", None, READ),
    ("patch", "/api/v1/agents/owner-bot/", {"active": True}, ADMIN),
    ("get", "/api/v1/projects/", None, READ),
    ("post", "/api/v1/projects/", {"slug": "p2", "name": "P2", "owner": "owner-bot"}, ADMIN),
    ("get", "/api/v1/projects/policy/", None, READ),
    ("patch", "/api/v1/projects/policy/", {"name": "Policy"}, ADMIN),
    ("get", "/api/v1/procedures/", None, READ),
    ("post", "/api/v1/procedures/", {"slug": "sk", "name": "SK", "phases": ["a"]}, ADMIN),
    ("get", "/api/v1/procedures/aemeath/", None, READ),
    ("patch", "/api/v1/procedures/aemeath/", {"name": "Aemeath"}, ADMIN),
    ("get", "/api/v1/plans/", None, READ),
    ("post", "/api/v1/plans/", {"name": "wave", "project": "policy"}, OPERATOR),
    ("get", "/api/v1/plans/{plan}/", None, READ),
    ("post", "/api/v1/plans/{plan}/resume/", {}, OPERATOR),
    ("get", "/api/v1/tasks/", None, READ),
    ("post", "/api/v1/tasks/", {"slug": "t2", "title": "T2", "project": "policy", "procedure": "aemeath"}, OPERATOR),
    ("get", f"{T}/", None, READ),
    ("patch", f"{T}/", {"title": "New title"}, OPERATOR),
    ("post", f"{T}/launch/", {}, OPERATOR),
    ("post", f"{T}/rerun/", {"reason": "again", "supersede_active": True}, OPERATOR),
    ("post", f"{T}/repair/", {"reason": "fix"}, OPERATOR),
    ("post", f"{T}/cancel/", {"reason": "stop"}, OPERATOR),
    (
        "post",
        "/api/v1/reruns/",
        {"tasks": [T.rsplit("/", 1)[1]], "reason": "again", "supersede_active": True},
        OPERATOR,
    ),
    ("get", f"{T}/attempts/", None, READ),
    ("get", f"{T}/events/", None, READ),
    ("get", "/api/v1/attempts/{attempt}/", None, READ),
    ("post", "/api/v1/attempts/{attempt}/phases/", {"phase": "preflight", "outcome": "passed"}, EXECUTOR),
    ("get", "/api/v1/native-runs/", None, READ),
    ("post", "/api/v1/native-runs/", RUN, EXECUTOR),
    ("post", "/api/v1/native-runs/batch/", {"reports": [RUN]}, EXECUTOR),
    ("get", "/api/v1/schema/", None, READ),
    ("get", "/api/v1/docs/", None, READ),
]


@pytest.mark.parametrize("role", ["anonymous", "outsider", "viewer", "operator", "executor", "admin"])
@pytest.mark.parametrize(("method", "url", "body", "allowed"), ENDPOINTS, ids=[f"{m} {u}" for m, u, _, _ in ENDPOINTS])
def test_role_matrix(clients, task, role, method, url, body, allowed):
    attempt = launch(task)
    plan = PlanFactory(project=task.project)
    url = url.format(plan=plan.id, attempt=attempt.id)
    events_before = Event.objects.count()
    kwargs = {"format": "json"} if body is not None else {}
    if url.endswith("/docs/"):
        kwargs["HTTP_ACCEPT"] = "text/html"
    response = (
        getattr(clients[role], method)(url, body, **kwargs)
        if body is not None
        else getattr(clients[role], method)(url, **kwargs)
    )

    if role == "anonymous":
        assert_error(response, 401, "not_authenticated")
    elif role not in allowed:
        assert_error(response, 403, "permission_denied")
    else:
        assert response.status_code < 400, response.content
        return
    assert Event.objects.count() == events_before  # a refused request changes nothing


def test_a_superuser_has_every_role(db, task):
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    user = get_user_model().objects.create_superuser(username="root", password="x")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    attempt = client.post(f"{T}/launch/").json()
    assert (
        client.post(
            f"/api/v1/attempts/{attempt['id']}/phases/", {"phase": "preflight", "outcome": "passed"}
        ).status_code
        == 201
    )
    assert client.post("/api/v1/agents/", {"name": "by-root"}).status_code == 201
