"""The ``local`` executor: runs a procedure's phases as Celery tasks in this
project's own workers, so the whole system works on one machine.

It reports exactly like an outside executor would, through the services
behind the API: the native run (ids derived from the attempt id, the attempt
id stamped on it) through ``native_run_report``, phase outcomes through
``attempt_record_phase``. Each phase is its own Celery task, so a worker
lost mid-phase costs that phase only.

What a phase does is set by the task's ``params`` (demos and tests):

``phase_seconds``       number, or ``{phase: number}``: how long a phase works
``fail_phase``          the phase that fails
``fail_on_attempts``    attempt numbers on which it fails (default: every one)
``fail_message``        the failure's message
``stall_phase``         the phase that goes silent (no outcome, no heartbeat)
``stall_on_attempts``   attempt numbers on which it stalls (default: every one)
``launch_delay_seconds`` a pause between creating the native run and starting
                        the first phase (to observe a launch in flight)
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from missioncontrol.errors import ServiceError
from retries import services
from retries.models import Attempt, NativeRun, PhaseOutcome

from .base import Executor, LaunchError, LaunchRequest, native_ids

log = logging.getLogger(__name__)

NAME = "local"
ACTOR = "executor:local"

# The two demo procedures this executor ships. Their phases' behaviour comes
# from each task's params; these are only the defaults.
DEMO_PROCEDURES: dict[str, dict[str, Any]] = {
    "aemeath": {
        "name": "Aemeath",
        "phases": ["preflight", "execute", "finalize"],
        "max_attempts": 3,
        "stall_timeout_seconds": 15,
        "phase_seconds": {"preflight": 2, "execute": 5, "finalize": 2},
    },
    "shorekeeper": {
        "name": "Shorekeeper",
        "phases": ["preflight", "execute", "finalize"],
        "max_attempts": 3,
        "stall_timeout_seconds": 15,
        "phase_seconds": {"preflight": 1, "execute": 4, "finalize": 2},
    },
}
DEFAULT_PHASE_SECONDS = 1.0


@dataclass(frozen=True)
class PhasePlan:
    seconds: float
    fail: bool
    fail_message: str
    stall: bool


def _attempt_numbers(value: Any, field: str) -> set[int] | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise LaunchError(f"params.{field} must be a positive attempt number or a list of them.")
    return set(value)


def _seconds(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise LaunchError(f"params.{field} must be a non-negative number of seconds.")
    return float(value)


def check_params(request: LaunchRequest) -> None:
    """Fail closed at launch on params the phases could not follow."""
    for phase in request.phases:
        phase_plan(request, phase)
    for field in ("fail_phase", "stall_phase"):
        value = request.params.get(field)
        if value is not None and value not in request.phases:
            raise LaunchError(f"params.{field} {value!r} is not a phase of {request.procedure} {list(request.phases)}.")
    _seconds(request.params.get("launch_delay_seconds", 0), "launch_delay_seconds")


def phase_plan(request: LaunchRequest, phase: str) -> PhasePlan:
    params = request.params
    defaults = DEMO_PROCEDURES.get(request.procedure, {}).get("phase_seconds", {})
    raw = params.get("phase_seconds", defaults)
    if isinstance(raw, dict):
        seconds = _seconds(raw.get(phase, defaults.get(phase, DEFAULT_PHASE_SECONDS)), f"phase_seconds.{phase}")
    else:
        seconds = _seconds(raw, "phase_seconds")
    fail_on = _attempt_numbers(params.get("fail_on_attempts"), "fail_on_attempts")
    stall_on = _attempt_numbers(params.get("stall_on_attempts"), "stall_on_attempts")
    fail = params.get("fail_phase") == phase and (fail_on is None or request.attempt_number in fail_on)
    stall = params.get("stall_phase") == phase and (stall_on is None or request.attempt_number in stall_on)
    message = params.get("fail_message") or f"{request.procedure} failed in {phase} (attempt #{request.attempt_number})."
    return PhasePlan(seconds=seconds, fail=fail, fail_message=str(message), stall=stall)


def _report(request: LaunchRequest, status: str, *, phase: str = "", message: str = "") -> NativeRun:
    native_task_id, native_run_id = native_ids(NAME, request.attempt_id)
    run, _ = services.native_run_report(
        report=services.RunReport(
            executor=NAME,
            native_task_id=native_task_id,
            native_run_id=native_run_id,
            task=request.task,
            status=status,
            attempt_id=request.attempt_id,
            created_at=timezone.now(),
            phase=phase,
            message=message,
        ),
        actor=ACTOR,
    )
    return run


def _still_running(attempt_id: uuid.UUID) -> bool:
    """The attempt is still the task's current one and not finished: a
    superseded, cancelled or stalled-out attempt gets no more work."""
    return Attempt.objects.filter(
        id=attempt_id, superseded_at__isnull=True, status__in=(Attempt.Status.LAUNCHING, Attempt.Status.RUNNING)
    ).exists()


class LocalExecutor(Executor):
    name = NAME

    def launch(self, request: LaunchRequest) -> tuple[str, str]:
        check_params(request)
        run = _report(request, NativeRun.Status.QUEUED, phase=request.first_phase)
        delay = float(request.params.get("launch_delay_seconds", 0) or 0)
        if delay:
            time.sleep(delay)
        from retries.tasks import run_phase

        run_phase.delay(str(request.attempt_id), request.first_phase)
        return run.native_task_id, run.native_run_id

    def cancel(self, attempt_id: uuid.UUID) -> None:
        _, native_run_id = native_ids(NAME, attempt_id)
        run = NativeRun.objects.filter(executor=NAME, native_run_id=native_run_id).first()
        if run is None or run.status in NativeRun.TERMINAL:
            return
        services.native_run_report(
            report=services.RunReport(
                executor=NAME,
                native_task_id=run.native_task_id,
                native_run_id=native_run_id,
                task=run.task_slug or None,
                status=NativeRun.Status.CANCELLED,
                attempt_id=run.claimed_attempt_id,
                message="Stopped: the attempt is no longer active.",
            ),
            actor=ACTOR,
        )


def run_phase(*, attempt_id: uuid.UUID, phase: str) -> str:
    """One phase of a local attempt; enqueues the next one when it passes.
    Returns what happened, for logs and tests."""
    request = LaunchRequest.for_attempt(attempt_id)
    if request is None or phase not in request.phases or not _still_running(attempt_id):
        return "skipped"
    plan = phase_plan(request, phase)
    _report(request, NativeRun.Status.RUNNING, phase=phase, message=f"{phase} started")
    if plan.stall:
        # Go silent: no outcome, no heartbeat. Reconciliation notices the
        # missing heartbeat after the procedure's stall timeout.
        log.info("local executor: attempt %s stalls in %s", attempt_id, phase)
        return "stalled"
    beat = float(getattr(settings, "LOCAL_EXECUTOR_HEARTBEAT_SECONDS", 1.0))
    beat = max(0.05, min(beat, request.stall_timeout_seconds / 3))
    deadline = time.monotonic() + plan.seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(beat, left))
        if not _still_running(attempt_id):
            return "stopped"
        _report(request, NativeRun.Status.RUNNING, phase=phase)
    try:
        if plan.fail:
            services.attempt_record_phase(
                attempt_id=attempt_id, phase=phase, outcome=PhaseOutcome.Outcome.FAILED,
                message=plan.fail_message, actor=ACTOR,
            )
            _report(request, NativeRun.Status.FAILED, phase=phase, message=plan.fail_message)
            return "failed"
        _, created = services.attempt_record_phase(
            attempt_id=attempt_id, phase=phase, outcome=PhaseOutcome.Outcome.PASSED, actor=ACTOR
        )
    except ServiceError as exc:
        # Superseded or finished meanwhile: its reports change nothing.
        log.info("local executor: attempt %s phase %s not recorded: %s", attempt_id, phase, exc.detail)
        return "stopped"
    if not created:
        # A redelivered copy of this phase; the copy that recorded it goes on.
        return "duplicate"
    following = request.phases.index(phase) + 1
    if following < len(request.phases):
        from retries.tasks import run_phase as run_phase_task

        run_phase_task.delay(str(attempt_id), request.phases[following])
        return "passed"
    _report(request, NativeRun.Status.SUCCEEDED, phase=phase, message="all phases passed")
    return "succeeded"
