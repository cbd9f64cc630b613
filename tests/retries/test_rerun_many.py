"""The bulk rerun (``task_rerun_many``) gives every task what a single
rerun gives it, all or nothing, in a fixed number of statements."""

import threading

import pytest
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext

from missioncontrol.errors import ServiceError
from planning.models import Plan, PlanningTask
from retries import services
from retries.models import Attempt, IdempotencyKey, RetiredNativeId
from tests.factories import PlanFactory, TaskFactory
from tests.retries.compare import last_event_id
from tests.steps import current, fail_current, launch, report

pytestmark = pytest.mark.django_db
TS = PlanningTask.Status


ARGS = {"actor": "operator", "reason": "rerun them all", "override_budget": True, "supersede_active": True}


def test_one_refusal_refuses_all_and_changes_nothing():
    ok = TaskFactory(slug="ok")
    fail_current(ok)
    done = TaskFactory(slug="done")
    attempt = launch(done)
    report(done, status="succeeded", native_run_id="nr-done", attempt=attempt)
    active = TaskFactory(slug="active")
    launch(active)
    TaskFactory(slug="draft")
    since = last_event_id()

    with pytest.raises(ServiceError) as exc:
        services.task_rerun_many(slugs=["ok", "done", "active", "draft"], actor="operator", reason="all")
    assert exc.value.code == "rerun_refused"
    assert {slug: msgs[0].split(":")[0] for slug, msgs in exc.value.errors.items()} == {
        "done": "use_repair",
        "active": "attempt_active",
        "draft": "not_launched",
    }
    assert last_event_id() == since
    ok.refresh_from_db()
    assert Attempt.objects.filter(task=ok).count() == 1 and ok.status == TS.FAILED

    with pytest.raises(ServiceError) as exc:
        services.task_rerun_many(slugs=["ok", "ghost"], actor="operator", reason="all")
    assert exc.value.code == "not_found" and set(exc.value.errors) == {"ghost"}
    for slugs, reason in ((["ok", "ok"], "twice"), ([], "none"), (["ok"], " ")):
        with pytest.raises(ServiceError) as exc:
            services.task_rerun_many(slugs=slugs, actor="operator", reason=reason)
        assert exc.value.code == "invalid"
    assert last_event_id() == since


def test_a_key_replays_the_first_bulk_rerun_and_refuses_another_body():
    tasks = [TaskFactory() for _ in range(3)]
    for t in tasks:
        fail_current(t)
    slugs = [t.slug for t in tasks]
    first = services.task_rerun_many(slugs=slugs, actor="operator", reason="again", idempotency_key="k1")
    assert IdempotencyKey.objects.filter(key="k1").count() == 3
    since = last_event_id()
    again = services.task_rerun_many(
        slugs=list(reversed(slugs)), actor="operator", reason="again", idempotency_key="k1"
    )
    assert all(r.replayed and not r.created for r in again)
    assert [r.attempt.id for r in again] == [r.attempt.id for r in reversed(first)]
    assert last_event_id() == since
    with pytest.raises(ServiceError) as exc:
        services.task_rerun_many(slugs=slugs, actor="operator", reason="other reason", idempotency_key="k1")
    assert exc.value.code == "idempotency_key_reused"
    # A single rerun under the same key is a different request too.
    with pytest.raises(ServiceError):
        services.task_rerun(
            slug=slugs[0], actor="operator", reason="again", idempotency_key="k1", supersede_active=True
        )


def _failed(n: int, plan: Plan) -> list[str]:
    slugs = []
    for i in range(n):
        task = TaskFactory(plan=plan, project=plan.project, slug=f"{plan.name}-{i}")
        fail_current(task, native_run_id=f"{plan.name}-nr-{i}")
        slugs.append(task.slug)
    return slugs


def _statements(slugs: list[str]) -> int:
    with CaptureQueriesContext(connection) as queries:
        services.task_rerun_many(slugs=slugs, actor="operator", reason="bulk")
    return len(queries.captured_queries)


def test_statement_count_does_not_grow_with_the_number_of_tasks():
    small = _failed(3, PlanFactory(name="small", on_error=Plan.OnError.CONTINUE))
    large = _failed(30, PlanFactory(name="large", on_error=Plan.OnError.CONTINUE))
    assert _statements(small) == _statements(large)
    assert RetiredNativeId.objects.filter(task__slug__in=large).count() == 60
    assert all(current(PlanningTask.objects.get(slug=s)).number == 2 for s in large)


@pytest.mark.django_db(transaction=True)
def test_overlapping_bulk_reruns_at_once_rerun_each_task_once():
    """Two operators rerun overlapping sets at the same moment, in opposite
    orders: the task locks (taken in id order) serialize them without a
    deadlock; the second finds the shared tasks active and changes nothing."""
    tasks = [TaskFactory(slug=f"overlap-{i}") for i in range(12)]
    for t in tasks:
        fail_current(t)
    sets = [[t.slug for t in tasks[:8]], [t.slug for t in reversed(tasks[4:])]]
    barrier = threading.Barrier(2)
    outcomes: list = [None, None]

    def operator(i: int) -> None:
        try:
            barrier.wait()
            outcomes[i] = len(services.task_rerun_many(slugs=sets[i], actor=f"op{i}", reason="race"))
        except ServiceError as exc:
            outcomes[i] = exc.code
        finally:
            close_old_connections()

    threads = [threading.Thread(target=operator, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(map(str, outcomes)) == ["8", "rerun_refused"], outcomes
    winner = outcomes.index(8)
    rerun = set(sets[winner])
    for t in tasks:
        assert Attempt.objects.filter(task=t).count() == (2 if t.slug in rerun else 1)
