"""Reads of the alert deliveries for the dashboard page: a fixed number of
queries per page (the page and its count; subscriptions joined)."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet

from .models import WebhookDelivery


def deliveries_for_dashboard(*, state: str | None = None) -> QuerySet:
    """Newest first, with their subscription; ``state`` narrows them."""
    deliveries = WebhookDelivery.objects.select_related("subscription", "subscription__project").order_by(
        "-created_at", "-id"
    )
    if state:
        deliveries = deliveries.filter(state=state)
    return deliveries


def max_tries() -> int:
    return int(settings.WEBHOOK_MAX_TRIES)
