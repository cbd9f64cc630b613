"""List endpoints read a fixed number of queries, whatever their size."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import AgentFactory, PlanFactory, ProcedureFactory, ProjectFactory, TaskFactory
from tests.steps import fail_current, launch, report

pytestmark = pytest.mark.django_db


def grow(task, n):
    """n more tasks, plans, attempts, phases, runs and events."""
    for i in range(n):
        AgentFactory()
        ProcedureFactory()
        ProjectFactory()
        plan = PlanFactory(project=task.project)
        other = TaskFactory(project=task.project, procedure=task.procedure, plan=plan)
        fail_current(other)
        attempt = launch(TaskFactory(project=task.project, procedure=task.procedure, plan=plan))
        report(attempt.task, status="running", native_run_id=f"grow-{task.slug}-{i}", attempt=attempt)
        fail_current(task)
        from retries.services import task_rerun

        task_rerun(slug=task.slug, actor="op", reason="again", override_budget=True)


URLS = [
    "/api/v1/tasks/",
    "/api/v1/plans/",
    "/api/v1/native-runs/",
    "/api/v1/agents/",
    "/api/v1/projects/",
    "/api/v1/procedures/",
    "/api/v1/tasks/{slug}/attempts/",
    "/api/v1/tasks/{slug}/events/",
    "/api/v1/tasks/{slug}/",
]


@pytest.mark.parametrize("path", URLS)
def test_query_count_does_not_grow_with_the_data(viewer, task, path, django_assert_num_queries):
    url = path.format(slug=task.slug)
    grow(task, 1)
    viewer.get(url)  # warm the role cache the same way for both sizes
    with CaptureQueriesContext(connection) as small:
        assert viewer.get(url).status_code == 200
    assert len(small) <= 7, [q["sql"] for q in small.captured_queries]
    grow(task, 3)
    with django_assert_num_queries(len(small)):
        response = viewer.get(url)
    assert response.status_code == 200
    body = response.json()
    if "results" in body:
        assert body["count"] >= 4
