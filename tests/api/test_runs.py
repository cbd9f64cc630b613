"""Attempts, phase outcomes and native run reports, one by one and in batches."""

import datetime as dt
import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from missioncontrol.api.services import api_token_create
from planning.models import Event, PlanningTask
from retries.models import Attempt, NativeRun, PhaseOutcome
from tests.api.conftest import assert_error, binding_of
from tests.factories import TEST_EXECUTORS, TaskFactory
from tests.steps import fail_current, launch

pytestmark = pytest.mark.django_db


def report(for_task, run_id, status="running", **extra):
    return {
        "executor": "ext",
        "native_task_id": f"nt-{run_id}",
        "native_run_id": run_id,
        "task": for_task.slug,
        "status": status,
        **extra,
    }


# --- attempts and phases ----------------------------------------------------------


def test_get_an_attempt(viewer, task):
    attempt = launch(task)
    body = viewer.get(f"/api/v1/attempts/{attempt.id}/").json()
    assert body["id"] == str(attempt.id) and body["task"] == task.slug and body["number"] == 1
    assert set(body) == {
        "id",
        "task",
        "number",
        "kind",
        "status",
        "requested_by",
        "requested_at",
        "reason",
        "requested_assignee",
        "resume_phase",
        "phases",
        "superseded_at",
        "superseded_by",
        "native_task_id",
        "native_run_id",
        "failure",
        "started_at",
        "finished_at",
    }
    assert_error(viewer.get("/api/v1/attempts/00000000-0000-4000-8000-000000000000/"), 404, "not_found")


def test_phase_outcomes_201_then_200_and_the_attempt_moves(executor, task):
    attempt = launch(task)
    phases_url = f"/api/v1/attempts/{attempt.id}/phases/"
    first = executor.post(phases_url, {"phase": "preflight", "outcome": "passed", "message": "ok"})
    assert first.status_code == 201
    assert first.json()["status"] == "running"
    assert [(p["phase"], p["outcome"], p["message"]) for p in first.json()["phases"]] == [("preflight", "passed", "ok")]
    again = executor.post(phases_url, {"phase": "preflight", "outcome": "passed", "message": "ok"})
    assert again.status_code == 200 and again.json() == first.json()
    assert PhaseOutcome.objects.filter(attempt=attempt).count() == 1
    failed = executor.post(phases_url, {"phase": "execute", "outcome": "failed", "message": "disk full"})
    assert failed.status_code == 201
    assert failed.json()["failure"] == {"kind": "phase_failed", "phase": "execute", "message": "disk full"}


def test_phase_errors(executor, operator, task):
    attempt = launch(task)
    phases_url = f"/api/v1/attempts/{attempt.id}/phases/"
    assert_error(executor.post(phases_url, {"phase": "deploy", "outcome": "passed"}), 400, "invalid", {"phase"})
    assert_error(executor.post(phases_url, {"phase": "preflight", "outcome": "maybe"}), 400, "invalid", {"outcome"})
    assert_error(
        executor.post(
            "/api/v1/attempts/00000000-0000-4000-8000-000000000000/phases/", {"phase": "preflight", "outcome": "passed"}
        ),
        404,
        "not_found",
    )
    executor.post(phases_url, {"phase": "preflight", "outcome": "passed"})
    assert_error(executor.post(phases_url, {"phase": "preflight", "outcome": "failed"}), 409, "phase_conflict")
    operator.post(f"/api/v1/tasks/{task.slug}/rerun/", {"reason": "replace", "supersede_active": True})
    assert_error(executor.post(phases_url, {"phase": "execute", "outcome": "passed"}), 409, "superseded")
    fresh = TaskFactory(project=task.project, procedure=task.procedure)
    done = fail_current(fresh)
    assert_error(
        executor.post(f"/api/v1/attempts/{done.id}/phases/", {"phase": "preflight", "outcome": "passed"}),
        409,
        "attempt_finished",
    )


# --- native runs ------------------------------------------------------------------


def test_report_201_new_200_known_with_the_binding(executor, viewer, task):
    attempt = launch(task)
    first = executor.post("/api/v1/native-runs/", report(task, "nr-1", attempt_id=str(attempt.id)))
    assert first.status_code == 201, first.content
    body = first.json()
    assert binding_of(body) == {"state": "bound", "attempt_id": str(attempt.id), "reason": None}
    assert body["task"] == task.slug and body["attempt_id"] == str(attempt.id) and body["status"] == "running"
    heartbeat = executor.post("/api/v1/native-runs/", report(task, "nr-1", attempt_id=str(attempt.id)))
    assert heartbeat.status_code == 200 and heartbeat.json()["binding"]["state"] == "bound"
    assert viewer.get(f"/api/v1/tasks/{task.slug}/").json()["status"] == "running"


def test_report_rejections_and_the_list_filters(executor, viewer, task):
    attempt = launch(task)
    unknown = executor.post("/api/v1/native-runs/", report(task, "nr-x", task="ghost")).json()
    assert binding_of(unknown) == {"state": "rejected", "attempt_id": None, "reason": "unknown_task"}
    stray = executor.post(
        "/api/v1/native-runs/", report(task, "nr-y", attempt_id="00000000-0000-4000-8000-000000000000")
    ).json()
    assert stray["binding"]["reason"] == "unknown_attempt"
    executor.post("/api/v1/native-runs/", report(task, "nr-ok", attempt_id=str(attempt.id)))

    def runs(query):
        return [r["native_run_id"] for r in viewer.get(f"/api/v1/native-runs/?{query}").json()["results"]]

    assert set(runs("binding=rejected")) == {"nr-x", "nr-y"}
    assert runs("binding=bound") == ["nr-ok"]
    assert set(runs(f"task={task.slug}")) == {"nr-y", "nr-ok"}
    assert runs("executor=other") == []
    assert_error(viewer.get("/api/v1/native-runs/?binding=maybe"), 400, "invalid", {"binding"})


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"status": "exploded"}, {"status"}),
        ({"attempt_id": "not-a-uuid"}, {"attempt_id"}),
        ({"attempt_id": 12}, {"attempt_id"}),
        ({"created_at": "yesterday"}, {"created_at"}),
        ({"created_at": "2026-01-01T10:00:00"}, {"created_at"}),  # no zone
        ({"executor": "e" * 51}, {"executor"}),
        ({"native_run_id": None}, {"native_run_id"}),
        ({"task": 5}, {"task"}),
    ],
)
def test_bad_reports_are_refused_and_change_nothing(executor, task, change, fields):
    before = Event.objects.count()
    assert_error(executor.post("/api/v1/native-runs/", {**report(task, "nr-1"), **change}), 400, "invalid", fields)
    assert Event.objects.count() == before and not NativeRun.objects.exists()


def test_legacy_report_with_created_at_binds(executor, task):
    launch(task)
    at = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)).isoformat().replace("+00:00", "Z")
    body = executor.post("/api/v1/native-runs/", report(task, "nr-legacy", created_at=at)).json()
    assert body["binding"]["state"] == "bound" and body["attempt_id"] is None


# --- batch ------------------------------------------------------------------------


def test_batch_applies_in_order_and_answers_in_order(executor, task):
    attempt = launch(task)
    other = TaskFactory(project=task.project, procedure=task.procedure)
    other_attempt = launch(other)
    reports = [
        report(task, "nr-a", attempt_id=str(attempt.id)),
        report(other, "nr-b", attempt_id=str(other_attempt.id)),
        report(task, "nr-a", status="failed", attempt_id=str(attempt.id), message="oom"),
        report(task, "nr-z", task="ghost"),
    ]
    response = executor.post("/api/v1/native-runs/batch/", {"reports": reports})
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [(r["native_run_id"], r["status"]) for r in results] == [
        ("nr-a", "running"),
        ("nr-b", "running"),
        ("nr-a", "failed"),
        ("nr-z", "running"),
    ]
    assert [r["binding"]["state"] for r in results] == ["bound", "bound", "bound", "rejected"]
    task.refresh_from_db()
    assert task.status == PlanningTask.Status.FAILED


def test_batch_is_all_or_nothing_with_errors_by_index(executor, task):
    launch(task)
    before = Event.objects.count()
    reports = [
        report(task, "nr-1"),
        {**report(task, "nr-2"), "status": "lost"},
        report(task, "nr-3"),
        {"executor": "ext"},
    ]
    body = assert_error(executor.post("/api/v1/native-runs/batch/", {"reports": reports}), 400, "invalid")
    assert set(body["errors"]) == {"1", "3"}
    assert set(body["errors"]["1"]) == {"status"}
    assert set(body["errors"]["3"]) == {"native_task_id", "native_run_id", "task", "status"}
    assert Event.objects.count() == before and not NativeRun.objects.exists()


def test_batch_limits(executor, task):
    assert_error(executor.post("/api/v1/native-runs/batch/", {"reports": "all"}), 400, "invalid", {"reports"})
    assert_error(executor.post("/api/v1/native-runs/batch/", {}), 400, "invalid", {"reports"})
    too_many = [report(task, f"nr-{n}") for n in range(501)]
    assert_error(executor.post("/api/v1/native-runs/batch/", {"reports": too_many}), 400, "invalid", {"reports"})
    assert not NativeRun.objects.exists()
    full = [report(task, f"nr-{n}") for n in range(500)]
    response = executor.post("/api/v1/native-runs/batch/", {"reports": full})
    assert response.status_code == 200 and len(response.json()["results"]) == 500


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_over_the_same_tasks_in_opposite_orders_do_not_deadlock():
    from tests.factories import ProcedureFactory, ProjectFactory

    project, procedure = ProjectFactory(), ProcedureFactory()
    tasks = [TaskFactory(project=project, procedure=procedure) for _ in range(6)]
    attempts = [launch(t) for t in tasks]
    forward = [report(t, f"nr-{t.slug}", attempt_id=str(a.id)) for t, a in zip(tasks, attempts, strict=True)]
    backward = [
        report(t, f"nr-{t.slug}", status="succeeded", attempt_id=str(a.id))
        for t, a in reversed(list(zip(tasks, attempts, strict=True)))
    ]
    key = api_token_create(username="batch-executor", role="executor", executors=TEST_EXECUTORS).key
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def send(body):
        try:
            barrier.wait()
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
            statuses.append(client.post("/api/v1/native-runs/batch/", {"reports": body}, format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(forward if n % 2 else backward,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * 8
    assert NativeRun.objects.count() == 6
    assert all(
        a.status in (Attempt.Status.RUNNING, Attempt.Status.SUCCEEDED)
        for a in Attempt.objects.filter(id__in=[a.id for a in attempts])
    )


def test_max_length_counts_what_was_sent_before_trimming(executor, task):
    padded = "\r" + "x" * 200
    body = {**report(task, "nr-1"), "native_run_id": padded}
    assert_error(executor.post("/api/v1/native-runs/", body), 400, "invalid", {"native_run_id"})
    assert not NativeRun.objects.exists()
