"""``run_body`` writes out what ``NativeRunSerializer`` shows (the schema's
and the list endpoint's shape): the two agree on runs of every shape."""

import datetime as dt

import pytest

from missioncontrol.api.serializers.native_runs import NativeRunSerializer, run_body
from retries import services
from retries.models import NativeRun
from tests.factories import TaskFactory
from tests.steps import fail_current, launch, report

pytestmark = pytest.mark.django_db


def test_run_body_is_the_serializers_representation():
    bound = TaskFactory()
    attempt = launch(bound)
    report(bound, status="running", native_run_id="nr-bound", attempt=attempt, phase="execute", message="ü ✓")
    report(  # a second run claiming the same attempt: not bound
        bound,
        status="running",
        native_run_id="nr-second",
        attempt=attempt,
        created_at=dt.datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=dt.UTC),
    )
    orphan = TaskFactory()  # never launched: the run waits unbound
    report(orphan, status="running", native_run_id="nr-orphan")
    rerun = TaskFactory()
    fail_current(rerun, native_run_id="nr-old")
    services.task_rerun(slug=rerun.slug, actor="operator", reason="again")
    report(rerun, status="running", native_run_id="nr-old")  # retired: rejected
    services.native_run_report(
        report=services.RunReport(
            executor="ext", native_task_id="nt-x", native_run_id="nr-no-such-task", task="no-such-task", status="queued"
        ),
        actor="executor",
    )

    runs = list(NativeRun.objects.all())
    states = {run.binding for run in runs}
    assert len(runs) == 5 and {"bound", "unbound", "rejected"} <= states, states
    serializer = NativeRunSerializer()
    for run in runs:
        assert run_body(run) == serializer.to_representation(run), run.native_run_id
