"""/api/v1/webhooks/: the admin role subscribes, reads, changes and
deletes; the secret is write-only; a bad URL is a 400 naming ``url``."""

import datetime as dt

import pytest
from django.utils import timezone

from missioncontrol.alerts import services
from missioncontrol.alerts.models import WebhookDelivery, WebhookSubscription
from tests.alerts.conftest import SECRET
from tests.alerts.test_delivery import alert
from tests.api.conftest import assert_error, token_client
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/webhooks/"


@pytest.fixture
def admin():
    return token_client("hook-admin", "admin")


def body(**overrides):
    return {"url": "http://127.0.0.1:9/hook", "secret": SECRET, "events": ["task.blocked"], **overrides}


def test_admin_subscribes_reads_changes_and_deletes(admin, allow_private):
    ProjectFactory(slug="ops")
    created = admin.post(URL, body(project="ops", format="alertmanager"), format="json")
    assert created.status_code == 201, created.content
    data = created.json()
    assert "secret" not in data
    assert data | {"id": None, "created_at": None} == {
        "id": None,
        "url": "http://127.0.0.1:9/hook",
        "events": ["task.blocked"],
        "project": "ops",
        "active": True,
        "format": "alertmanager",
        "created_by": "hook-admin",
        "created_at": None,
    }
    assert WebhookSubscription.objects.get().secret == SECRET

    listed = admin.get(URL).json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == data["id"]
    one = f"{URL}{data['id']}/"
    assert admin.get(one).json() == data

    changed = admin.patch(
        one,
        {
            "events": ["attempt.stalled", "plan.paused"],
            "active": False,
            "project": None,
            "secret": "another-secret-of-16+",
        },
        format="json",
    )
    assert changed.status_code == 200, changed.content
    assert (changed.json()["events"], changed.json()["active"], changed.json()["project"]) == (
        ["attempt.stalled", "plan.paused"],
        False,
        None,
    )
    assert WebhookSubscription.objects.get().secret == "another-secret-of-16+"

    assert admin.delete(one).status_code == 204
    assert_error(admin.get(one), 404, "not_found")
    assert_error(admin.delete(one), 404, "not_found")


@pytest.mark.parametrize(
    "url",
    [
        "http://1.1.1.1/hook",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.0.0.7/hook",
        "https://169.254.169.254/",
        "not a url",
        "",
    ],
)
def test_a_bad_url_is_refused_naming_url(admin, settings, url):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    assert_error(admin.post(URL, body(url=url), format="json"), 400, "invalid", {"url"})
    assert not WebhookSubscription.objects.exists()


def test_a_bad_url_is_refused_on_patch_too(admin, allow_private, settings):
    subscription = services.subscription_create(**body(), actor="a")
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    assert_error(
        admin.patch(f"{URL}{subscription.id}/", {"url": "https://192.168.0.1/"}, format="json"), 400, "invalid", {"url"}
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"secret": "too-short"}, "secret"),
        ({"events": []}, "events"),
        ({"events": ["task.exploded"]}, "events.0"),
        ({"project": "nowhere"}, "project"),
        ({"format": "xml"}, "format"),
        ({"active": "yes"}, "active"),
    ],
)
def test_bad_fields_are_refused(admin, allow_private, change, field):
    assert_error(admin.post(URL, body(**change), format="json"), 400, "invalid", {field})


def test_the_secret_is_required(admin, allow_private):
    data = body()
    del data["secret"]
    assert_error(admin.post(URL, data, format="json"), 400, "invalid", {"secret"})


@pytest.mark.parametrize("role", ["viewer", "operator", "executor", "metrics"])
def test_only_admins(role, allow_private):
    subscription = services.subscription_create(**body(), actor="a")
    client = token_client(f"{role}-hooks", role)
    for response in (
        client.get(URL),
        client.get(f"{URL}{subscription.id}/deliveries/"),
        client.post(URL, body(), format="json"),
        client.delete(f"{URL}{subscription.id}/"),
    ):
        assert_error(response, 403, "permission_denied")


def test_anonymous_is_401(client):
    assert client.get(URL).status_code == 401


def test_deliveries_newest_first_and_paginated(admin, allow_private):
    subscription = services.subscription_create(**body(), actor="a")
    other = services.subscription_create(**body(), actor="a")
    now = timezone.now()
    for n in range(3):
        services.deliveries_create([alert(at=(now + dt.timedelta(seconds=n)).isoformat())])
    WebhookDelivery.objects.filter(subscription=other).delete()
    rows = list(WebhookDelivery.objects.order_by("created_at"))
    for n, row in enumerate(rows):  # distinct creation times
        WebhookDelivery.objects.filter(id=row.id).update(created_at=now + dt.timedelta(seconds=n), tries=n)

    page = admin.get(f"{URL}{subscription.id}/deliveries/", {"page_size": 2}).json()
    assert page["count"] == 3 and page["next"] and len(page["results"]) == 2
    first = page["results"][0]
    assert first["id"] == str(rows[-1].id) and first["tries"] == 2
    assert set(first) == {
        "id",
        "event",
        "state",
        "tries",
        "last_status",
        "last_error",
        "next_try_at",
        "delivered_at",
        "created_at",
        "body",
    }
    assert first["state"] == "pending" and first["next_try_at"] and first["event"] == "task.blocked"
    assert_error(admin.get(f"{URL}00000000-0000-0000-0000-000000000000/deliveries/"), 404, "not_found")


def test_in_the_openapi_schema(admin):
    schema = admin.get("/api/v1/schema/?format=json").json()
    assert {"/api/v1/webhooks/", "/api/v1/webhooks/{id}/", "/api/v1/webhooks/{id}/deliveries/"} <= set(schema["paths"])
    create = schema["components"]["schemas"]["WebhookCreate"]
    assert create["properties"]["secret"]["writeOnly"] is True
    assert "secret" not in schema["components"]["schemas"]["Webhook"]["properties"]
    assert "AlertEventEnum" in schema["components"]["schemas"]
