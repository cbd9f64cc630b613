"""Executor backends behind one small interface (``base.Executor``), and the
three entry points the Celery tasks call: launch, poll and cancel one attempt.

Launch is safe to repeat: ``attempt_mark_launching`` only hands out an
attempt that is current and pending or launching, and every backend uses the
attempt id as its idempotency key, so a redelivered launch message finds the
native run it made the first time instead of making a second one."""

from __future__ import annotations

import logging
import uuid

from retries import services
from retries.models import NativeRun

from .base import Executor, LaunchError, LaunchRequest, native_ids
from .external import ExternalExecutor
from .http import HttpExecutor
from .local import LocalExecutor

log = logging.getLogger(__name__)

__all__ = [
    "Executor",
    "LaunchError",
    "LaunchRequest",
    "attempt_cancel",
    "attempt_launch",
    "attempt_poll",
    "get_executor",
    "native_ids",
]

_BACKENDS: dict[str, Executor] = {b.name: b for b in (ExternalExecutor(), LocalExecutor(), HttpExecutor())}


def get_executor(name: str) -> Executor:
    try:
        return _BACKENDS[name]
    except KeyError:
        raise LaunchError(f"No executor backend named {name!r}; known: {sorted(_BACKENDS)}.") from None


def attempt_launch(*, attempt_id: uuid.UUID) -> str:
    """Launch one attempt. Returns ``launched``, ``skipped`` (no longer
    current, already past launching, or held by a paused plan: reconciliation
    sends it again after the plan resumes) or ``failed`` (the executor
    refused; the attempt is failed with ``launch_failed`` and retried within
    budget)."""
    attempt = services.attempt_mark_launching(attempt_id=attempt_id, actor="launcher", hold_if_plan_paused=True)
    if attempt is None:
        return "skipped"
    request = LaunchRequest.for_attempt(attempt_id)
    if request is None:
        return "skipped"
    try:
        get_executor(request.executor).launch(request)
    except LaunchError as exc:
        log.warning("launch of attempt %s failed: %s", attempt_id, exc)
        services.attempt_fail(
            attempt_id=attempt_id, kind="launch_failed", message=str(exc), phase=request.first_phase, actor="launcher"
        )
        return "failed"
    return "launched"


def attempt_poll(*, attempt_id: uuid.UUID, executor: str) -> bool:
    """Ask a pollable executor about one attempt and feed what it says into
    the same report service as the API. True when a report was applied."""
    backend = get_executor(executor)
    if not backend.pollable:
        return False
    request = LaunchRequest.for_attempt(attempt_id)
    if request is None:
        return False
    state = backend.poll(request)
    if not state:
        return False
    if state.get("status") not in NativeRun.Status.values:
        # Bad input from the gateway changes nothing (rule 8).
        log.warning("poll of attempt %s: unknown status %r ignored", attempt_id, state.get("status"))
        return False
    services.native_run_report(
        report=services.RunReport(
            executor=executor,
            native_task_id=str(state.get("native_task_id") or state["native_run_id"]),
            native_run_id=str(state["native_run_id"]),
            task=request.task,
            status=str(state["status"]),
            attempt_id=attempt_id,
            phase=str(state.get("phase") or ""),
            message=str(state.get("message") or ""),
        ),
        actor=f"executor:{executor}",
    )
    return True


def attempt_cancel(*, attempt_id: uuid.UUID) -> None:
    request = LaunchRequest.for_attempt(attempt_id)
    if request is None:
        return
    get_executor(request.executor).cancel(attempt_id)
