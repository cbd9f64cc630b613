"""The set-based retry of the reconcile pass does what the per-task service
does, task for task, in a fixed number of statements (issue 7, P3)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from planning.models import Plan, PlanningTask
from retries import services
from retries.models import Attempt, RetiredNativeId
from tests.factories import PlanFactory, TaskFactory
from tests.retries.compare import last_event_id
from tests.steps import fail_current, launch

pytestmark = pytest.mark.django_db


def phase(attempt, name, outcome="passed"):
    services.attempt_record_phase(attempt_id=attempt.id, phase=name, outcome=outcome, actor="ex")


def test_many_with_nothing_to_do_writes_nothing():
    task = TaskFactory()
    launch(task)
    since = last_event_id()
    assert services.task_retry_or_block_many(task_ids=[task.id, 999_999_999]) == []
    assert services.task_retry_or_block_many(task_ids=[]) == []
    assert last_event_id() == since
    assert Attempt.objects.filter(task=task).count() == 1


def _failed_tasks(n: int, plan: Plan) -> list[int]:
    ids = []
    for i in range(n):
        # Every third task has spent its budget and is blocked; the others
        # have a bound run whose native ids the retry retires.
        task = TaskFactory(plan=plan, project=plan.project, max_attempts=1 if i % 3 == 2 else 3)
        fail_current(task, native_run_id=f"{plan.name}-nr-{i}")
        ids.append(task.id)
    return ids


def _statements(ids: list[int]) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        attempts = services.task_retry_or_block_many(task_ids=ids)
    return len(queries.captured_queries), len(attempts)


def test_statement_count_does_not_grow_with_the_number_of_tasks():
    small = _failed_tasks(5, PlanFactory(name="small"))
    large = _failed_tasks(40, PlanFactory(name="large"))

    small_count, small_retried = _statements(small)
    large_count, large_retried = _statements(large)

    assert (small_retried, large_retried) == (4, 27)
    assert small_count == large_count
    assert PlanningTask.objects.filter(id__in=large, status=PlanningTask.Status.BLOCKED).count() == 13
    assert RetiredNativeId.objects.filter(task_id__in=large).count() == 2 * 27
