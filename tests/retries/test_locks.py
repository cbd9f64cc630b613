"""``retries.services.locks``: the two hand-written lock statements of a
new attempt read what the ORM's reads would, relations included, and the
native ids ``linked_native_ids`` would; the ORM fallback (SQLite) agrees."""

import pytest
from django.db import connection, transaction
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from planning.models import PlanningTask
from retries.models import Attempt
from retries.services.facts import linked_native_ids
from retries.services.locks import _elsewhere, lock_current_attempts, lock_tasks
from tests.factories import AgentFactory, PlanFactory, ProjectFactory, TaskFactory
from tests.steps import fail_current, launch, report

pytestmark = pytest.mark.django_db


def _tasks():
    """A draft with a plan and an assignee, a launched task, a failed one
    with a bound run, and one whose run also claims its attempt."""
    project = ProjectFactory()
    draft = TaskFactory(project=project, plan=PlanFactory(project=project), assignee=AgentFactory(name="frozen-one"))
    launched = TaskFactory()
    launch(launched)
    failed = TaskFactory()
    fail_current(failed, native_run_id="nr-failed")
    claimed = TaskFactory()
    attempt = launch(claimed)
    report(claimed, status="running", native_run_id="nr-claim", attempt=attempt)
    report(claimed, status="running", native_run_id="nr-second", attempt=attempt)
    return [draft, launched, failed, claimed]


def _fields(instance):
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def test_the_locks_read_what_the_orm_reads():
    made = _tasks()
    slugs = [t.slug for t in reversed(made)]
    expected = list(
        PlanningTask.objects.select_related("procedure", "project__owner", "plan", "assignee")
        .filter(slug__in=slugs)
        .order_by("id")
    )
    with transaction.atomic():
        tasks = lock_tasks(slugs=slugs)
        assert [t.id for t in tasks] == [t.id for t in expected]  # id order, whatever the slugs' order
        assert [_fields(t) for t in tasks] == [_fields(t) for t in expected]
        assert [t.id for t in lock_tasks(ids=[t.id for t in made])] == [t.id for t in expected]
        currents = lock_current_attempts(tasks)

    with CaptureQueriesContext(connection) as queries:
        for task, orm in zip(tasks, expected, strict=True):
            for name in ("procedure", "project", "plan", "assignee"):
                mine, theirs = getattr(task, name), getattr(orm, name)
                assert (mine is None) == (theirs is None)
                if mine is not None:
                    assert _fields(mine) == _fields(theirs)
            assert _fields(task.project.owner) == _fields(orm.project.owner)
        for attempt in currents.attempts.values():
            assert attempt.requested_assignee is None or attempt.requested_assignee.name
    assert queries.captured_queries == []  # every relation was loaded with the lock

    orm_currents = {a.task_id: a for a in Attempt.objects.filter(task__in=made, superseded_at__isnull=True)}
    assert {k: _fields(v) for k, v in currents.attempts.items()} == {k: _fields(v) for k, v in orm_currents.items()}
    assert made[0].id not in currents.attempts  # a draft has no attempt
    assert currents.native == linked_native_ids(list(orm_currents.values()))
    claimed = currents.attempts[made[3].id]
    assert {value for _, value in currents.native[claimed.id]} >= {"nr-claim", "nr-second"}


def test_the_orm_fallback_answers_the_same():
    made = _tasks()
    with transaction.atomic():
        tasks = lock_tasks(ids=[t.id for t in made])
        fast = lock_current_attempts(tasks)
        slow = _elsewhere(tasks)
    assert {k: _fields(v) for k, v in fast.attempts.items()} == {k: _fields(v) for k, v in slow.attempts.items()}
    assert fast.native == slow.native
    assert model_to_dict(tasks[0].procedure) == model_to_dict(PlanningTask.objects.get(id=tasks[0].id).procedure)


def test_no_tasks_no_statement():
    with CaptureQueriesContext(connection) as queries:
        assert lock_current_attempts([]).attempts == {}
    assert queries.captured_queries == []


def test_one_key_takes_the_statement_without_an_array():
    """One task is locked and read by ``= key``, which a prepared statement
    plans once; many by ``= ANY(keys)``; both find the same rows."""
    made = _tasks()
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        (one,) = lock_tasks(slugs=[made[2].slug])
        single = lock_current_attempts([one])
        many = lock_current_attempts(lock_tasks(ids=[t.id for t in made]))
    sqls = [q["sql"] for q in queries.captured_queries]
    assert ["ANY(" in sql for sql in sqls] == [False, False, True, True]
    assert single.attempts[one.id].id == many.attempts[one.id].id
    assert single.native == {k: v for k, v in many.native.items() if k == single.attempts[one.id].id}
