"""A batch of reports decides exactly like the same reports sent one by one
(rule 2 and the run/attempt/task projections), with a number of statements
that does not grow with the batch."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from planning.models import PlanningTask
from retries import services
from tests.factories import ProcedureFactory, ProjectFactory, TaskFactory
from tests.steps import launch

pytestmark = pytest.mark.django_db

ROLES = ["bound", "legacy", "rerun", "draft", "race"]


def _statements_for_batch(size, prefix):
    project = ProjectFactory(slug=f"{prefix}project")
    procedure = ProcedureFactory(slug=f"{prefix}procedure")
    reports = []
    for i in range(size):
        task = TaskFactory(slug=f"{prefix}{i}", project=project, procedure=procedure)
        attempt = launch(task)
        for status in ("running", "succeeded"):
            reports.append(
                services.RunReport(
                    executor="ext",
                    native_task_id=f"{prefix}nt-{i}",
                    native_run_id=f"{prefix}nr-{i}",
                    task=task.slug,
                    status=status,
                    attempt_id=attempt.id,
                )
            )
    reports.append(
        services.RunReport(
            executor="ext",
            native_task_id=f"{prefix}nt-x",
            native_run_id=f"{prefix}nr-x",
            task="unknown",
            status="running",
        )
    )
    with CaptureQueriesContext(connection) as queries:
        answers = services.native_run_report_batch(reports=reports, actor="executor")
    assert len(answers) == 2 * size + 1
    assert PlanningTask.objects.filter(slug__startswith=prefix, status="succeeded").count() == size
    return len(queries.captured_queries)


def test_the_statements_of_a_batch_do_not_grow_with_its_size():
    small = _statements_for_batch(3, "sa-")
    large = _statements_for_batch(40, "la-")
    assert small == large
    assert large <= 16
