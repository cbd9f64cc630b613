"""Reconciliation without a worker (external executor: nothing is pushed):
what one pass does, what it leaves alone, that its queries can use their
indexes, and that its cost does not grow with settled history."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from planning.models import PlanningTask
from planning.services import task_mark_inconsistent
from retries import reconcile, services
from retries.models import NativeRun
from retries.reconcile import reconcile_pass
from tests.factories import ProcedureFactory, TaskFactory
from tests.steps import current, fail_current, launch, report

pytestmark = pytest.mark.django_db


def ext_task(**kwargs) -> PlanningTask:
    return TaskFactory(procedure=ProcedureFactory(phases=["preflight", "execute", "finalize"], **kwargs))


def test_a_pass_retries_a_failed_task_at_its_first_unpassed_phase():
    task = ext_task()
    attempt = launch(task)
    services.attempt_record_phase(attempt_id=attempt.id, phase="preflight", outcome="passed", actor="ext")
    services.attempt_record_phase(attempt_id=attempt.id, phase="execute", outcome="failed", actor="ext", message="x")

    summary = reconcile_pass()

    assert summary.retried == 1 and not summary.skipped
    retry = current(task)
    assert (retry.kind, retry.number, retry.resume_phase) == ("retry", 2, "execute")
    assert reconcile_pass().retried == 0  # nothing left to do


def test_a_pass_skips_a_task_marked_inconsistent():
    task = ext_task()
    fail_current(task)
    task_mark_inconsistent(task_id=task.id, problems=["test: marked by hand"])

    assert reconcile_pass().retried == 0
    task.refresh_from_db()
    assert task.status == "failed" and task.attempt_count == 1


def test_a_pass_fails_a_silent_attempt_as_stalled_only_after_its_timeout():
    task = ext_task(stall_timeout_seconds=60)
    attempt = launch(task)
    report(task, status="running", native_run_id="nr-1", attempt=attempt)

    assert reconcile_pass(now=timezone.now() + dt.timedelta(seconds=30)).stalled == 0
    summary = reconcile_pass(now=timezone.now() + dt.timedelta(seconds=61))

    attempt.refresh_from_db()
    assert summary.stalled == 1 and summary.retried == 1
    assert (attempt.status, attempt.failure_kind, attempt.failure_phase) == ("failed", "stalled", "preflight")
    assert current(task).number == 2


def test_a_pass_binds_a_legacy_run_that_waited_for_its_attempt():
    task = ext_task()
    # A legacy run (no attempt id) reported while the task was still a draft waits unbound.
    run, _ = report(
        task, status="running", native_run_id="nr-early", created_at=timezone.now() + dt.timedelta(seconds=5)
    )
    assert run.binding == NativeRun.Binding.UNBOUND
    attempt = launch(task)

    summary = reconcile_pass()

    run.refresh_from_db()
    assert summary.bound == 1 and run.attempt_id == attempt.id
    assert PlanningTask.objects.get(id=task.id).status == "running"


def test_a_pass_moves_a_task_whose_bound_run_is_terminal():
    task = ext_task()
    attempt = launch(task)
    run, _ = report(task, status="running", native_run_id="nr-1", attempt=attempt)
    # Simulate the lost update of seed 002: the run's terminal status landed,
    # the attempt and task did not follow.
    NativeRun.objects.filter(id=run.id).update(status=NativeRun.Status.SUCCEEDED)

    summary = reconcile_pass()

    attempt.refresh_from_db()
    assert summary.synced == 1
    assert attempt.status == "succeeded" and PlanningTask.objects.get(id=task.id).status == "succeeded"


def test_a_second_pass_steps_aside_while_one_holds_the_lock():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [reconcile.ADVISORY_LOCK_KEY])
    try:
        from django.db import connections

        # Another connection, as another worker would have.
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [reconcile.ADVISORY_LOCK_KEY])
                assert cursor.fetchone()[0] is False
        finally:
            other.close()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [reconcile.ADVISORY_LOCK_KEY])
    assert reconcile_pass().skipped is False


def test_manage_py_reconcile_prints_a_summary():
    task = ext_task()
    fail_current(task)
    out = io.StringIO()
    call_command("reconcile", stdout=out)
    assert "retried 1" in out.getvalue() and "blocked 0" in out.getvalue()
    assert current(task).kind == "retry"


def test_pass_cost_does_not_grow_with_settled_history():
    def queries_of_a_pass() -> int:
        with CaptureQueriesContext(connection) as ctx:
            reconcile_pass()
        return len(ctx.captured_queries)

    procedure = ProcedureFactory()
    pending = TaskFactory(procedure=procedure)
    launch(pending)
    baseline = queries_of_a_pass()

    # Lots of settled history: succeeded attempts, bound terminal runs, events.
    for n in range(30):
        task = TaskFactory(procedure=procedure)
        attempt = launch(task)
        report(task, status="running", native_run_id=f"nr-h{n}", attempt=attempt)
        report(task, status="succeeded", native_run_id=f"nr-h{n}", attempt=attempt)
    assert PlanningTask.objects.filter(status="succeeded").count() == 30

    assert queries_of_a_pass() == baseline


QUERIES = {
    "unbound_runs": (lambda now: reconcile.unbound_runs(), "native_run_unbound"),
    "stale_attempts": (reconcile.stale_attempts, "attempt_current_status"),
    "active_attempts": (lambda now: reconcile.active_attempts(), "attempt_current_status"),
    "stuck_pending_attempts": (reconcile.stuck_pending_attempts, "attempt_current_status"),
    "failed_tasks": (lambda now: reconcile.failed_tasks(), "task_status_updated"),
    "tasks_lagging": (lambda now: reconcile.tasks_lagging(), "task_status_updated"),
}


def test_each_pass_query_reaches_its_rows_through_its_index():
    """On a table shaped like production (mostly settled history, a few
    active rows, fresh statistics), each query's plan reaches its rows
    through the named index, so the work is bounded by unsettled rows.
    Sequential scans are priced out because the test tables stay small."""
    procedure = ProcedureFactory(executor="external")
    for n in range(100):
        task = TaskFactory(procedure=procedure)
        attempt = launch(task)
        report(task, status="succeeded", native_run_id=f"nr-s{n}", attempt=attempt)
    fail_current(TaskFactory(procedure=procedure))
    launch(TaskFactory(procedure=procedure))
    with connection.cursor() as cursor:
        for table in ("retries_attempt", "retries_nativerun", "planning_planningtask"):
            cursor.execute(f"ANALYZE {table}")

    plans = {}
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
        for name, (build, index) in QUERIES.items():
            plans[name] = (index, build(timezone.now()).explain())
    missing = {name: plan for name, (index, plan) in plans.items() if index not in plan}
    assert not missing, "\n\n".join(f"{name}:\n{plan}" for name, plan in missing.items())


def test_tasks_lagging_finds_exactly_the_active_tasks_behind_their_current_attempt_or_run():
    done = ext_task()
    attempt = launch(done)
    report(done, status="succeeded", native_run_id="nr-done", attempt=attempt)
    run_ahead = ext_task()
    attempt = launch(run_ahead)
    ahead, _ = report(run_ahead, status="running", native_run_id="nr-ahead", attempt=attempt)
    active = ext_task()
    report(active, status="running", native_run_id="nr-active", attempt=launch(active))
    settled = ext_task()
    report(settled, status="succeeded", native_run_id="nr-settled", attempt=launch(settled))
    held = ext_task()
    attempt = launch(held)
    held_run, _ = report(held, status="running", native_run_id="nr-held", attempt=attempt)
    task_mark_inconsistent(task_id=held.id, problems=["checked by hand"])
    replaced = ext_task()
    attempt = launch(replaced)
    old_run, _ = report(replaced, status="running", native_run_id="nr-old", attempt=attempt)
    services.task_rerun(slug=replaced.slug, actor="operator", reason="again", supersede_active=True)
    # Lost updates (seed 002): rows that should have followed did not.
    PlanningTask.objects.filter(id=done.id).update(status=PlanningTask.Status.RUNNING)
    NativeRun.objects.filter(id__in=[ahead.id, held_run.id, old_run.id]).update(status=NativeRun.Status.SUCCEEDED)

    assert sorted(reconcile.tasks_lagging()) == sorted([done.id, run_ahead.id])

    assert reconcile_pass().synced == 2
    assert list(reconcile.tasks_lagging()) == []
    assert PlanningTask.objects.get(id=done.id).status == "succeeded"


def test_tasks_lagging_probes_current_attempts_per_active_task_instead_of_reading_them_all():
    """Its cost follows the active tasks, not every current attempt ever
    made: no hash over attempts or runs, only probes by task and attempt."""
    procedure = ProcedureFactory(executor="external")
    for n in range(60):
        task = TaskFactory(procedure=procedure)
        report(task, status="succeeded", native_run_id=f"nr-h{n}", attempt=launch(task))
    for n in range(3):
        task = TaskFactory(procedure=procedure)
        report(task, status="running", native_run_id=f"nr-a{n}", attempt=launch(task))
    with connection.cursor() as cursor:
        for table in ("retries_attempt", "retries_nativerun", "planning_planningtask"):
            cursor.execute(f"ANALYZE {table}")

    # As above: the test tables are small, so sequential scans are priced out.
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
        plan = reconcile.tasks_lagging().explain()

    assert "Hash" not in plan, plan
    # One probe of the current attempt per active task, then of its runs.
    assert plan.count("Index Cond: (task_id = planning_planningtask.id)") == 1, plan
    assert "Index Cond: (attempt_id = " in plan, plan
