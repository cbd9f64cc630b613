"""Executor tokens report only as the executors granted to them, never as
the built-in ``local``; refusals are 403 ``executor_not_allowed`` and change
nothing. The token's user, roles and grants are read in one statement."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from missioncontrol.api.models import ExecutorGrant
from missioncontrol.api.services import api_token_create
from planning.models import Event
from retries.models import NativeRun, PhaseOutcome
from tests.api.conftest import assert_error
from tests.factories import ProcedureFactory, TaskFactory
from tests.steps import launch

pytestmark = pytest.mark.django_db


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def report(task, run_id, executor="ext", status="running"):
    return {
        "executor": executor,
        "native_task_id": f"nt-{run_id}",
        "native_run_id": run_id,
        "task": task.slug,
        "status": status,
    }


def state() -> tuple:
    return (
        NativeRun.objects.count(),
        Event.objects.count(),
        PhaseOutcome.objects.count(),
        list(NativeRun.objects.order_by("id").values_list("status", "last_seen_at")),
    )


@pytest.fixture
def ext_client():
    return client_with(api_token_create(username="ext-bot", role="executor", executors=("ext",)).key)


def test_a_token_reports_as_its_executor_and_the_run_names_its_user(ext_client, task):
    launch(task)
    created = ext_client.post("/api/v1/native-runs/", report(task, "r1"), format="json")
    assert created.status_code == 201, created.content
    assert created.json()["reported_by"] == "ext-bot"
    assert NativeRun.objects.get(native_run_id="r1").reported_by == "ext-bot"


@pytest.mark.parametrize(
    ("executor", "reason"),
    [("cloud", "may report only as ext; not as 'cloud'"), ("local", "built-in 'local'")],
)
def test_another_executor_or_local_is_refused_and_changes_nothing(ext_client, task, executor, reason):
    launch(task)
    ext_client.post("/api/v1/native-runs/", report(task, "r1"), format="json")
    before = state()

    single = ext_client.post("/api/v1/native-runs/", report(task, "r2", executor=executor), format="json")
    body = assert_error(single, 403, "executor_not_allowed", {"executor"})
    assert reason in body["detail"]

    batch = ext_client.post(
        "/api/v1/native-runs/batch/",
        {"reports": [report(task, "r1", status="succeeded"), report(task, "r3", executor=executor)]},
        format="json",
    )
    body = assert_error(batch, 403, "executor_not_allowed")
    # Keyed by index like the batch's 400: the first report was allowed.
    assert set(body["errors"]) == {"1"}
    assert "none was applied" in body["detail"] and reason in body["errors"]["1"]["executor"][0]
    assert state() == before


def test_local_is_refused_even_for_a_superuser(task):
    launch(task)
    admin = get_user_model().objects.create_superuser("root", password="x")
    client = APIClient()
    client.force_authenticate(admin)
    before = state()
    assert_error(
        client.post("/api/v1/native-runs/", report(task, "r1", executor="local"), format="json"),
        403,
        "executor_not_allowed",
    )
    assert state() == before


def test_an_executor_token_without_grants_reports_for_nobody_but_reads(task):
    client = client_with(api_token_create(username="bare", role="executor").key)
    assert client.get("/api/v1/tasks/").status_code == 200
    body = assert_error(
        client.post("/api/v1/native-runs/", report(task, "r1"), format="json"), 403, "executor_not_allowed"
    )
    assert "--executor" in body["detail"]
    assert not NativeRun.objects.exists()


def test_phase_outcomes_only_for_attempts_of_a_granted_executor(task):
    attempt = launch(task)  # the fixture's procedure runs on "external"
    phase = {"phase": "preflight", "outcome": "passed"}
    wrong = client_with(api_token_create(username="ext-only", role="executor", executors=("ext",)).key)
    before = state()
    assert_error(
        wrong.post(f"/api/v1/attempts/{attempt.id}/phases/", phase, format="json"), 403, "executor_not_allowed"
    )
    assert state() == before

    right = client_with(api_token_create(username="ext-ernal", role="executor", executors=("external",)).key)
    assert right.post(f"/api/v1/attempts/{attempt.id}/phases/", phase, format="json").status_code == 201


def test_phase_outcomes_of_a_local_attempt_are_refused_to_every_token():
    procedure = ProcedureFactory(executor="local", phases=["only"])
    attempt = launch(TaskFactory(procedure=procedure))
    client = client_with(api_token_create(username="all", role="executor", executors=("external", "http")).key)
    assert_error(
        client.post(f"/api/v1/attempts/{attempt.id}/phases/", {"phase": "only", "outcome": "passed"}, format="json"),
        403,
        "executor_not_allowed",
    )
    assert not PhaseOutcome.objects.exists()


def test_create_api_token_grants_repeatable_executors_and_refuses_bad_ones():
    out = io.StringIO()
    call_command("create_api_token", "gw", "--role", "executor", "--executor", "ext", "--executor", "cloud", stdout=out)
    assert "It reports as: cloud, ext." in out.getvalue()
    call_command("create_api_token", "gw", "--role", "executor", "--executor", "ext", stdout=io.StringIO())
    assert sorted(ExecutorGrant.objects.values_list("executor", flat=True)) == ["cloud", "ext"]

    for args in (
        ("viewer-x", "--role", "viewer", "--executor", "ext"),
        ("loc", "--role", "executor", "--executor", "local"),
        ("blank", "--role", "executor", "--executor", ""),
    ):
        with pytest.raises(CommandError):
            call_command("create_api_token", *args, stdout=io.StringIO())
    assert not get_user_model().objects.filter(username__in=["viewer-x", "loc", "blank"]).exists()


def test_one_statement_reads_the_token_user_roles_and_grants(ext_client, task):
    launch(task)
    with CaptureQueriesContext(connection) as first:
        assert ext_client.get("/api/v1/tasks/").status_code == 200
    auth = [q["sql"] for q in first.captured_queries if "authtoken_token" in q["sql"]]
    assert len(auth) == 1
    assert not [q for q in first.captured_queries if "auth_group" in q["sql"] and q["sql"] not in auth]
    with CaptureQueriesContext(connection) as again:
        ext_client.get("/api/v1/tasks/")
    # Cached for API_AUTH_CACHE_SECONDS in this process.
    assert not [q for q in again.captured_queries if "authtoken_token" in q["sql"]]


def test_changes_in_this_process_apply_at_once(ext_client, task):
    launch(task)
    assert ext_client.post("/api/v1/native-runs/", report(task, "r1"), format="json").status_code == 201
    user = get_user_model().objects.get(username="ext-bot")

    ExecutorGrant.objects.filter(user=user).delete()
    assert_error(
        ext_client.post("/api/v1/native-runs/", report(task, "r1"), format="json"), 403, "executor_not_allowed"
    )
    ExecutorGrant.objects.create(user=user, executor="ext")
    user.groups.remove(Group.objects.get(name="executor"))
    assert_error(ext_client.post("/api/v1/native-runs/", report(task, "r1"), format="json"), 403, "permission_denied")
    user.is_active = False
    user.save()
    assert_error(ext_client.get("/api/v1/tasks/"), 401, "authentication_failed")


def test_the_native_runs_page_shows_who_reported_each_run(ext_client, task, admin_client):
    launch(task)
    ext_client.post("/api/v1/native-runs/", report(task, "r1"), format="json")
    html = admin_client.get(reverse("native_runs")).content.decode()
    assert '<td class="nowrap" data-role="reported-by"><span class="mono">ext-bot</span></td>' in html
