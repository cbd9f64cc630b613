"""A worker SIGKILLed in the middle of a launch, then restarted: the broker
hands the unacknowledged launch to the new worker, which repeats it, and
the attempt still has exactly one native run."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from missioncontrol.celery import app as celery_app
from planning.models import Event, PlanningTask
from retries.executors import native_ids
from retries.models import Attempt, NativeRun
from tests.execution.conftest import WORKER_GROUP, Worker, purge, wait_for
from tests.factories import ProcedureFactory, TaskFactory
from tests.steps import launch

pytestmark = [pytest.mark.worker, pytest.mark.xdist_group(WORKER_GROUP), pytest.mark.django_db(transaction=True)]

# Redelivery of a message a dead worker held: short, so the test is quick;
# the restore sweep runs every second.
TRANSPORT = {"visibility_timeout": 6, "unacked_restore_interval": 1, "unacked_restore_throttle": 1}


@pytest.fixture
def crash_queue(worker, worker_queue):
    """A queue of its own, so only the worker this test kills and restarts
    can take the launch (not the shared one)."""
    queue = f"{worker_queue}-crash"
    purge(queue)
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    yield queue
    celery_app.conf.task_default_queue = previous
    purge(queue, forget=True)


def test_sigkill_mid_launch_then_restart_leaves_one_native_run(crash_queue, tmp_path):
    procedure = ProcedureFactory(
        executor="local", phases=["preflight", "execute", "finalize"], stall_timeout_seconds=60
    )
    # The launch pauses after creating its native run: the moment to kill it.
    task = TaskFactory(procedure=procedure, params={"phase_seconds": 0.1, "launch_delay_seconds": 4})
    # The launch delay is a task param of the fault-injecting phases (retries/demo/faults.py).
    options = {
        "env": {"MC_TEST_TRANSPORT_OPTIONS": json.dumps(TRANSPORT), "LOCAL_EXECUTOR_FAULTS": "1"},
        "concurrency": 1,
    }
    db_name = connection.settings_dict["NAME"]
    first = Worker(queue=crash_queue, db_name=db_name, log_path=tmp_path / "first.log", **options).start()
    second = None
    try:
        attempt = launch(task)
        wait_for(
            lambda: NativeRun.objects.filter(claimed_attempt_id=attempt.id).exists(),
            timeout=30,
            what="the launch to create its native run",
        )
        first.kill()
        assert not first.alive()

        attempt.refresh_from_db()
        assert attempt.status == Attempt.Status.LAUNCHING
        assert NativeRun.objects.filter(claimed_attempt_id=attempt.id).count() == 1

        second = Worker(queue=crash_queue, db_name=db_name, log_path=tmp_path / "second.log", **options).start()
        wait_for(
            lambda: PlanningTask.objects.get(id=task.id).status == "succeeded",
            timeout=90,
            what="the redelivered launch to run the attempt to the end",
        )
        # The second worker really received the launch again.
        assert "retries.tasks.launch_attempt" in (tmp_path / "second.log").read_text()
        second.wait_idle()
    finally:
        first.stop()
        if second is not None:
            second.stop()

    native_task_id, native_run_id = native_ids("local", attempt.id)
    [run] = NativeRun.objects.filter(claimed_attempt_id=attempt.id)
    assert (run.native_task_id, run.native_run_id) == (native_task_id, native_run_id)
    assert run.attempt_id == attempt.id and run.status == NativeRun.Status.SUCCEEDED
    assert NativeRun.objects.filter(task=task).count() == 1
    assert Event.objects.filter(type="native_run.reported", attempt_id=attempt.id, data__new=True).count() == 1
    assert Attempt.objects.filter(task=task).count() == 1
