"""The ledger listener: committed facts that are alerts go to Celery, which
finds the subscriptions and sends. No query here (it runs in the commit
hook of whatever service committed), O(1) per fact."""

from __future__ import annotations

import logging

from planning.ledger import PendingEvent

from .events import alert_events
from .tasks import dispatch_alerts

log = logging.getLogger(__name__)


def alert_of(fact: PendingEvent, event: str) -> dict:
    """A fact as the Celery task gets it: JSON, ids only."""
    return {
        "event": event,
        "type": fact.type,
        "at": fact.at.isoformat(),
        "actor": fact.actor,
        "task_id": fact.task_id,
        "plan_id": str(fact.plan_id) if fact.plan_id else None,
        "attempt_id": str(fact.attempt_id) if fact.attempt_id else None,
        "data": fact.data,
    }


def enqueue_alerts(facts: list[PendingEvent]) -> None:
    alerts = [alert_of(fact, event) for fact in facts for event in alert_events(fact.type, fact.data)]
    if alerts:
        dispatch_alerts.delay(alerts)
