"""Fault injection for the ``local`` executor, for the demo and the execution
tests: what a phase does is set by the task's ``params``.

``phase_seconds``       number, or ``{phase: number}``: how long a phase works
``fail_phase``          the phase that fails
``fail_on_attempts``    attempt numbers on which it fails (default: every one)
``fail_message``        the failure's message
``stall_phase``         the phase that goes silent (no outcome, no heartbeat)
``stall_on_attempts``   attempt numbers on which it stalls (default: every one)
``launch_delay_seconds`` a pause between creating the native run and starting
                        the first phase (to observe a launch in flight)

Settings name ``TaskParamFaults`` in ``LOCAL_EXECUTOR_PHASES`` when
``LOCAL_EXECUTOR_FAULTS`` is on; otherwise the executor's plain
``PhaseBehaviour`` ignores these params.
"""

from __future__ import annotations

from typing import Any

from retries.executors.base import LaunchError, LaunchRequest
from retries.executors.local import DEFAULT_PHASE_SECONDS, PhaseBehaviour, PhasePlan

from .procedures import DEMO_PROCEDURES


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
    message = (
        params.get("fail_message") or f"{request.procedure} failed in {phase} (attempt #{request.attempt_number})."
    )
    return PhasePlan(seconds=seconds, fail=fail, fail_message=str(message), stall=stall)


class TaskParamFaults(PhaseBehaviour):
    """The phases do what the task's params say (this module's docstring)."""

    def check(self, request: LaunchRequest) -> None:
        check_params(request)

    def launch_delay(self, request: LaunchRequest) -> float:
        return float(request.params.get("launch_delay_seconds", 0) or 0)

    def phase_plan(self, request: LaunchRequest, phase: str) -> PhasePlan:
        return phase_plan(request, phase)
