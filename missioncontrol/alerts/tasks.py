"""Celery tasks of the alert webhooks. Each is safe to run twice: deliveries
have stable ids, and a try claims its delivery first."""

from __future__ import annotations

import uuid

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError

from . import services


@shared_task(
    name="missioncontrol.alerts.tasks.dispatch_alerts",
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=5,
)
def dispatch_alerts(alerts: list[dict]) -> int:
    """Make the deliveries for committed alert facts and send each."""
    ids = services.deliveries_create(alerts)
    for delivery_id in ids:
        deliver.delay(str(delivery_id))
    return len(ids)


@shared_task(bind=True, name="missioncontrol.alerts.tasks.deliver", max_retries=None)
def deliver(self, delivery_id: str) -> str:
    """One try; on failure, the next one after the backoff (the service
    bounds the number of tries, not Celery)."""
    outcome = services.delivery_try(uuid.UUID(delivery_id))
    if outcome is None:
        return "not due"
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return "delivered" if outcome.delivered else "gave up"


@shared_task(name="missioncontrol.alerts.tasks.sweep")
def sweep() -> int:
    """Beat's safety net: sends the deliveries whose retry never came (a
    worker died between a failed try and its retry)."""
    ids = services.deliveries_due(grace_seconds=float(getattr(settings, "WEBHOOK_SWEEP_GRACE_SECONDS", 30)))
    for delivery_id in ids:
        deliver.delay(str(delivery_id))
    return len(ids)
