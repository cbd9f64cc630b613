"""Structured logs through structlog: JSON lines in production, coloured
key=value lines for ``make run`` (``LOG_FORMAT``: ``json`` or ``console``;
the default is ``console`` with ``DEBUG`` and ``json`` without).

Every line carries what its context knows, from structlog's contextvars:
the request id (``X-Request-ID`` when sane, else a fresh one, echoed in
the response), and in a Celery task the id of the request that enqueued it
(sent as a task header). Lines come from three places:

- one per HTTP request (``RequestObservabilityMiddleware``): method, path,
  view, status, duration, user;
- one per committed ledger fact (``log_facts``, a ledger listener): event
  type, actor, task id and slug, attempt id, plan id; every service call
  that changes state appends facts, so every one is logged once it commits;
- every stdlib ``logging`` call (Django, Celery, ours), rendered alike.

This module does not import Django models: settings import it."""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from typing import TYPE_CHECKING, Any

import structlog
from structlog.contextvars import bind_contextvars, clear_contextvars, get_contextvars

if TYPE_CHECKING:
    from planning.ledger import PendingEvent

REQUEST_ID_HEADER = "X-Request-ID"
# The Celery message header that carries the request id into a task.
TASK_HEADER = "mc_request_id"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=+/-]{0,127}")

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure(*, fmt: str, level: str) -> dict:
    """Configure structlog and return Django's ``LOGGING``: one handler on
    stderr whose formatter renders structlog's and the stdlib's records alike."""
    if fmt not in ("json", "console"):
        raise ValueError(f"LOG_FORMAT must be 'json' or 'console', not {fmt!r}")
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: list[Any] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer(default=str)]
        if fmt == "json"
        else [structlog.dev.ConsoleRenderer(colors=False)]
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
                # Records of the stdlib (Django, Celery) keep their message;
                # their ``extra`` (request objects, duplicated data) is left out.
                "foreign_pre_chain": _SHARED,
            }
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
    }


def request_id_from(value: str | None) -> str:
    """The caller's request id when it is a sane token, else a fresh one."""
    if value and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    return get_contextvars().get("request_id")


# --- Task slugs without a query -------------------------------------------------------
# A fact names its task by id. Where a request or a Celery task runs, every
# PlanningTask row it loads (services lock the task row before they write a
# fact about it) leaves its id -> slug here, through post_init, so the fact's
# log line can name the slug without asking the database.

_task_slugs: contextvars.ContextVar[dict[int, str] | None] = contextvars.ContextVar("mc_task_slugs", default=None)
_MAX_SLUGS = 10_000


def remember_task_slug(sender, instance, **kwargs) -> None:
    """``post_init`` receiver for PlanningTask (cheap: two dict reads)."""
    slugs = _task_slugs.get()
    if slugs is None or len(slugs) >= _MAX_SLUGS:
        return
    fields = instance.__dict__
    task_id, slug = fields.get("id"), fields.get("slug")  # deferred fields are simply absent
    if task_id is not None and slug:
        slugs[task_id] = slug


class LogContext:
    """What ``begin_context`` replaced, for ``end_context`` to put back (an
    eager task runs inside the request that called it)."""

    def __init__(self, previous: dict[str, Any], slugs: contextvars.Token) -> None:
        self.previous = previous
        self.slugs = slugs


def begin_context(**bound: Any) -> LogContext:
    """Start a request's or a task's log context; ``end_context`` ends it."""
    previous = get_contextvars()
    clear_contextvars()
    bind_contextvars(**{k: v for k, v in bound.items() if v is not None})
    return LogContext(previous, _task_slugs.set({}))


def end_context(context: LogContext) -> None:
    _task_slugs.reset(context.slugs)
    clear_contextvars()
    bind_contextvars(**context.previous)


# --- One line per committed fact ----------------------------------------------------

fact_log = structlog.get_logger("missioncontrol.ledger")


def log_facts(facts: list[PendingEvent]) -> None:
    """The ledger listener: one line per committed fact, no queries."""
    if not logging.getLogger("missioncontrol.ledger").isEnabledFor(logging.INFO):
        return
    slugs = _task_slugs.get() or {}
    for fact in facts:
        slug = slugs.get(fact.task_id) if fact.task_id is not None else None
        if slug is None and fact.type == "task.created":
            slug = fact.data.get("slug")
        fact_log.info(
            "ledger fact",
            event_type=fact.type,
            actor=fact.actor,
            task=slug,
            task_id=fact.task_id,
            attempt_id=str(fact.attempt_id) if fact.attempt_id else None,
            plan_id=str(fact.plan_id) if fact.plan_id else None,
            status=fact.data.get("status"),
            reason=fact.data.get("reason"),
        )
