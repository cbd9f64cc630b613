"""The two promises probing a production-configured server broke, as
regression tests on PostgreSQL (issue: one rule, one decision)."""

import io

import pytest
from django.core.management import call_command
from django.db import connection

from planning.models import Event, PlanningTask
from retries import services
from retries.integrity import integrity_problems
from retries.models import Attempt, NativeRun, RetiredNativeId
from retries.reconcile import reconcile_pass
from tests.factories import TaskFactory
from tests.steps import ago, current, launch, report

pytestmark = pytest.mark.django_db


def test_a_native_task_refused_as_superseded_never_binds_to_the_rerun_without_an_attempt_id():
    """Seed 000's relink: launch (#1), rerun (#2); the old runtime reports
    nt-X/nt-X-r1 naming #1 (refused: superseded), then nt-X/nt-X-r2 with no
    attempt id and a fresh created_at. Its own claim tied nt-X to the
    superseded #1, so it never binds again."""
    task = TaskFactory()
    first = launch(task)
    second = services.task_rerun(slug=task.slug, actor="operator", reason="again", supersede_active=True).attempt

    refused, _ = report(task, status="running", native_run_id="nt-X-r1", native_task_id="nt-X", attempt=first)
    assert (refused.binding, refused.binding_reason) == ("rejected", "superseded")
    assert set(RetiredNativeId.objects.filter(attempt=first).values_list("value", flat=True)) == {"nt-X", "nt-X-r1"}

    later, _ = report(task, status="failed", native_run_id="nt-X-r2", native_task_id="nt-X", created_at=ago(-1))

    second.refresh_from_db()
    task.refresh_from_db()
    assert (later.binding, later.binding_reason) == ("rejected", "retired_native_id")
    assert later.binding_facts["retired"] == {
        "kind": "task",
        "value": "nt-X",
        "attempt_number": 1,
        "retired_at": later.binding_facts["retired"]["retired_at"],
    }
    assert "retired with attempt #1" in later.binding_explanation
    assert second.status == Attempt.Status.PENDING and second.native_run_id is None
    assert task.status == PlanningTask.Status.LAUNCH_REQUESTED


def test_superseding_an_attempt_retires_the_ids_of_runs_that_only_claimed_it():
    """A run that claimed the current attempt but never bound (another run
    was bound first) is retired with that attempt when it is superseded."""
    task = TaskFactory()
    first = launch(task)
    report(task, status="running", native_run_id="nr-bound", attempt=first)
    loser, _ = report(task, status="running", native_run_id="nr-claim", native_task_id="nt-claim", attempt=first)
    assert loser.binding_reason == "attempt_already_bound"

    services.task_rerun(slug=task.slug, actor="operator", reason="again", supersede_active=True)

    assert {"nr-claim", "nt-claim", "nr-bound", "nt-nr-bound"} <= set(
        RetiredNativeId.objects.filter(attempt=first).values_list("value", flat=True)
    )
    again, _ = report(task, status="running", native_run_id="nr-claim-2", native_task_id="nt-claim", created_at=ago(-1))
    assert again.binding_reason == "retired_native_id"


@pytest.mark.damages_rows
def test_hand_edited_rows_are_never_retried_by_reconcile_and_repair_brings_them_back():
    """Seed 004: a succeeded task and its attempt hand-edited to failed (a
    damaged import, a careless SQL fix). Reconcile must not create retry #2
    nor write failed -> launch_requested; it marks the task inconsistent."""
    task = TaskFactory()
    attempt = launch(task)
    report(task, status="succeeded", native_run_id="nr-done", attempt=attempt)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE planning_planningtask SET status = 'failed' WHERE id = %s", [task.id])
        cursor.execute("UPDATE retries_attempt SET status = 'failed' WHERE id = %s", [attempt.id])
    events_before = Event.objects.filter(task=task).count()

    summary = reconcile_pass()

    task.refresh_from_db()
    assert summary.retried == 0 and Attempt.objects.filter(task=task).count() == 1
    assert not Event.objects.filter(task=task, type="attempt.requested", data__kind="retry").exists()
    assert not Event.objects.filter(
        task=task, type="task.status_changed", data__status="launch_requested", id__gt=0, data__from="failed"
    ).exists()
    assert task.inconsistent_since is not None
    assert "status is failed but the ledger says succeeded" in task.inconsistency
    marked = Event.objects.filter(task=task, type="task.marked_inconsistent").get()
    assert marked.data["by"] == "automatic action" and "rows disagree with the ledger" in marked.data["reason"]
    assert Event.objects.filter(task=task).count() == events_before + 1
    # A second pass leaves it alone (and verify_integrity still sees it).
    assert reconcile_pass().retried == 0
    assert any(p.task_id == task.id for p in integrity_problems())

    call_command("repair_tasks", task.slug, "--reason", "rows were hand-edited", stdout=io.StringIO())

    task.refresh_from_db()
    repaired = current(task)
    assert task.inconsistent_since is None and task.status == PlanningTask.Status.LAUNCH_REQUESTED
    assert repaired.kind == "repair" and repaired.number == 2
    assert Attempt.objects.get(id=attempt.id).status == Attempt.Status.SUCCEEDED, "restored from the ledger"
    assert not [p for p in integrity_problems() if p.task_id == task.id]


@pytest.mark.damages_rows
def test_a_stall_and_a_launch_pick_up_leave_a_disagreeing_task_alone():
    task = TaskFactory()
    attempt = launch(task)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE planning_planningtask SET status = 'running' WHERE id = %s", [task.id])

    assert services.attempt_mark_launching(attempt_id=attempt.id) is None

    task.refresh_from_db()
    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.PENDING and task.inconsistent_since is not None
    assert NativeRun.objects.count() == 0
