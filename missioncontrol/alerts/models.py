"""Alert webhook subscriptions and their deliveries."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Count, Q
from django.utils import timezone

from planning.models import Project

from .events import ALERT_EVENTS


class WebhookSubscription(models.Model):
    class Format(models.TextChoices):
        JSON = "json", "JSON"
        ALERTMANAGER = "alertmanager", "Alertmanager"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    url = models.URLField(max_length=2000)
    # Kept as given: an HMAC signature needs the secret itself. Never shown
    # back (write-only in the API, a password field in the admin).
    secret = models.CharField(max_length=200)
    events = models.JSONField(default=list, help_text=f"Any of: {', '.join(ALERT_EVENTS)}.")
    project = models.ForeignKey(
        Project,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Only alerts about this project; empty for every project.",
    )
    active = models.BooleanField(default=True)
    format = models.CharField(max_length=20, choices=Format.choices, default=Format.JSON)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "id"]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One alert for one subscription: tried until delivered (any 2xx) or
    ``WEBHOOK_MAX_TRIES`` tries were made. The id is the delivery id the
    receiver sees in ``X-MC-Delivery`` and the body: the same on every try."""

    class State(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"  # gave up after the last try

    id = models.UUIDField(primary_key=True, editable=False)
    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=64)
    body = models.JSONField()
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    tries = models.PositiveIntegerField(default=0)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # When the next try is due (pending only); null once delivered or given up.
    next_try_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["subscription", "-created_at"], name="webhook_delivery_sub_created"),
            models.Index(fields=["-created_at", "-id"], name="webhook_delivery_created"),
            # The sweep and the metrics read only deliveries not yet delivered.
            models.Index(
                fields=["state", "next_try_at"], condition=~Q(state="delivered"), name="webhook_delivery_undelivered"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.id}"

    @classmethod
    def undelivered_counts(cls) -> dict[str, int]:
        """Deliveries not delivered, per state name used by the metrics:
        ``retrying`` (pending) and ``gave_up`` (failed). One query."""
        rows = cls.objects.filter(~Q(state=cls.State.DELIVERED)).order_by().values_list("state").annotate(n=Count("id"))
        names = {cls.State.PENDING: "retrying", cls.State.FAILED: "gave_up"}
        return {names[state]: n for state, n in rows}
