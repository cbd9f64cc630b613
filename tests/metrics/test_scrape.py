"""GET /metrics in one process: who may read it, what the database gauges
say, and a scrape's cost, which does not grow with the number of tasks."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from missioncontrol.api.authentication import auth_cache_clear
from missioncontrol.roles import has_role
from planning import services as planning_services
from retries.models import NativeRun
from tests.api.conftest import assert_error, token_client
from tests.factories import ProcedureFactory, ProjectFactory, TaskFactory
from tests.metrics.helpers import parse, value
from tests.steps import fail_current, launch, report

pytestmark = pytest.mark.django_db


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return parse(response.content.decode())


@pytest.mark.parametrize("role", ["viewer", "operator", "executor", None])
def test_other_roles_are_refused_with_403(role):
    client = token_client(f"scraper-{role}", role)
    assert_error(client.get("/metrics"), 403, "permission_denied")


def test_anonymous_and_bad_tokens_are_refused_with_401(client):
    response = client.get("/metrics")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"
    assert_error(client.get("/metrics", HTTP_AUTHORIZATION="Token nope"), 401, "authentication_failed")


@pytest.mark.parametrize("role", ["metrics", "admin"])
def test_metrics_and_admin_tokens_read_it(role):
    scrape(token_client(f"scraper-{role}", role))


def test_create_api_token_makes_a_metrics_token_that_reads_only_metrics(capsys):
    call_command("create_api_token", "prometheus", "--role", "metrics")
    key = capsys.readouterr().out.strip().splitlines()[-1]
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    scrape(client)
    # A scraper's token reads nothing else: no API, no dashboard.
    assert_error(client.get("/api/v1/tasks/"), 403, "permission_denied")
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username="prometheus")
    assert has_role(user, "metrics") and not has_role(user, "viewer")


def test_database_gauges():
    client = token_client("scraper", "metrics")
    project = ProjectFactory()
    procedure = ProcedureFactory()
    draft = TaskFactory(project=project, procedure=procedure)
    pending = TaskFactory(project=project, procedure=procedure)
    failed = TaskFactory(project=project, procedure=procedure)
    launch(pending)
    fail_current(failed)
    planning_services.task_mark_inconsistent(task_id=failed.id, problems=["for the gauge"])
    report(draft, status="running", native_run_id="waiting-run")  # no attempt yet: stays unbound
    NativeRun.objects.filter(native_run_id="waiting-run").update(first_seen_at=timezone.now() - dt.timedelta(minutes=5))

    samples = scrape(client)
    assert value(samples, "mc_tasks", status="draft") == 1
    assert value(samples, "mc_tasks", status="launch_requested") == 1
    assert value(samples, "mc_tasks", status="failed") == 1
    assert value(samples, "mc_tasks", status="blocked") == 0  # every status is listed
    assert value(samples, "mc_tasks_inconsistent") == 1
    assert 300 <= value(samples, "mc_native_run_unbound_oldest_age_seconds") < 400
    assert 0 < value(samples, "mc_launch_pending_oldest_age_seconds") < 60
    assert value(samples, "mc_webhook_deliveries_undelivered", state="retrying") == 0


def _make(n: int, project, procedure) -> None:
    for _ in range(n):
        task = TaskFactory(project=project, procedure=procedure)
        fail_current(task)
        planning_services.task_mark_inconsistent(task_id=task.id, problems=["sized"])
        report(
            task,
            status="running",
            native_run_id=f"unbound-{task.slug}",
            attempt=None,
            created_at=timezone.now() - dt.timedelta(days=1),
        )
        other = TaskFactory(project=project, procedure=procedure)
        launch(other)


def test_a_scrape_costs_the_same_queries_at_two_sizes():
    client = token_client("scraper", "metrics")
    project, procedure = ProjectFactory(), ProcedureFactory()

    def queries() -> int:
        auth_cache_clear()  # both scrapes read the token, as after the cache's TTL
        with CaptureQueriesContext(connection) as captured:
            scrape(client)
        return len(captured)

    _make(2, project, procedure)
    small = queries()
    _make(20, project, procedure)
    large = queries()
    assert small == large, f"{small} queries with 4 tasks, {large} with 44"
    assert large <= 8
