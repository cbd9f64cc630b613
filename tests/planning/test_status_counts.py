"""The per-status task counts the board reads (``TaskStatusCount``) are kept
by database triggers: every write path that changes task rows keeps them
equal to the real counts, a fold keeps the totals, and a damaged projection
is found by the integrity check and rebuilt (issue 7, P4)."""

import json
import threading

import pytest
from django.db import connection

from planning import services as planning_services
from planning.models import PlanningTask, TaskStatusCount
from retries import services
from retries.integrity import COUNTS_SUBJECT, integrity_problems
from retries.reconcile import reconcile_pass
from tests.commands.helpers import run
from tests.factories import ProcedureFactory, ProjectFactory, TaskFactory
from tests.steps import current, fail_current, launch, report


def real_counts() -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in PlanningTask.objects.values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


def assert_projection_matches():
    assert planning_services.task_status_counts() == real_counts()


def delta_rows() -> int:
    return TaskStatusCount.objects.count()


@pytest.mark.django_db
def test_single_transitions_keep_the_counts():
    task = TaskFactory()
    assert planning_services.task_status_counts() == {"draft": 1}
    attempt = launch(task)
    assert_projection_matches()
    report(task, status="running", native_run_id="nr-1", attempt=attempt)
    assert planning_services.task_status_counts() == {"running": 1}
    report(task, status="failed", native_run_id="nr-1", attempt=attempt)
    assert planning_services.task_status_counts() == {"failed": 1}
    services.task_rerun(slug=task.slug, actor="op", reason="again")
    services.task_cancel(slug=task.slug, actor="op", reason="stop")
    assert planning_services.task_status_counts() == {"cancelled": 1}


@pytest.mark.django_db
def test_an_update_that_changes_no_status_appends_nothing():
    task = TaskFactory()
    before = delta_rows()
    planning_services.task_update(slug=task.slug, title="renamed", actor="op")
    PlanningTask.objects.filter(id=task.id).update(title="renamed again")
    assert delta_rows() == before


@pytest.mark.django_db
def test_a_set_based_update_appends_one_row_per_status_changed():
    project, procedure = ProjectFactory(), ProcedureFactory()
    PlanningTask.objects.bulk_create(
        PlanningTask(slug=f"raw-{i}", title="raw", project=project, procedure=procedure, max_attempts=3)
        for i in range(30)
    )
    planning_services.task_status_counts_fold()
    folded = delta_rows()

    # 20 drafts become running, 10 stay: -20 draft, +20 running.
    ids = list(PlanningTask.objects.filter(slug__startswith="raw-").order_by("id").values_list("id", flat=True))
    PlanningTask.objects.filter(id__in=ids[:20]).update(status="running")

    assert delta_rows() == folded + 2
    assert planning_services.task_status_counts() == {"draft": 10, "running": 20}
    # Deletes (here of rows the ledger never knew) are counted out too.
    PlanningTask.objects.filter(id__in=ids[5:25]).delete()
    assert planning_services.task_status_counts() == {"draft": 5, "running": 5}
    PlanningTask.objects.filter(id__in=ids).delete()
    assert planning_services.task_status_counts() == {}


@pytest.mark.django_db
def test_batch_reports_and_batched_retries_keep_the_counts():
    tasks = [TaskFactory(max_attempts=2) for _ in range(6)]
    attempts = [launch(t) for t in tasks]
    services.native_run_report_batch(
        reports=[
            services.RunReport(
                executor="e",
                native_task_id=f"nt-{i}",
                native_run_id=f"nr-{i}",
                task=t.slug,
                status=status,
                attempt_id=a.id,
            )
            for i, (t, a) in enumerate(zip(tasks, attempts, strict=True))
            for status in ("running", "failed" if i % 2 else "succeeded")
        ],
        actor="executor",
    )
    assert planning_services.task_status_counts() == {"succeeded": 3, "failed": 3}

    services.task_retry_or_block_many(task_ids=[t.id for t in tasks[1::2]])
    assert_projection_matches()
    assert planning_services.task_status_counts() == {"succeeded": 3, "launch_requested": 3}
    for t in tasks[1::2]:
        fail_current(t)
    services.task_retry_or_block_many(task_ids=[t.id for t in tasks[1::2]])
    assert planning_services.task_status_counts() == {"succeeded": 3, "blocked": 3}


@pytest.mark.django_db
def test_an_import_keeps_the_counts(tmp_path):
    task = TaskFactory()
    path = tmp_path / "history.json"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "entries": [
                    {
                        "planningTaskId": task.slug,
                        "attemptId": "0b6f4c1e-2b1a-4a53-9d43-5c1d2f7e9a10",
                        "attemptNumber": 1,
                        "requestedAt": "2026-11-02T09:14:00Z",
                        "requestedAssigneeId": None,
                        "nativeTaskId": "nt-1",
                        "nativeRunId": "nr-1",
                        "status": "failed",
                        "supersededAt": None,
                        "supersededByAttemptId": None,
                    }
                ],
            }
        )
    )

    assert run("import_retry_history", str(path)).code == 0

    assert planning_services.task_status_counts() == {"failed": 1}


@pytest.mark.django_db
def test_fold_keeps_the_totals_in_one_row_per_status():
    for i in range(4):
        fail_current(TaskFactory(slug=f"f{i}"))
    TaskFactory(slug="d1")
    before = planning_services.task_status_counts()
    rows = delta_rows()
    assert rows > len(before)

    removed = planning_services.task_status_counts_fold()

    assert planning_services.task_status_counts() == before == real_counts()
    assert delta_rows() == len(before) == rows - removed
    assert sorted(TaskStatusCount.objects.values_list("status", "n")) == sorted(before.items())
    assert planning_services.task_status_counts_fold() == 0


@pytest.mark.django_db
def test_a_reconcile_pass_folds_the_counts():
    for i in range(3):
        launch(TaskFactory(slug=f"t{i}"))
    reconcile_pass()
    assert list(TaskStatusCount.objects.values_list("status", "n")) == [("launch_requested", 3)]


@pytest.mark.django_db
def test_a_damaged_projection_is_found_and_rebuilt():
    fail_current(TaskFactory(slug="f1"))
    TaskFactory(slug="d1")
    TaskStatusCount.objects.create(status="running", n=7)
    TaskStatusCount.objects.create(status="failed", n=-1)

    problems = [p for p in integrity_problems() if p.task_slug == COUNTS_SUBJECT]
    assert sorted(str(p) for p in problems) == [
        f"{COUNTS_SUBJECT}: failed: the board counts 0 but 1 tasks have it (verify_integrity --repair rebuilds the counts)",
        f"{COUNTS_SUBJECT}: running: the board counts 7 but 0 tasks have it (verify_integrity --repair rebuilds the counts)",
    ]
    assert all(p.task_id is None for p in problems)
    checked = run("verify_integrity")
    assert checked.code == 1 and "2 disagreement(s) in 0 task(s)" in checked.err
    # Not a task's problem: no task is marked inconsistent for it.
    assert not PlanningTask.objects.filter(inconsistent_since__isnull=False).exists()

    repaired = run("verify_integrity", "--repair")

    assert repaired.code == 0, repaired.out + repaired.err
    assert "Rebuilt the task status counts: draft 1, failed 1." in repaired.out
    assert planning_services.task_status_counts() == {"draft": 1, "failed": 1}
    assert integrity_problems() == []


# --- Concurrency ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_concurrent_transitions_and_folds_keep_the_counts():
    """Eight threads move their own tasks through launch, bind, fail and
    rerun while two others fold: the deltas are insert-only, so nobody waits
    on a counter row and nothing is lost or counted twice."""
    tasks = [TaskFactory(slug=f"c{i}", max_attempts=5) for i in range(8)]
    barrier = threading.Barrier(10)
    errors: list[BaseException] = []

    def transitions(task):
        try:
            barrier.wait()
            for round_ in range(3):
                attempt = launch(task) if round_ == 0 else current(task)
                report(task, status="running", native_run_id=f"{task.slug}-{round_}", attempt=attempt)
                report(task, status="failed", native_run_id=f"{task.slug}-{round_}", attempt=attempt)
                services.task_rerun(slug=task.slug, actor="op", reason="race")
        except BaseException as exc:  # asserted on below
            errors.append(exc)
        finally:
            connection.close()

    def folds():
        try:
            barrier.wait()
            for _ in range(10):
                planning_services.task_status_counts_fold()
        except BaseException as exc:  # asserted on below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=transitions, args=(t,)) for t in tasks]
    threads += [threading.Thread(target=folds) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert planning_services.task_status_counts() == real_counts() == {"launch_requested": 8}
    planning_services.task_status_counts_fold()
    assert list(TaskStatusCount.objects.values_list("status", "n")) == [("launch_requested", 8)]
