"""A heartbeat (a report that only repeats "running") is one statement with
no ledger event, coalesced per HEARTBEAT_COALESCE_SECONDS; everything more
than a heartbeat takes the full report path; stalls stay exact."""

import datetime as dt
import threading

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from missioncontrol.api.services import api_token_create
from planning.models import Event
from retries import services
from retries.models import Attempt, NativeRun
from retries.reconcile import reconcile_pass
from tests.factories import TEST_EXECUTORS, ProcedureFactory, TaskFactory
from tests.steps import is_heartbeat_statement, launch, report

# The production default; tests/settings.py shortens it for the worker tests.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("coalesce_5s")]


@pytest.fixture
def coalesce_5s(settings):
    settings.HEARTBEAT_COALESCE_SECONDS = 5


def body(task, run_id="r1", status="running", **extra):
    return {
        "executor": "ext",
        "native_task_id": f"nt-{run_id}",
        "native_run_id": run_id,
        "task": task.slug,
        "status": status,
        **extra,
    }


def as_report(data: dict) -> services.RunReport:
    return services.RunReport(**{"attempt_id": None, "created_at": None, "phase": "", "message": "", **data})


@pytest.fixture
def running(db):
    """A task whose current attempt runs, bound to run r1 reported by "executor"."""
    task = TaskFactory(procedure=ProcedureFactory(phases=["one", "two"], stall_timeout_seconds=60))
    attempt = launch(task)
    report(task, status="running", native_run_id="r1", attempt=attempt)
    return task, Attempt.objects.get(id=attempt.id)


def age(run_id: str, attempt: Attempt, seconds: int) -> None:
    """Pretend the last report and heartbeat were ``seconds`` ago."""
    then = timezone.now() - dt.timedelta(seconds=seconds)
    NativeRun.objects.filter(native_run_id=run_id).update(last_seen_at=then)
    Attempt.objects.filter(id=attempt.id).update(last_heartbeat_at=then)


def test_a_heartbeat_is_one_statement_and_no_event(running):
    task, attempt = running
    age("r1", attempt, 30)
    events = Event.objects.count()
    with CaptureQueriesContext(connection) as queries:
        beat = services.native_run_heartbeat(report=as_report(body(task)), actor="executor")
    assert len(queries.captured_queries) == 1
    assert beat is not None and beat.written
    run = NativeRun.objects.get(native_run_id="r1")
    attempt.refresh_from_db()
    assert run.last_seen_at == beat.run.last_seen_at == attempt.last_heartbeat_at
    assert timezone.now() - run.last_seen_at < dt.timedelta(seconds=5)
    assert Event.objects.count() == events


def test_heartbeats_coalesce_within_the_interval(running):
    task, attempt = running
    age("r1", attempt, 2)  # within the default 5 s
    before = NativeRun.objects.get(native_run_id="r1").last_seen_at
    beat = services.native_run_heartbeat(report=as_report(body(task)), actor="executor")
    assert beat is not None and not beat.written and beat.run.last_seen_at == before
    assert NativeRun.objects.get(native_run_id="r1").last_seen_at == before
    with override_settings(HEARTBEAT_COALESCE_SECONDS=1):
        assert services.native_run_heartbeat(report=as_report(body(task)), actor="executor").written


@pytest.mark.parametrize(
    "change",
    [
        {"status": "succeeded"},
        {"phase": "two"},
        {"message": "now doing two"},
        {"native_run_id": "r2"},
        {"attempt_id": "00000000-0000-4000-8000-000000000000"},
        {"executor": "cloud"},
    ],
    ids=["status", "phase", "message", "new-run", "other-claim", "other-executor"],
)
def test_anything_more_than_a_heartbeat_takes_the_full_path(running, change):
    task, _ = running
    data = {**body(task), **change}
    assert services.native_run_heartbeat(report=as_report(data), actor="executor") is None


def test_another_reporter_or_a_superseded_attempt_takes_the_full_path(running):
    task, _ = running
    assert services.native_run_heartbeat(report=as_report(body(task)), actor="someone-else") is None
    services.task_rerun(slug=task.slug, actor="olga", reason="r", supersede_active=True)
    assert services.native_run_heartbeat(report=as_report(body(task)), actor="executor") is None


def test_the_api_answers_a_heartbeat_as_the_full_path_would(running):
    task, attempt = running
    key = api_token_create(username="executor", role="executor", executors=TEST_EXECUTORS).key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    # The first report of this user moves reported_by: the full path.
    first = client.post("/api/v1/native-runs/", body(task), format="json")
    age("r1", attempt, 30)
    with CaptureQueriesContext(connection) as queries:
        beat = client.post("/api/v1/native-runs/", body(task), format="json")
    assert beat.status_code == first.status_code == 200
    # The token is cached from the first request: the heartbeat alone.
    assert len(queries.captured_queries) == 1, [q["sql"][:80] for q in queries.captured_queries]
    a, b = first.json(), beat.json()
    assert a.pop("last_seen_at") < b.pop("last_seen_at")
    assert a == b


def test_a_heartbeat_of_a_run_this_process_has_not_seen_takes_the_full_path_once(running):
    """Another process made the run (here: the cache is emptied): the report
    is applied by the full path, answered alike, and the next one is the
    heartbeat statement alone."""
    task, attempt = running
    key = api_token_create(username="executor", role="executor", executors=TEST_EXECUTORS).key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    client.post("/api/v1/native-runs/", body(task), format="json")  # reported_by moves: the full path
    services.known_runs_clear()
    events = Event.objects.count()
    with CaptureQueriesContext(connection) as full:
        first = client.post("/api/v1/native-runs/", body(task), format="json")
    age("r1", attempt, 30)
    with CaptureQueriesContext(connection) as beat:
        second = client.post("/api/v1/native-runs/", body(task), format="json")
    assert first.status_code == second.status_code == 200
    assert not any(is_heartbeat_statement(q["sql"]) for q in full.captured_queries)
    assert [is_heartbeat_statement(q["sql"]) for q in beat.captured_queries] == [True]
    assert Event.objects.count() == events
    a, b = first.json(), second.json()
    assert a.pop("last_seen_at") < b.pop("last_seen_at")
    assert a == b


def test_a_stall_is_detected_while_heartbeats_are_coalesced(running):
    """Coalescing never hides a silent run for more than the interval, and
    never fails a run heard from within its timeout."""
    _, attempt = running
    timeout, coalesce = 60, 5
    # Heard from 62 s ago: past the timeout, but a coalesced heartbeat may
    # have come up to 5 s after the recorded one: not stalled yet.
    age("r1", attempt, timeout + 2)
    reconcile_pass()
    attempt.refresh_from_db()
    assert attempt.status == "running"
    # Silent for longer than both: stalled, with the slack in the reason.
    age("r1", attempt, timeout + coalesce + 1)
    reconcile_pass()
    attempt.refresh_from_db()
    assert attempt.status == "failed" and attempt.failure_kind == "stalled"
    assert "5 s of heartbeat coalescing" in attempt.failure_message


@pytest.mark.django_db(transaction=True)
def test_a_heartbeat_racing_a_status_change_never_undoes_it():
    """A heartbeat and a 'failed' report for the same run, on two
    connections: whatever the order, the run and attempt end failed, and the
    heartbeat either finds a running run (and moves only times) or finds
    nothing and would take the full path (a late report)."""
    task = TaskFactory(procedure=ProcedureFactory(phases=["one"], stall_timeout_seconds=60))
    attempt = launch(task)
    report(task, status="running", native_run_id="r1", attempt=attempt)

    def beat(barrier: threading.Barrier, seen: list) -> None:
        barrier.wait()
        try:
            seen.append(services.native_run_heartbeat(report=as_report(body(task)), actor="executor"))
        finally:
            connections.close_all()

    def change(barrier: threading.Barrier, status: str, message: str) -> None:
        barrier.wait()
        try:
            report(task, status=status, native_run_id="r1", message=message)
        finally:
            connections.close_all()

    for round_ in range(10):
        age("r1", attempt, 30)
        barrier, seen = threading.Barrier(2), []
        status = "failed" if round_ == 9 else "running"
        threads = [
            threading.Thread(target=beat, args=(barrier, seen)),
            threading.Thread(target=change, args=(barrier, status, f"m{round_}")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Taken as a heartbeat only while the run was running.
        assert seen[0] is None or seen[0].run.status == "running"
    run = NativeRun.objects.get(native_run_id="r1")
    attempt.refresh_from_db()
    assert run.status == "failed" and attempt.status == "failed"
    assert run.message == "m9"
    # A heartbeat after the failure is not a heartbeat: the full path takes it.
    assert services.native_run_heartbeat(report=as_report(body(task)), actor="executor") is None
