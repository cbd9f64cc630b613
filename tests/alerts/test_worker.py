"""End to end through a real Celery worker, on Redis and on RabbitMQ: a
committed block is delivered, signed; a rolled-back one is not; a receiver
that is down gets the same delivery once it is back; the sweep sends what
no retry will."""

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from missioncontrol.alerts import services
from missioncontrol.alerts.models import WebhookDelivery
from missioncontrol.alerts.tasks import sweep
from retries import services as retry_services
from tests.alerts.conftest import SECRET
from tests.alerts.test_delivery import alert, spent_task
from tests.execution.conftest import wait_for
from tests.observe_worker import OBSERVE_WORKER_GROUP

pytestmark = [
    pytest.mark.worker,
    pytest.mark.xdist_group(OBSERVE_WORKER_GROUP),
    pytest.mark.django_db(transaction=True),
]


def subscribe(receiver):
    return services.subscription_create(url=receiver.url, secret=SECRET, events=["task.blocked"], actor="admin")


def test_a_committed_block_is_delivered_and_a_rolled_back_one_is_not(observe_worker, receiver):
    subscribe(receiver)
    kept, lost = spent_task("kept-task"), spent_task("lost-task")

    with pytest.raises(RuntimeError), transaction.atomic():
        retry_services.task_retry_or_block(task_id=lost.id)
        raise RuntimeError("rolled back")
    retry_services.task_retry_or_block(task_id=kept.id)

    [got] = wait_for(receiver.requests, timeout=30, what="the delivery")
    assert got["verified"] and got["body"]["task"] == "kept-task" and got["body"]["event"] == "task.blocked"
    delivery = wait_for(lambda: WebhookDelivery.objects.filter(state="delivered").first(), what="delivered")
    assert str(delivery.id) == got["headers"]["X-MC-Delivery"] == got["body"]["id"]
    observe_worker.wait_idle()
    assert len(receiver.requests()) == 1 and WebhookDelivery.objects.count() == 1


def test_a_receiver_that_is_down_gets_the_same_delivery_once_back(observe_worker, receiver):
    subscribe(receiver)
    task = spent_task()
    receiver.stop()
    retry_services.task_retry_or_block(task_id=task.id)

    retried = wait_for(
        lambda: WebhookDelivery.objects.filter(tries__gte=2).first(), timeout=30, what="two failed tries"
    )
    assert retried.state == "pending" and "ConnectionError" in retried.last_error
    receiver.start()
    delivered = wait_for(
        lambda: WebhookDelivery.objects.filter(state="delivered").first(),
        timeout=30,
        what="the delivery once the receiver is back",
    )
    [got] = receiver.requests()
    assert got["headers"]["X-MC-Delivery"] == str(delivered.id) == str(retried.id) and got["verified"]
    assert delivered.tries >= 3 and delivered.last_status == 204


def test_the_sweep_sends_a_delivery_whose_retry_was_lost(observe_worker, receiver):
    subscribe(receiver)
    [delivery_id] = services.deliveries_create([alert()])
    WebhookDelivery.objects.filter(id=delivery_id).update(next_try_at=timezone.now() - dt.timedelta(minutes=5))
    sweep.delay()
    wait_for(
        lambda: WebhookDelivery.objects.filter(id=delivery_id, state="delivered").exists(),
        timeout=30,
        what="the swept delivery",
    )
    [got] = receiver.requests()
    assert got["body"]["id"] == str(delivery_id)
