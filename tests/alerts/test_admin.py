"""Admin site: subscriptions are the admin role's, saved through the
services (URL checked, secret never shown back); deliveries read-only."""

import pytest
from django.urls import reverse

from missioncontrol.alerts import services
from missioncontrol.alerts.models import WebhookDelivery, WebhookSubscription
from tests.admin.conftest import make_client
from tests.alerts.conftest import SECRET
from tests.alerts.test_delivery import alert
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db

ADD = reverse("admin:alerts_webhooksubscription_add")


def form(**overrides):
    return {
        "url": "http://127.0.0.1:9/hook",
        "secret": SECRET,
        "events": ["task.blocked", "plan.paused"],
        "project": "",
        "format": "json",
        "active": "on",
        **overrides,
    }


def test_an_admin_subscribes_and_the_secret_is_never_shown_back(allow_private):
    client = make_client("admin-user", "admin")
    project = ProjectFactory(slug="ops")
    response = client.post(ADD, form(project=project.pk))
    assert response.status_code == 302, response.content.decode()[:3000]
    subscription = WebhookSubscription.objects.get()
    assert (subscription.secret, subscription.events, subscription.project, subscription.created_by) == (
        SECRET,
        ["task.blocked", "plan.paused"],
        project,
        "admin-user",
    )

    change = reverse("admin:alerts_webhooksubscription_change", args=[subscription.pk])
    page = client.get(change).content.decode()
    assert SECRET not in page
    # Saved without a secret: the old one stays.
    assert client.post(change, form(project=project.pk, active="")).status_code == 302
    subscription.refresh_from_db()
    assert subscription.secret == SECRET and not subscription.active


@pytest.mark.parametrize(
    ("url", "private"),
    [("http://1.1.1.1/hook", False), ("https://127.0.0.1/hook", False), ("https://10.2.3.4/hook", False)],
)
def test_a_bad_url_is_refused_on_the_form(url, private, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = private
    response = make_client("admin-user", "admin").post(ADD, form(url=url))
    assert response.status_code == 200 and response.context["adminform"].form.errors.keys() == {"url"}
    assert not WebhookSubscription.objects.exists()


def test_a_new_subscription_needs_a_long_enough_secret(allow_private):
    client = make_client("admin-user", "admin")
    assert client.post(ADD, form(secret="")).context["adminform"].form.errors.keys() == {"secret"}
    assert client.post(ADD, form(secret="short")).context["adminform"].form.errors.keys() == {"secret"}


@pytest.mark.parametrize("role", ["viewer", "operator", "executor"])
def test_other_roles_do_not_see_alerts(role, allow_private):
    subscription = services.subscription_create(
        url="http://127.0.0.1:9/h", secret=SECRET, events=["task.blocked"], actor="admin"
    )
    client = make_client(f"staff-{role}", role)
    assert client.get(reverse("admin:alerts_webhooksubscription_changelist")).status_code == 403
    assert client.get(reverse("admin:alerts_webhooksubscription_change", args=[subscription.pk])).status_code == 403
    assert client.get(reverse("admin:alerts_webhookdelivery_changelist")).status_code == 403


def test_deliveries_are_read_only_even_for_admins(allow_private):
    services.subscription_create(url="http://127.0.0.1:9/h", secret=SECRET, events=["task.blocked"], actor="admin")
    [delivery_id] = services.deliveries_create([alert()])
    client = make_client("admin-user", "admin")
    assert client.get(reverse("admin:alerts_webhookdelivery_changelist")).status_code == 200
    change = reverse("admin:alerts_webhookdelivery_change", args=[delivery_id])
    page = client.get(change)
    assert page.status_code == 200 and "task.blocked" in page.content.decode()
    assert client.post(change, {"tries": 99}).status_code == 403
    assert client.get(reverse("admin:alerts_webhookdelivery_add")).status_code == 403
    assert (
        client.post(reverse("admin:alerts_webhookdelivery_delete", args=[delivery_id]), {"post": "yes"}).status_code
        == 403
    )
    assert WebhookDelivery.objects.get().tries == 0
