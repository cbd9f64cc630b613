"""List endpoints read a fixed number of queries, whatever their size."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import AgentFactory, PlanFactory, ProcedureFactory, ProjectFactory, TaskFactory
from tests.steps import fail_current, is_heartbeat_statement, launch, report

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


def _kind(sql: str) -> str:
    """A statement by its first word; the heartbeat's one statement and a
    service's combined write (``missioncontrol.db.Writes``) by name."""
    if sql.startswith("WITH w0 AS ("):
        return "WRITES"
    if is_heartbeat_statement(sql):
        return "HEARTBEAT"
    return sql.split(maxsplit=1)[0]


def test_the_statements_of_a_single_report(task):
    """What a single POST /native-runs/ sends, by kind of report (issue 14):
    a new run, a status change, a heartbeat. The token is read once and
    cached; the counts include BEGIN and COMMIT where there is a transaction."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    from missioncontrol.api.services import api_token_create
    from retries.models import Attempt
    from tests.factories import TEST_EXECUTORS
    from tests.steps import launch

    attempt = launch(task)
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {api_token_create(username='x', role='executor', executors=TEST_EXECUTORS).key}"
    )
    client.get("/api/v1/tasks/")  # the token is cached from here on

    def post(status: str) -> list[str]:
        body = {
            "executor": "ext",
            "native_task_id": "nt",
            "native_run_id": "nr",
            "task": task.slug,
            "attempt_id": str(attempt.id),
            "status": status,
        }
        with CaptureQueriesContext(connection) as queries:
            response = client.post("/api/v1/native-runs/", body, format="json")
        assert response.status_code in (200, 201), response.content
        return [_kind(q["sql"]) for q in queries.captured_queries]

    # Runs seen by earlier tests of this process would count as known.
    from retries.services import known_runs_clear

    known_runs_clear()
    new = post("running")
    # A run this process has not seen skips the heartbeat try: BEGIN, lock
    # tasks, attempts, runs, claimed attempts with retired ids, INSERT run,
    # then the attempt, the task and the ledger facts in one write, COMMIT
    assert new == ["SAVEPOINT", "SELECT", "SELECT", "SELECT", "SELECT", "INSERT", "WRITES", "RELEASE"], new
    Attempt.objects.filter(id=attempt.id).update(last_heartbeat_at=None)
    from retries.models import NativeRun

    NativeRun.objects.update(last_seen_at="2000-01-01T00:00:00Z")
    assert post("running") == ["HEARTBEAT"]  # one statement
    change = post("succeeded")
    # BEGIN, the heartbeat's place taken by the three locks, one write, COMMIT
    assert change == ["SAVEPOINT", "SELECT", "SELECT", "SELECT", "WRITES", "RELEASE"], change
    # Inside the test's own transaction BEGIN shows as a SAVEPOINT; a
    # service's atomic block is the only one.
    assert new.count("SAVEPOINT") == change.count("SAVEPOINT") == 1, (new, change)


def test_a_batch_and_a_single_report_leave_plan_choice_to_postgresql(task):
    """Neither forces custom or generic plans: with the rows as one JSON
    parameter and keys as arrays, a batch's statements keep one text
    whatever its size, and PostgreSQL's own choice (custom for the first
    runs, then generic where it costs no more) beat forcing custom plans by
    about a third of PostgreSQL's CPU per report (docs/performance.md)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from retries import services

    def report(run_id: str) -> services.RunReport:
        return services.RunReport(
            executor="ext", native_task_id=f"nt-{run_id}", native_run_id=run_id, task=task.slug, status="running"
        )

    with CaptureQueriesContext(connection) as batch:
        services.native_run_report_batch(reports=[report("a"), report("b")], actor="x")
    with CaptureQueriesContext(connection) as single:
        services.native_run_report(report=report("c"), actor="x")
    sqls = [q["sql"] for q in (*batch.captured_queries, *single.captured_queries)]
    assert not [sql for sql in sqls if "plan_cache_mode" in sql]
    assert len(batch.captured_queries) <= 8, [q["sql"][:60] for q in batch.captured_queries]
