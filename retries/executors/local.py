"""The ``local`` executor: runs a procedure's phases as Celery tasks in this
project's own workers, so the whole system works on one machine.

It reports exactly like an outside executor would, through the services
behind the API: the native run (ids derived from the attempt id, the attempt
id stamped on it) through ``native_run_report``, phase outcomes through
``attempt_record_phase``. Each phase is its own Celery task, so a worker
lost mid-phase costs that phase only.

What a phase does (how long it works, whether it fails or goes silent) is
decided by a ``PhaseBehaviour``, the class ``settings.LOCAL_EXECUTOR_PHASES``
names. This one passes every phase after ``DEFAULT_PHASE_SECONDS``. The demo
and the execution tests swap in the fault injection of
``retries.demo.faults`` (task params ``fail_phase``, ``stall_phase``, …),
which settings choose when ``LOCAL_EXECUTOR_FAULTS`` is on.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from missioncontrol.errors import ServiceError
from retries import services
from retries.models import Attempt, NativeRun, PhaseOutcome

from .base import Executor, LaunchRequest, native_ids

log = logging.getLogger(__name__)

NAME = "local"
ACTOR = "executor:local"

DEFAULT_PHASE_SECONDS = 1.0


@dataclass(frozen=True)
class PhasePlan:
    seconds: float
    fail: bool = False
    fail_message: str = ""
    stall: bool = False


class PhaseBehaviour:
    """What the local executor's phases do: every phase passes after
    ``DEFAULT_PHASE_SECONDS``, nothing fails, nothing stalls."""

    def check(self, request: LaunchRequest) -> None:
        """Fail closed at launch (``LaunchError``) on a request the phases
        could not follow. Every request can be followed here."""

    def launch_delay(self, request: LaunchRequest) -> float:
        """Seconds between creating the native run and starting the first phase."""
        return 0.0

    def phase_plan(self, request: LaunchRequest, phase: str) -> PhasePlan:
        return PhasePlan(seconds=DEFAULT_PHASE_SECONDS)


@lru_cache(maxsize=4)
def _behaviour(path: str) -> PhaseBehaviour:
    return import_string(path)()


def phase_behaviour() -> PhaseBehaviour:
    """The behaviour ``settings.LOCAL_EXECUTOR_PHASES`` names (read on every
    call, so a test may change the setting)."""
    return _behaviour(getattr(settings, "LOCAL_EXECUTOR_PHASES", f"{__name__}.PhaseBehaviour"))


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
        behaviour = phase_behaviour()
        behaviour.check(request)
        run = _report(request, NativeRun.Status.QUEUED, phase=request.first_phase)
        delay = behaviour.launch_delay(request)
        if delay:
            time.sleep(delay)
        from retries.tasks import run_phase  # noqa: PLC0415 - deferred, see [tool.importlinter]

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
    plan = phase_behaviour().phase_plan(request, phase)
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
                attempt_id=attempt_id,
                phase=phase,
                outcome=PhaseOutcome.Outcome.FAILED,
                message=plan.fail_message,
                actor=ACTOR,
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
        from retries.tasks import run_phase as run_phase_task  # noqa: PLC0415 - deferred, as above

        run_phase_task.delay(str(attempt_id), request.phases[following])
        return "passed"
    _report(request, NativeRun.Status.SUCCEEDED, phase=phase, message="all phases passed")
    return "succeeded"
