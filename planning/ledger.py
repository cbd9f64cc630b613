"""Appending to the ledger. Services call this inside their transaction, so a
fact and the row change it explains commit together or not at all."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.utils import timezone

from .models import Event

# Event types whose data carries the resulting ``status`` of the task or
# attempt; verify_integrity re-derives statuses from the last one of these.
TASK_STATUS_EVENTS = ("task.created", "task.status_changed")
ATTEMPT_STATUS_EVENTS = ("attempt.requested", "attempt.imported", "attempt.status_changed")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def ledger_append(
    *,
    type: str,
    actor: str,
    task_id: int | None = None,
    plan_id: uuid.UUID | None = None,
    attempt_id: uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> Event:
    return Event.objects.create(
        type=type,
        actor=actor,
        task_id=task_id,
        plan_id=plan_id,
        attempt_id=attempt_id,
        data=_jsonable(data or {}),
        at=at or timezone.now(),
    )
