"""Rule 5 (no lost updates) and rule 4 under real concurrency: threads on
separate database connections, released together by a barrier."""

import threading

import pytest
from django.db import connection

from planning.models import Plan
from planning.selectors import plan_counts
from retries import services
from retries.models import Attempt
from tests.factories import PlanFactory, ProcedureFactory, ProjectFactory, TaskFactory
from tests.steps import fail_current, launch, report

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def run_together(functions):
    """Run each function in its own thread and connection, all released at
    once. Returns (results, errors) in the order given."""
    barrier = threading.Barrier(len(functions))
    results = [None] * len(functions)
    errors = [None] * len(functions)

    def worker(i, fn):
        try:
            barrier.wait()
            results[i] = fn()
        except BaseException as exc:  # collected and asserted on by the caller
            errors[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, fn)) for i, fn in enumerate(functions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def test_twenty_concurrent_superseding_reruns_keep_numbers_contiguous():
    task = TaskFactory(max_attempts=100)
    launch(task)

    results, errors = run_together(
        [
            lambda i=i: services.task_rerun(slug=task.slug, actor=f"op-{i}", reason="race", supersede_active=True)
            for i in range(20)
        ]
    )

    assert errors == [None] * 20
    numbers = sorted(Attempt.objects.filter(task=task).values_list("number", flat=True))
    assert numbers == list(range(1, 22))
    assert Attempt.objects.filter(task=task, superseded_at__isnull=True).count() == 1
    assert sorted(r.attempt.number for r in results) == list(range(2, 22))
    task.refresh_from_db()
    assert task.attempt_count == 21 and task.status == "launch_requested"


def test_twenty_concurrent_reruns_with_one_key_make_one_attempt():
    task = TaskFactory()
    fail_current(task)

    results, errors = run_together(
        [lambda: services.task_rerun(slug=task.slug, actor="op", reason="once", idempotency_key="same-key")] * 20
    )

    assert errors == [None] * 20
    assert Attempt.objects.filter(task=task).count() == 2
    assert {r.attempt.id for r in results} == {Attempt.objects.get(task=task, number=2).id}
    assert sum(r.created for r in results) == 1


@pytest.mark.parametrize("on_error", [Plan.OnError.CONTINUE, Plan.OnError.PAUSE])
def test_sibling_reports_at_the_same_instant_never_overwrite_each_other(on_error):
    """Seed 002: one job fails while two complete at the same instant."""
    project, procedure = ProjectFactory(), ProcedureFactory()
    for round_ in range(50):
        plan = PlanFactory(project=project, on_error=on_error)
        tasks = [TaskFactory(project=project, procedure=procedure, plan=plan) for _ in range(3)]
        attempts = [launch(t) for t in tasks]
        for task, attempt in zip(tasks, attempts, strict=True):
            report(task, status="running", native_run_id=f"nr-{task.slug}", attempt=attempt)
        outcomes = ["failed", "succeeded", "succeeded"]

        _, errors = run_together(
            [
                lambda t=t, a=a, o=o: report(t, status=o, native_run_id=f"nr-{t.slug}", attempt=a)
                for t, a, o in zip(tasks, attempts, outcomes, strict=True)
            ]
        )

        assert errors == [None, None, None], round_
        for task, outcome in zip(tasks, outcomes, strict=True):
            task.refresh_from_db()
            assert task.status == outcome, round_
        assert plan_counts([plan.id])[plan.id] == {"failed": 1, "succeeded": 2}, round_
        plan.refresh_from_db()
        expected = Plan.Status.PAUSED if on_error == Plan.OnError.PAUSE else Plan.Status.FAILED
        assert plan.status == expected, round_


def test_concurrent_batches_over_the_same_tasks_do_not_deadlock():
    tasks = [TaskFactory() for _ in range(6)]
    attempts = [launch(t) for t in tasks]

    def batch(order):
        return services.native_run_report_batch(
            reports=[
                services.RunReport(
                    executor="e",
                    native_task_id=f"nt-{i}",
                    native_run_id=f"nr-{i}",
                    task=tasks[i].slug,
                    status="running",
                    attempt_id=attempts[i].id,
                )
                for i in order
            ],
            actor="e",
        )

    _, errors = run_together([lambda: batch(range(6)), lambda: batch(reversed(range(6)))] * 3)

    assert errors == [None] * 6
    for attempt in attempts:
        attempt.refresh_from_db()
        assert attempt.status == "running" and attempt.native_run_id is not None


def test_concurrent_batches_of_unknown_tasks_runs_neither_deadlock_nor_duplicate():
    def batch(order):
        return services.native_run_report_batch(
            reports=[
                services.RunReport(
                    executor="e",
                    native_task_id=f"nt-{i}",
                    native_run_id=f"orphan-{i}",
                    task="no-such-task",
                    status="running",
                )
                for i in order
            ],
            actor="e",
        )

    results, errors = run_together([lambda: batch(range(8)), lambda: batch(reversed(range(8)))] * 2)

    assert errors == [None] * 4
    from retries.models import NativeRun

    assert NativeRun.objects.filter(native_run_id__startswith="orphan-").count() == 8
    assert set(NativeRun.objects.values_list("binding_reason", flat=True)) == {"unknown_task"}
    assert [r.native_run_id for r, _ in results[1]] == [f"orphan-{i}" for i in reversed(range(8))]
