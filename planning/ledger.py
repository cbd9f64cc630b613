"""Appending to the ledger. Services call this inside their transaction, so a
fact and the row change it explains commit together or not at all.

Ledger listeners (``ledger_listener``) see the facts once they are
committed: metrics, log lines and alert webhooks all come from here, so they
count each committed fact exactly once and nothing of a transaction that
rolled back."""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from django.db import transaction
from django.utils import timezone

from missioncontrol.db import Writes, insert_columns

from .models import Event

# Event types whose data carries the resulting ``status`` of the task or
# attempt; verify_integrity re-derives statuses from the last one of these.
TASK_STATUS_EVENTS = ("task.created", "task.status_changed")
ATTEMPT_STATUS_EVENTS = ("attempt.requested", "attempt.imported", "attempt.status_changed")


# JSON's own scalars, kept as they are without a call per value (a report
# appends several facts of a handful of values each).
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v if type(v) in _SCALARS else _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [v if type(v) in _SCALARS else _jsonable(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


class PendingEvent(NamedTuple):
    """An event appended inside ``ledger_batch``, written when the block ends:
    a plain tuple, since a model instance per fact cost more than its row."""

    at: dt.datetime
    type: str
    actor: str
    task_id: int | None
    plan_id: uuid.UUID | None
    attempt_id: uuid.UUID | None
    data: dict[str, Any]


def ledger_append(
    *,
    type: str,
    actor: str,
    task_id: int | None = None,
    plan_id: uuid.UUID | None = None,
    attempt_id: uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> Event | PendingEvent:
    """Append one fact. Inside ``ledger_batch`` it is written with the
    others when the block ends (and returned as a ``PendingEvent``)."""
    fact = PendingEvent(at or timezone.now(), type, actor, task_id, plan_id, attempt_id, _jsonable(data or {}))
    pending = _batch.get()
    if pending is not None:
        pending.append(fact)
        return fact
    event = Event(**fact._asdict())
    event.save(force_insert=True)
    _after_commit([fact])
    return event


_batch: contextvars.ContextVar[list[PendingEvent] | None] = contextvars.ContextVar("ledger_batch", default=None)


@contextmanager
def ledger_batch() -> Iterator[list[PendingEvent]]:
    """Collect the events appended inside the block and write them with one
    INSERT when it ends: one round trip instead of one per fact. PostgreSQL
    numbers the rows of one INSERT in list order, so ids keep the order of the
    appends (integrity reads the last status event by id). Inside a block the
    ledger does not yet show these events: read nothing from it there. A
    nested block joins the outer one; on an exception nothing is written."""
    outer = _batch.get()
    if outer is not None:
        yield outer
        return
    pending: list[PendingEvent] = []
    token = _batch.set(pending)
    try:
        yield pending
    finally:
        _batch.reset(token)
    if pending:
        _insert_events(pending)


def ledger_batch_into(writes: Writes) -> None:
    """Hand the facts appended so far in this ``ledger_batch`` to the
    caller's ``writes``, so they go in with its rows in one statement (after
    them, in append order); the block then writes only what is appended
    later. Outside a block, nothing is pending."""
    pending = _batch.get()
    if not pending:
        return
    facts = list(pending)
    pending.clear()
    writes.insert_columns(Event, _columns(facts))
    _after_commit(facts)


def _columns(events: list[PendingEvent]) -> dict[str, list]:
    return {name: list(values) for name, values in zip(PendingEvent._fields, zip(*events, strict=True), strict=True)}


def _insert_events(events: list[PendingEvent]) -> None:
    """One INSERT of column arrays. ``bulk_create`` does the same on
    PostgreSQL but spends more Python per row than the database spends on it
    (a batch of 100 reports appends about 250 events); the rows' ids are not
    read back because nothing reads an event appended in the same block.
    PostgreSQL numbers the rows in array order, so ids keep append order."""
    insert_columns(Event, _columns(events))
    _after_commit(events)


# --- Listeners: who hears of committed facts ---------------------------------------

LedgerListener = Callable[[list[PendingEvent]], None]
_listeners: list[LedgerListener] = []
log = logging.getLogger(__name__)


def ledger_listener(listener: LedgerListener) -> LedgerListener:
    """Register ``listener`` (usable as a decorator): after a transaction
    commits, it is called with the facts each ledger write of that
    transaction appended (one ``ledger_append``, or one ``ledger_batch``),
    in order. Nothing is called for a write whose transaction (or savepoint)
    rolled back. A listener runs in the committing thread, after the commit:
    it must be cheap, O(1) per fact and without queries (hand real work to
    Celery), and whatever it raises is logged and goes no further.
    Registering the same function twice keeps one."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def ledger_listener_remove(listener: LedgerListener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def _after_commit(facts: list[PendingEvent]) -> None:
    if _listeners:
        # One closure per write, not per fact; Django drops it with the
        # savepoint or transaction it was registered in, if that rolls back.
        transaction.on_commit(lambda: _notify(facts))


def _notify(facts: list[PendingEvent]) -> None:
    for listener in tuple(_listeners):
        try:
            listener(facts)
        except Exception:  # a listener never breaks the write that committed
            log.exception("ledger listener %r failed on %d facts", listener, len(facts))
