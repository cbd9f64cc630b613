"""The set-based retry of the reconcile pass does what the per-task service
does, task for task, in a fixed number of statements (issue 7, P3)."""


import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from planning import services as planning_services
from planning.models import Plan, PlanningTask
from retries import services
from retries.models import Attempt, RetiredNativeId
from tests.factories import AgentFactory, PlanFactory, ProjectFactory, TaskFactory
from tests.retries.compare import last_event_id, outcome
from tests.steps import fail_current, launch

pytestmark = pytest.mark.django_db


def phase(attempt, name, outcome="passed"):
    services.attempt_record_phase(attempt_id=attempt.id, phase=name, outcome=outcome, actor="ex")


def _build(p: str) -> tuple[dict[str, PlanningTask], dict[str, Plan]]:
    """Every case the retry distinguishes, created in this order (ids ascend
    with it). Native ids carry the prefix so the two copies do not share them."""
    project = ProjectFactory(slug=f"{p}-project", owner=AgentFactory(name=f"{p}-owner"))
    plans = {
        "paused": PlanFactory(name=f"{p}-paused", on_error=Plan.OnError.PAUSE, project=project),
        "continue": PlanFactory(name=f"{p}-continue", on_error=Plan.OnError.CONTINUE, project=project),
    }
    tasks: dict[str, PlanningTask] = {}

    tasks["preflight"] = t = TaskFactory(project=project, slug=f"{p}-preflight")
    phase(launch(t), "preflight", "failed")

    tasks["execute"] = t = TaskFactory(
        project=project, slug=f"{p}-execute", assignee=AgentFactory(name="retry-many-assignee")
    )
    a = launch(t)
    phase(a, "preflight")
    phase(a, "execute", "failed")

    tasks["finalize"] = t = TaskFactory(project=project, slug=f"{p}-finalize")
    a = launch(t)
    phase(a, "preflight")
    phase(a, "execute")
    phase(a, "finalize", "failed")

    tasks["bound"] = t = TaskFactory(project=project, slug=f"{p}-bound")
    fail_current(t, native_run_id=f"{p}-nr-bound")

    # A rerun starts a new chain: the first attempt's passes no longer count.
    tasks["rerun"] = t = TaskFactory(project=project, slug=f"{p}-rerun", max_attempts=5)
    a = launch(t)
    phase(a, "preflight")
    phase(a, "execute")
    phase(a, "finalize", "failed")
    rerun = services.task_rerun(slug=t.slug, actor="operator", reason="fresh").attempt
    phase(rerun, "preflight", "failed")

    # A retry chain: the second retry resumes after what the first passed.
    tasks["second_retry"] = t = TaskFactory(project=project, slug=f"{p}-second-retry", max_attempts=4)
    a = launch(t)
    phase(a, "preflight", "failed")
    retry = services.task_retry_or_block(task_id=t.id)
    phase(retry, "preflight")
    phase(retry, "execute", "failed")

    tasks["budget"] = t = TaskFactory(project=project, slug=f"{p}-budget", max_attempts=1)
    fail_current(t, native_run_id=f"{p}-nr-budget")

    tasks["paused"] = t = TaskFactory(project=project, slug=f"{p}-paused", plan=plans["paused"])
    phase(launch(t), "preflight", "failed")

    tasks["inconsistent"] = t = TaskFactory(project=project, slug=f"{p}-inconsistent")
    phase(launch(t), "preflight", "failed")
    planning_services.task_mark_inconsistent(task_id=t.id, problems=["test: marked by hand"])

    tasks["running"] = t = TaskFactory(project=project, slug=f"{p}-running")
    phase(launch(t), "preflight")

    tasks["in_plan"] = t = TaskFactory(project=project, slug=f"{p}-in-plan", plan=plans["continue"])
    phase(launch(t), "preflight", "failed")

    tasks["in_plan_blocked"] = t = TaskFactory(
        project=project, slug=f"{p}-in-plan-blocked", plan=plans["continue"], max_attempts=1
    )
    a = launch(t)
    phase(a, "preflight")
    phase(a, "execute", "failed")

    for t in tasks.values():
        t.refresh_from_db()
    return tasks, plans


def test_many_does_what_the_single_path_does_task_for_task():
    single_tasks, single_plans = _build("a")
    since = last_event_id()
    with services.deferred_plan_refresh():
        single_new = [
            attempt
            for task_id in sorted(t.id for t in single_tasks.values())
            if (attempt := services.task_retry_or_block(task_id=task_id)) is not None
        ]
    single = outcome("a", single_tasks, single_plans, since)

    many_tasks, many_plans = _build("b")
    since = last_event_id()
    # Unordered, with a repeat: the service sorts and dedupes.
    ids = [t.id for t in many_tasks.values()]
    many_new = services.task_retry_or_block_many(task_ids=[*reversed(ids), ids[0]])
    many = outcome("b", many_tasks, many_plans, since)

    assert [a.task.slug[2:] for a in many_new] == [a.task.slug[2:] for a in single_new]
    assert many["tasks"] == single["tasks"]
    assert many["plans"] == single["plans"]
    assert many["events"] == single["events"]
    assert many["order"] == single["order"]
    # The fixture covers what it claims: retries, a block, and skipped tasks.
    statuses = {role: value[0] for role, value in many["tasks"].items()}
    assert statuses["budget"] == statuses["in_plan_blocked"] == PlanningTask.Status.BLOCKED
    assert statuses["paused"] == statuses["inconsistent"] == PlanningTask.Status.FAILED
    assert statuses["running"] == PlanningTask.Status.RUNNING
    resumes = {role: value[2][-1][2] for role, value in many["tasks"].items()}
    assert resumes["preflight"] == "preflight" and resumes["execute"] == "execute"
    assert resumes["finalize"] == "finalize" and resumes["rerun"] == "preflight"
    assert resumes["second_retry"] == "execute"
    assert many["tasks"]["bound"][3] == [("run", "X-nr-bound"), ("task", "nt-X-nr-bound")]
    assert many["tasks"]["execute"][2][-1][3] == "retry-many-assignee"


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
