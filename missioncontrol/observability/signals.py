"""Celery signal receivers: the request id travels from the publisher (a
web request, or a task that enqueues another) to the task in a message
header, and a pool process that exits hands its metric files back."""

from __future__ import annotations

import logging.config
import os

from celery import signals
from django.conf import settings
from prometheus_client import multiprocess

from .logs import TASK_HEADER, LogContext, begin_context, current_request_id, end_context

_contexts: dict[str | None, LogContext] = {}


@signals.before_task_publish.connect(weak=False)
def _send_request_id(headers: dict | None = None, **kwargs) -> None:
    request_id = current_request_id()
    if request_id and headers is not None:
        headers.setdefault(TASK_HEADER, request_id)


@signals.task_prerun.connect(weak=False)
def _bind_task_context(task_id: str | None = None, task=None, **kwargs) -> None:
    request = getattr(task, "request", None)
    request_id = (
        getattr(request, TASK_HEADER, None)
        or (getattr(request, "headers", None) or {}).get(TASK_HEADER)
        or current_request_id()  # an eager call, inside its caller's context
    )
    _contexts[task_id] = begin_context(
        request_id=request_id, celery_task=getattr(task, "name", None), celery_task_id=task_id
    )


@signals.task_postrun.connect(weak=False)
def _unbind_task_context(task_id: str | None = None, **kwargs) -> None:
    context = _contexts.pop(task_id, None)
    if context is not None:
        end_context(context)


@signals.setup_logging.connect(weak=False)
def _keep_django_logging(**kwargs) -> None:
    """A receiver here stops Celery from replacing the root logger's
    handlers: the worker logs through Django's LOGGING, like the web."""
    logging.config.dictConfig(settings.LOGGING)


@signals.worker_process_shutdown.connect(weak=False)
def _metrics_process_dead(pid: int | None = None, **kwargs) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid or os.getpid())
