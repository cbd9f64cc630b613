"""What the local executor's phases do is a behaviour chosen by settings:
the plain one ignores task params; the demo's fault injection follows them.
No worker, no database."""

from __future__ import annotations

import uuid

import pytest

from retries.demo.faults import TaskParamFaults
from retries.executors.base import LaunchError, LaunchRequest
from retries.executors.local import DEFAULT_PHASE_SECONDS, PhaseBehaviour, PhasePlan, phase_behaviour

PLAIN = "retries.executors.local.PhaseBehaviour"
FAULTS = "retries.demo.faults.TaskParamFaults"


def request(params: dict, *, number: int = 1) -> LaunchRequest:
    return LaunchRequest(
        attempt_id=uuid.uuid4(), attempt_number=number, task="t", procedure="p", executor="local",
        phases=("preflight", "execute", "finalize"), resume_phase=None, params=params,
    )


def test_development_settings_turn_the_fault_injection_on(settings):
    # make test runs with DEBUG on, so LOCAL_EXECUTOR_FAULTS defaults to on.
    assert settings.LOCAL_EXECUTOR_FAULTS is True
    assert settings.LOCAL_EXECUTOR_PHASES == FAULTS
    assert isinstance(phase_behaviour(), TaskParamFaults)


def test_the_plain_behaviour_ignores_the_demo_params(settings):
    settings.LOCAL_EXECUTOR_PHASES = PLAIN
    behaviour = phase_behaviour()
    assert type(behaviour) is PhaseBehaviour
    faulty = request({"fail_phase": "deploy", "stall_phase": "execute", "phase_seconds": 9, "launch_delay_seconds": 4})
    behaviour.check(faulty)  # nothing to refuse: the params mean nothing here
    assert behaviour.launch_delay(faulty) == 0
    assert [behaviour.phase_plan(faulty, p) for p in faulty.phases] == [PhasePlan(seconds=DEFAULT_PHASE_SECONDS)] * 3


def test_the_fault_injection_follows_the_params(settings):
    settings.LOCAL_EXECUTOR_PHASES = FAULTS
    behaviour = phase_behaviour()
    params = {"phase_seconds": {"execute": 3}, "fail_phase": "finalize", "fail_on_attempts": [2],
              "fail_message": "boom", "stall_phase": "execute", "stall_on_attempts": 1, "launch_delay_seconds": 2}
    first, second = request(params, number=1), request(params, number=2)
    behaviour.check(first)
    assert behaviour.launch_delay(first) == 2.0
    assert behaviour.phase_plan(first, "execute") == PhasePlan(seconds=3.0, fail=False, fail_message="boom", stall=True)
    assert behaviour.phase_plan(first, "finalize").fail is False
    assert behaviour.phase_plan(second, "finalize") == PhasePlan(
        seconds=DEFAULT_PHASE_SECONDS, fail=True, fail_message="boom", stall=False
    )
    with pytest.raises(LaunchError, match="fail_phase 'deploy'"):
        behaviour.check(request({"fail_phase": "deploy"}))
