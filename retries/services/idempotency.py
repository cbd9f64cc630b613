"""Rule 4 for requests: a launch, rerun or repair with an ``Idempotency-Key``
already used for a task returns the first result and creates nothing.
The key record ties the key to the attempt it created; the stored response
itself is the API's (``missioncontrol.api.idempotency``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from django.conf import settings
from django.utils import timezone

from missioncontrol.errors import ServiceError
from planning.models import PlanningTask

from ..models import Attempt, IdempotencyKey
from .base import AttemptResult


def fingerprint(action: str, payload: dict[str, Any]) -> str:
    raw = json.dumps({"action": action, **payload}, sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def lookup(
    tasks: list[PlanningTask], slugs: list[str], key: str | None, print_: str, now: dt.datetime
) -> list[AttemptResult] | None:
    """A repeat of a keyed request: every task holds a record of this key
    with this fingerprint (the first request wrote them all in one
    transaction, and the task locks held now make a concurrent first request
    finish before this reads). Expired records are dropped and the request
    runs as new. The first response, when the API stored one, is on the
    record of the lowest task id."""
    if not key:
        return None
    ids = [t.id for t in tasks]
    cutoff = now - dt.timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    IdempotencyKey.objects.filter(task_id__in=ids, key=key, created_at__lt=cutoff).delete()
    records = {r.task_id: r for r in IdempotencyKey.objects.select_related("attempt").filter(task_id__in=ids, key=key)}
    if not records:
        return None
    if len(records) != len(tasks) or any(r.fingerprint != print_ for r in records.values()):
        raise ServiceError(
            "idempotency_key_reused",
            "This Idempotency-Key was already used for "
            + ("this task" if len(tasks) == 1 else "some of these tasks")
            + " with a different request.",
        )
    by_slug = {t.slug: t.id for t in tasks}
    lead = records[min(records)]
    return [
        AttemptResult(
            attempt=_recorded_attempt(records[by_slug[s]]),
            created=False,
            replayed=True,
            idempotency=records[by_slug[s]],
            stored_status=lead.response_status,
            stored_body=lead.response_body,
        )
        for s in slugs
    ]


def _recorded_attempt(key: IdempotencyKey) -> Attempt:
    # record() names each key's attempt, and attempts are never deleted, so
    # the column's ON DELETE SET NULL never leaves a key without one.
    assert key.attempt is not None
    return key.attempt


def record(
    tasks: list[PlanningTask], key: str | None, print_: str, attempts: dict[int, Attempt], now: dt.datetime
) -> dict[int, IdempotencyKey]:
    if not key:
        return {}
    made = IdempotencyKey.objects.bulk_create(
        [IdempotencyKey(task=t, key=key, fingerprint=print_, attempt=attempts[t.id], created_at=now) for t in tasks]
    )
    return {r.task_id: r for r in made}


def idempotency_keys_expire(*, now: dt.datetime | None = None) -> int:
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
