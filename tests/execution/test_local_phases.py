"""What the local executor's phases do is a behaviour chosen by settings:
the plain one ignores task params; the demo's fault injection follows them.
No worker, no database."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from retries.demo.faults import TaskParamFaults
from retries.executors.base import LaunchError, LaunchRequest
from retries.executors.local import DEFAULT_PHASE_SECONDS, PhaseBehaviour, PhasePlan, phase_behaviour

ROOT = Path(__file__).resolve().parents[2]
PLAIN = "retries.executors.local.PhaseBehaviour"
FAULTS = "retries.demo.faults.TaskParamFaults"


def request(params: dict, *, number: int = 1) -> LaunchRequest:
    return LaunchRequest(
        attempt_id=uuid.uuid4(),
        attempt_number=number,
        task="t",
        procedure="p",
        executor="local",
        phases=("preflight", "execute", "finalize"),
        resume_phase=None,
        params=params,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DEBUG": "1"}, FAULTS),
        ({"DEBUG": "0"}, PLAIN),
        ({"DEBUG": "0", "LOCAL_EXECUTOR_FAULTS": "1"}, FAULTS),
        ({"DEBUG": "1", "LOCAL_EXECUTOR_FAULTS": "0"}, PLAIN),
    ],
)
def test_fault_injection_is_on_in_development_and_off_in_production(env, expected):
    """The real settings module, read in a fresh process with only these
    variables: the demo's faults never reach production by default."""
    script = "import django; django.setup(); from django.conf import settings; print(settings.LOCAL_EXECUTOR_PHASES)"
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "LOCAL_EXECUTOR_FAULTS"}}
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "missioncontrol.settings", "SECRET_KEY": "x" * 50, **env},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_the_fault_behaviour_is_what_the_setting_names(settings):
    settings.LOCAL_EXECUTOR_PHASES = FAULTS
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
    params = {
        "phase_seconds": {"execute": 3},
        "fail_phase": "finalize",
        "fail_on_attempts": [2],
        "fail_message": "boom",
        "stall_phase": "execute",
        "stall_on_attempts": 1,
        "launch_delay_seconds": 2,
    }
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
