"""The dashboard's alert deliveries page: the admin role's, every delivery
with its status, filtered by state, in a fixed number of queries."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from missioncontrol.alerts import services
from missioncontrol.alerts.models import WebhookDelivery
from tests.factories import TaskFactory
from tests.web.conftest import client_for, hx

pytestmark = pytest.mark.django_db

SECRET = "s3cret-for-tests-only-0123456789"


@pytest.fixture
def admin_client(db):
    return client_for("ada", "admin")


def make_deliveries(n: int) -> list[WebhookDelivery]:
    task = TaskFactory()
    services.subscription_create(url="https://1.1.1.1/hook", secret=SECRET, events=["task.blocked"], actor="ada")
    alerts = [
        {
            "event": "task.blocked",
            "type": "task.status_changed",
            "at": (timezone.now() + dt.timedelta(microseconds=i)).isoformat(),
            "actor": "system",
            "task_id": task.id,
            "plan_id": None,
            "attempt_id": None,
            "data": {"reason": "budget_exhausted"},
        }
        for i in range(n)
    ]
    ids = services.deliveries_create(alerts)
    return list(WebhookDelivery.objects.filter(id__in=ids))


def test_lists_deliveries_with_their_status(admin_client):
    first, second, third = make_deliveries(3)
    WebhookDelivery.objects.filter(id=first.id).update(
        state="delivered", tries=1, last_status=204, next_try_at=None, delivered_at=timezone.now()
    )
    WebhookDelivery.objects.filter(id=second.id).update(
        state="failed", tries=8, last_status=500, last_error="Answered 500.", next_try_at=None
    )
    WebhookDelivery.objects.filter(id=third.id).update(tries=2, last_error="ConnectionError: refused")

    page = admin_client.get("/deliveries/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('class="delivery-') == 3
    for text in (
        "s-delivered",
        "s-failed",
        "s-pending",
        "Answered 500.",
        "ConnectionError: refused",
        "8 of 8",
        "gave up",
        "task.blocked",
        first.body["task"],
        'aria-current="page">Alert deliveries',
    ):
        assert text in html, text

    only_failed = admin_client.get("/deliveries/", {"state": "failed"}).content.decode()
    assert only_failed.count('class="delivery-') == 1 and "Answered 500." in only_failed

    fragment = admin_client.get("/deliveries/", {"state": "pending"}, **hx("deliveries-live"))
    body = fragment.content.decode()
    assert body.lstrip().startswith('<div id="deliveries-live">') and body.count('class="delivery-') == 1


def test_a_bad_filter_is_ignored_and_said(admin_client):
    make_deliveries(1)
    html = admin_client.get("/deliveries/", {"state": "exploded"}).content.decode()
    assert "Ignored" in html and html.count('class="delivery-') == 1


@pytest.mark.parametrize("role", ["viewer", "operator", "executor"])
def test_other_roles_are_refused_and_see_no_link(role):
    client = client_for(f"{role}-user", role)
    assert client.get("/deliveries/").status_code == 403
    assert "/deliveries/" not in client.get("/").content.decode()


def test_anonymous_is_sent_to_login(client):
    response = client.get("/deliveries/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_queries_do_not_grow_with_the_rows(admin_client):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get("/deliveries/").status_code == 200
        return len(captured)

    make_deliveries(2)
    small = queries()
    make_deliveries(30)
    assert queries() == small
