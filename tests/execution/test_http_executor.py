"""The ``http`` executor against a real HTTP gateway on loopback: the worker
POSTs the launch, the gateway reports back through the REST API (served by
pytest-django's live server) with its own executor token."""

from __future__ import annotations

import io

import pytest
import requests
from django.core.management import call_command
from django.utils import timezone

from planning.models import PlanningTask
from retries.models import Attempt, NativeRun, PhaseOutcome
from retries.reconcile import reconcile_pass
from tests.execution.conftest import GATEWAY_TIMEOUT, WORKER_GROUP, wait_for
from tests.factories import ProcedureFactory, TaskFactory
from tests.steps import launch

pytestmark = [pytest.mark.worker, pytest.mark.xdist_group(WORKER_GROUP), pytest.mark.django_db(transaction=True)]

PHASES = ["preflight", "execute", "finalize"]


def http_task() -> PlanningTask:
    procedure = ProcedureFactory(executor="http", phases=PHASES, stall_timeout_seconds=60)
    return TaskFactory(procedure=procedure, params={"region": "eu"})


def executor_token() -> str:
    out = io.StringIO()
    call_command("create_api_token", "gateway", "--role", "executor", "--executor", "http", stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def status_of(task: PlanningTask) -> str:
    return PlanningTask.objects.values_list("status", flat=True).get(id=task.id)


def reporter(base_url: str, token: str):
    """What a real gateway does with a launch: run it and report the native
    run and each phase through the API, the attempt id stamped on all."""

    def report(run: dict) -> None:
        launch_body = run["launch"]
        attempt_id = launch_body["attempt_id"]
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"

        def native(status: str, phase: str) -> None:
            response = session.post(
                f"{base_url}/api/v1/native-runs/",
                json={
                    "executor": "http",
                    "native_task_id": run["native_task_id"],
                    "native_run_id": run["native_run_id"],
                    "task": launch_body["task"],
                    "attempt_id": attempt_id,
                    "status": status,
                    "created_at": timezone.now().isoformat(),
                    "phase": phase,
                },
                timeout=10,
            )
            assert response.status_code in (200, 201), response.text

        phases = launch_body["phases"]
        start = phases.index(launch_body["resume_phase"]) if launch_body["resume_phase"] else 0
        native("running", phases[start])
        for phase in phases[start:]:
            response = session.post(
                f"{base_url}/api/v1/attempts/{attempt_id}/phases/",
                json={"phase": phase, "outcome": "passed"},
                timeout=10,
            )
            assert response.status_code == 201, response.text
        native("succeeded", phases[-1])

    return report


def test_http_round_trip_with_a_refused_first_post(worker, http_gateway, live_server):
    http_gateway.refuse_first = 1  # the first POST gets 503: retried with backoff, same key
    http_gateway.on_launch = reporter(live_server.url, executor_token())
    task = http_task()
    attempt = launch(task)

    wait_for(
        lambda: NativeRun.objects.filter(task=task, status="succeeded").exists(),
        timeout=60,
        what="the gateway's reports",
    )
    worker.wait_idle()

    launches = http_gateway.launches()
    assert len(launches) == 2
    assert {r["key"] for r in launches} == {str(attempt.id)}
    body = launches[-1]["body"]
    assert body["attempt_id"] == str(attempt.id) and body["task"] == task.slug
    assert body["phases"] == PHASES and body["params"] == {"region": "eu"} and body["resume_phase"] is None
    assert len(http_gateway.runs) == 1

    attempt.refresh_from_db()
    task.refresh_from_db()
    assert task.status == "succeeded" and attempt.status == Attempt.Status.SUCCEEDED
    assert [p for (p,) in PhaseOutcome.objects.filter(attempt=attempt).order_by("id").values_list("phase")] == PHASES
    run = NativeRun.objects.get(task=task)
    assert (run.executor, run.native_run_id) == ("http", f"gw-run-{attempt.id}")
    assert run.attempt_id == attempt.id and run.binding == NativeRun.Binding.BOUND


def test_a_launch_answered_too_late_is_retried_with_the_same_key_and_makes_one_run(worker, http_gateway, live_server):
    http_gateway.stall_first = GATEWAY_TIMEOUT + 1.5
    http_gateway.on_launch = reporter(live_server.url, executor_token())
    task = http_task()
    attempt = launch(task)

    wait_for(
        lambda: NativeRun.objects.filter(task=task, status="succeeded").exists(),
        timeout=60,
        what="the gateway's reports",
    )
    worker.wait_idle()  # the launch task itself ends after its retried POST
    launches = http_gateway.launches()
    assert len(launches) == 2 and {r["key"] for r in launches} == {str(attempt.id)}
    assert len(http_gateway.runs) == 1
    assert NativeRun.objects.filter(task=task).count() == 1
    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.SUCCEEDED and attempt.number == 1


def test_reconciliation_polls_the_gateway(worker, http_gateway, settings):
    settings.HTTP_EXECUTOR_URL = http_gateway.url  # reconciliation runs here, in the test process

    # This gateway never calls back; it only answers polls.
    def remember(run: dict) -> None:
        http_gateway.polls[run["launch"]["attempt_id"]] = {
            "native_task_id": run["native_task_id"],
            "native_run_id": run["native_run_id"],
            "status": "running",
            "phase": "execute",
        }

    http_gateway.on_launch = remember
    task = http_task()
    attempt = launch(task)
    wait_for(lambda: str(attempt.id) in http_gateway.polls, what="the launch to reach the gateway")

    assert reconcile_pass().polled == 1
    assert status_of(task) == "running"
    http_gateway.polls[str(attempt.id)] = {**http_gateway.polls[str(attempt.id)], "status": "succeeded"}
    assert reconcile_pass().polled == 1
    assert status_of(task) == "succeeded"
    assert NativeRun.objects.get(task=task).attempt_id == attempt.id
    # A finished attempt is not polled again.
    assert reconcile_pass().polled == 0


def test_a_gateway_that_keeps_refusing_fails_the_launch_after_its_retries(worker, http_gateway):
    http_gateway.refuse_first = 1000
    task = http_task()
    attempt = launch(task)

    wait_for(lambda: status_of(task) == "failed", timeout=60, what="the launch to give up")
    attempt.refresh_from_db()
    assert attempt.failure_kind == "launch_failed" and "503" in attempt.failure_message
    # One try and four retries, all with the attempt id as the key; no run anywhere.
    launches = http_gateway.launches()
    assert len(launches) == 5 and {r["key"] for r in launches} == {str(attempt.id)}
    assert http_gateway.runs == {} and not NativeRun.objects.filter(task=task).exists()
