"""One delivery against a real HTTP receiver on loopback: signed, retried
with backoff while the receiver is down, delivered once with the same id
when it is back, given up after the last try; nothing for a rollback."""

import datetime as dt
import time
import uuid

import pytest
from django.db import transaction
from django.utils import timezone

from missioncontrol.alerts import services
from missioncontrol.alerts.models import WebhookDelivery
from retries import services as retry_services
from tests.alerts.conftest import SECRET
from tests.factories import ProcedureFactory, ProjectFactory, TaskFactory
from tests.steps import current, fail_current, report

pytestmark = pytest.mark.django_db


def subscribe(receiver, **kwargs):
    return services.subscription_create(
        url=receiver.url, secret=SECRET, events=kwargs.pop("events", ["task.blocked"]), actor="admin", **kwargs
    )


def spent_task(slug="spent-task"):
    """A failed task whose budget of one attempt is spent: the next
    reconcile step blocks it."""
    task = TaskFactory(
        slug=slug, project=ProjectFactory(slug=f"{slug}-project"), procedure=ProcedureFactory(max_attempts=1)
    )
    fail_current(task)
    return task


def alert(**overrides):
    return {
        "event": "task.blocked",
        "type": "task.status_changed",
        "at": timezone.now().isoformat(),
        "actor": "system",
        "task_id": None,
        "plan_id": None,
        "attempt_id": None,
        "data": {"status": "blocked", "reason": "budget_exhausted"},
        **overrides,
    }


def test_a_committed_block_is_delivered_signed(allow_private, receiver, eager, django_capture_on_commit_callbacks):
    subscription = subscribe(receiver)
    task = spent_task()
    with django_capture_on_commit_callbacks(execute=True):
        retry_services.task_retry_or_block(task_id=task.id)

    [got] = receiver.requests()
    assert got["verified"], got
    body, headers = got["body"], got["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["X-MC-Delivery"] == body["id"]
    assert got["path"] == "/hooks/mc?src=test"
    assert set(body) == {"id", "event", "at", "task", "attempt", "project", "data"}
    assert (body["event"], body["task"], body["project"]) == ("task.blocked", "spent-task", "spent-task-project")
    assert body["attempt"] is None  # the fact is about the task
    assert body["data"]["reason"] == "budget_exhausted" and body["data"]["type"] == "task.status_changed"
    delivery = WebhookDelivery.objects.get(id=body["id"])
    assert delivery.subscription == subscription
    assert (delivery.state, delivery.tries, delivery.last_status, delivery.last_error) == ("delivered", 1, 204, "")
    assert delivery.next_try_at is None and delivery.delivered_at is not None


def test_alertmanager_format_is_signed_too(allow_private, receiver, eager, django_capture_on_commit_callbacks):
    subscribe(receiver, format="alertmanager", events=["attempt.stalled", "task.blocked"])
    task = spent_task()
    with django_capture_on_commit_callbacks(execute=True):
        retry_services.task_retry_or_block(task_id=task.id)
    [got] = receiver.requests()
    assert got["verified"]
    payload = got["body"]
    assert (payload["version"], payload["status"]) == ("4", "firing")
    [firing] = payload["alerts"]
    assert firing["labels"] == {
        "alertname": "task.blocked",
        "severity": "critical",
        "task": "spent-task",
        "project": "spent-task-project",
    }
    assert firing["annotations"]["delivery_id"] == got["headers"]["X-MC-Delivery"]
    assert "budget_exhausted" in firing["annotations"]["summary"]
    assert firing["startsAt"]


def test_a_stalled_attempt_names_its_attempt(allow_private, receiver, eager, django_capture_on_commit_callbacks):
    subscribe(receiver, events=["attempt.stalled"])
    task = TaskFactory(procedure=ProcedureFactory(stall_timeout_seconds=1))
    retry_services.task_launch(slug=task.slug, actor="operator")
    attempt = current(task)
    report(task, status="running", native_run_id="quiet-run", attempt=attempt)
    later = timezone.now() + dt.timedelta(seconds=5)
    with django_capture_on_commit_callbacks(execute=True):
        assert retry_services.attempt_fail_if_stalled(attempt_id=attempt.id, now=later)
    [got] = receiver.requests()
    assert (got["body"]["event"], got["body"]["attempt"], got["body"]["task"]) == (
        "attempt.stalled",
        str(attempt.id),
        task.slug,
    )


def test_nothing_is_sent_for_a_transaction_that_rolled_back(
    allow_private, receiver, eager, django_capture_on_commit_callbacks
):
    subscribe(receiver)
    task = spent_task()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        retry_services.task_retry_or_block(task_id=task.id)
        raise RuntimeError("rolled back")
    assert receiver.requests() == [] and not WebhookDelivery.objects.exists()


def test_receiver_down_is_retried_with_backoff_then_delivered_once_with_the_same_id(allow_private, receiver):
    subscribe(receiver)
    [delivery_id] = services.deliveries_create([alert()])
    receiver.stop()

    first = services.delivery_try(delivery_id)
    assert not first.delivered and first.retry_in == pytest.approx(0.2) and "ConnectionError" in first.error
    assert services.delivery_try(delivery_id) is None  # not due before the backoff
    time.sleep(0.25)
    second = services.delivery_try(delivery_id)
    assert not second.delivered and second.retry_in == pytest.approx(0.4)
    row = WebhookDelivery.objects.get(id=delivery_id)
    assert (row.state, row.tries, row.last_status) == ("pending", 2, None) and row.last_error
    assert row.next_try_at > timezone.now()

    receiver.start()
    time.sleep(0.45)
    third = services.delivery_try(delivery_id)
    assert third.delivered and third.status == 204
    [got] = receiver.requests()
    assert got["headers"]["X-MC-Delivery"] == got["body"]["id"] == str(delivery_id) and got["verified"]
    row.refresh_from_db()
    assert (row.state, row.tries, row.last_status, row.last_error, row.next_try_at) == ("delivered", 3, 204, "", None)
    assert services.delivery_try(delivery_id) is None  # delivered: never sent again


def test_tries_are_bounded_and_redirects_not_followed(allow_private, receiver, settings):
    settings.WEBHOOK_MAX_TRIES = 2
    settings.WEBHOOK_BACKOFF_SECONDS = 0.05
    subscribe(receiver)
    [delivery_id] = services.deliveries_create([alert()])
    receiver.status = 302
    first = services.delivery_try(delivery_id)
    assert not first.delivered and "not followed" in first.error
    time.sleep(0.1)
    receiver.status = 500
    last = services.delivery_try(delivery_id)
    assert not last.delivered and last.retry_in is None
    row = WebhookDelivery.objects.get(id=delivery_id)
    assert (row.state, row.tries, row.last_status, row.next_try_at) == ("failed", 2, 500, None)
    assert services.delivery_try(delivery_id) is None
    assert len(receiver.requests()) == 2


def test_a_dispatch_run_twice_makes_each_delivery_once(allow_private, receiver):
    subscribe(receiver)
    same = alert()
    assert services.deliveries_create([same]) == services.deliveries_create([same])
    assert WebhookDelivery.objects.count() == 1


def test_subscriptions_filter_by_event_project_and_active(allow_private, receiver):
    task = TaskFactory(project=ProjectFactory(slug="mine"))
    other = ProjectFactory(slug="theirs")
    subscribe(receiver, project="mine")
    subscribe(receiver, project="theirs")
    subscribe(receiver, events=["plan.paused"])
    subscribe(receiver, active=False)
    ids = services.deliveries_create([alert(task_id=task.id)])
    assert len(ids) == 1
    assert WebhookDelivery.objects.get().subscription.project.slug == "mine"
    assert other  # the other project's subscription got nothing


def test_the_address_is_checked_again_at_send_time(allow_private, receiver, settings):
    subscribe(receiver)
    [delivery_id] = services.deliveries_create([alert()])
    settings.WEBHOOKS_ALLOW_PRIVATE = False  # as if the name now resolved to a private address
    outcome = services.delivery_try(delivery_id)
    assert not outcome.delivered and "https" in outcome.error
    assert receiver.requests() == []


def test_the_signature_covers_timestamp_and_body():
    header = services.sign("k" * 16, b'{"a":1}', 1700000000)
    assert header == "t=1700000000,v1=" + __import__("hmac").new(b"k" * 16, b'1700000000.{"a":1}', "sha256").hexdigest()
    assert uuid.UUID(str(services.delivery_id(uuid.uuid4(), alert())))


def test_the_readme_snippet_verifies_a_signature():
    import pathlib
    import re

    readme = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
    snippet = re.search(r"Verify a delivery before trusting it:\n\n```python\n(.*?)```", readme, re.DOTALL).group(1)
    assert len(snippet.strip().splitlines()) <= 5
    namespace: dict = {}
    exec(snippet, namespace)
    body = b'{"id":"x"}'
    header = services.sign(SECRET, body, int(time.time()))
    assert namespace["verify"](SECRET.encode(), header, body)
    assert not namespace["verify"](SECRET.encode(), header, body + b" ")
    assert not namespace["verify"](b"another-secret-0123456789", header, body)
