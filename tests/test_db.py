"""``missioncontrol.db``: the set-based UPDATE and INSERTs write what the
ORM's bulk methods would, and unique lookups find one row or none."""

import datetime as dt
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from missioncontrol.db import Writes, insert_columns, unique_or_none
from planning.models import Event, PlanningTask
from retries.models import Attempt, RetiredNativeId
from tests.factories import AgentFactory, TaskFactory
from tests.steps import launch

pytestmark = pytest.mark.django_db


def bulk_update_rows(rows, fields):
    writes = Writes()
    writes.update_rows(rows, fields)
    writes.send()


def bulk_insert_rows(rows):
    writes = Writes()
    writes.insert_rows(rows)
    writes.send()


def _attempts(n: int) -> list[Attempt]:
    return [launch(TaskFactory()) for _ in range(n)]


# It writes rows around the services on purpose, so the ledger disagrees.
@pytest.mark.damages_rows
def test_writes_each_row_its_own_values_in_one_statement():
    attempts = _attempts(3)
    agent = AgentFactory(name="frozen")
    when = timezone.now() - dt.timedelta(hours=1)
    # Mixed values per row: text, NULL, a foreign key, a time and an enum.
    attempts[0].failure_message, attempts[0].requested_assignee, attempts[0].started_at = "boom", agent, when
    attempts[1].failure_message, attempts[1].requested_assignee, attempts[1].started_at = "", None, None
    attempts[2].failure_message, attempts[2].status = "x" * 500, Attempt.Status.LAUNCHING
    untouched = {a.id: a.reason for a in attempts}
    attempts[2].reason = "not in the field list: must not be written"

    with CaptureQueriesContext(connection) as queries:
        bulk_update_rows(attempts, ["failure_message", "requested_assignee", "started_at", "status"])
    assert len(queries.captured_queries) == 1

    rows = {a.id: a for a in Attempt.objects.filter(id__in=[a.id for a in attempts])}
    first, second, third = (rows[a.id] for a in attempts)
    assert (first.failure_message, first.requested_assignee_id, first.started_at) == ("boom", agent.id, when)
    assert (second.failure_message, second.requested_assignee_id, second.started_at) == ("", None, None)
    assert (third.failure_message, third.status) == ("x" * 500, Attempt.Status.LAUNCHING)
    assert {a.id: a.reason for a in rows.values()} == untouched


def test_nothing_to_write_is_no_statement():
    attempts = _attempts(1)
    with CaptureQueriesContext(connection) as queries:
        bulk_update_rows([], ["status"])
        bulk_update_rows(attempts, [])
    assert queries.captured_queries == []


def test_json_columns_take_the_orm_path():
    task = TaskFactory(params={"a": 1})
    task.params = {"b": [1, 2], "c": None}
    bulk_update_rows([task], ["params"])
    task.refresh_from_db()
    assert task.params == {"b": [1, 2], "c": None}


def test_unique_or_none_finds_one_row_or_none_without_ordering():
    task = TaskFactory(slug="only-one")
    with CaptureQueriesContext(connection) as queries:
        found = unique_or_none(PlanningTask.objects.filter(slug="only-one"))
    assert found == task
    assert "ORDER BY" not in queries.captured_queries[0]["sql"]
    assert unique_or_none(PlanningTask.objects.filter(slug="none-such")) is None


@pytest.mark.damages_rows  # attempts inserted without their ledger events
def test_bulk_insert_rows_writes_what_bulk_create_would():
    tasks = {1: TaskFactory(), 2: TaskFactory()}
    agent = AgentFactory(name="inserted-for")
    now = timezone.now()
    rows = [
        Attempt(
            id=uuid.uuid4(),
            task=tasks[n],
            number=n,
            kind=Attempt.Kind.RETRY,
            requested_by="t",
            requested_at=now,
            reason=f"r{n}",
            requested_assignee=agent if n == 1 else None,
            resume_phase="execute" if n == 2 else None,
        )
        for n in (1, 2)
    ]
    with CaptureQueriesContext(connection) as queries:
        bulk_insert_rows(rows)
    assert len(queries.captured_queries) == 1
    stored = {a.number: a for a in Attempt.objects.filter(task__in=tasks.values())}
    assert (stored[1].requested_assignee_id, stored[1].resume_phase, stored[1].status) == (agent.id, None, "pending")
    assert (stored[2].requested_assignee_id, stored[2].resume_phase, stored[2].imported) == (None, "execute", False)
    assert all(not r._state.adding for r in rows)
    bulk_insert_rows([])


@pytest.mark.damages_rows  # events and retired ids written around the services
def test_insert_columns_writes_rows_given_as_columns_in_one_statement():
    task = TaskFactory()
    attempt = launch(task)
    now = timezone.now()
    before = Event.objects.count()
    with CaptureQueriesContext(connection) as queries:
        insert_columns(
            Event,
            {
                "at": [now, now],
                "type": ["t.one", "t.two"],
                "actor": ["a", "b"],
                "task_id": [task.id, None],
                "plan_id": [None, None],
                "attempt_id": [attempt.id, None],
                "data": [{"k": [1, None]}, {}],
            },
        )
    assert len(queries.captured_queries) == 1
    one, two = Event.objects.order_by("id")[before:]
    # In the order given, JSON kept as JSON, NULLs as NULL.
    assert (one.type, one.task_id, one.attempt_id, one.data) == ("t.one", task.id, attempt.id, {"k": [1, None]})
    assert (two.type, two.task_id, two.attempt_id, two.data) == ("t.two", None, None, {})

    retired = {
        "kind": ["run"],
        "value": ["nr-x"],
        "task_id": [task.id],
        "attempt_id": [attempt.id],
        "retired_at": [now],
    }
    insert_columns(RetiredNativeId, retired, ignore_conflicts=True)
    insert_columns(RetiredNativeId, {**retired, "retired_at": [now + dt.timedelta(hours=1)]}, ignore_conflicts=True)
    assert list(RetiredNativeId.objects.filter(value="nr-x").values_list("retired_at", flat=True)) == [now]
    with CaptureQueriesContext(connection) as queries:
        insert_columns(Event, {"type": []})
        insert_columns(Event, {})
    assert queries.captured_queries == []


# It writes attempt rows around the services on purpose.
@pytest.mark.damages_rows
def test_writes_go_in_one_statement_in_the_order_added():
    """An attempt superseded and its successor inserted in the same
    statement: the partial unique index (one current attempt per task) is
    checked row by row, so this only works if the UPDATE runs first."""
    old = launch(TaskFactory())
    now = timezone.now()
    new = Attempt(id=uuid.uuid4(), task_id=old.task_id, number=2, kind="rerun", status="pending", requested_at=now)
    old.superseded_at, old.superseded_by_id = now, new.id
    writes = Writes()
    writes.update_rows([old], ["superseded_at", "superseded_by"])
    writes.insert_rows([new])
    writes.insert_columns(
        RetiredNativeId,
        {"kind": ["run"], "value": ["nr-x"], "task_id": [old.task_id], "attempt_id": [old.id], "retired_at": [now]},
    )

    with CaptureQueriesContext(connection) as queries:
        writes.send()

    assert len(queries.captured_queries) == 1
    assert queries.captured_queries[0]["sql"].startswith("WITH w0 AS (UPDATE")
    assert Attempt.objects.get(id=old.id).superseded_by_id == new.id
    assert Attempt.objects.get(task_id=old.task_id, superseded_at__isnull=True).id == new.id
    assert RetiredNativeId.objects.filter(attempt_id=old.id, value="nr-x").exists()
    assert len(writes) == 0  # sent once, then empty


@pytest.mark.damages_rows
def test_writes_in_the_wrong_order_break_the_unique_index():
    """The converse of the test above: it is the order that makes it work,
    not a constraint that is never checked."""
    from django.db import IntegrityError, transaction

    old = launch(TaskFactory())
    now = timezone.now()
    new = Attempt(id=uuid.uuid4(), task_id=old.task_id, number=2, kind="rerun", status="pending", requested_at=now)
    old.superseded_at, old.superseded_by_id = now, new.id
    writes = Writes()
    writes.insert_rows([new])
    writes.update_rows([old], ["superseded_at", "superseded_by"])
    with pytest.raises(IntegrityError), transaction.atomic():
        writes.send()


def test_writes_with_nothing_to_write_send_nothing():
    writes = Writes()
    writes.update_rows([], ["status"])
    writes.insert_rows([])
    writes.insert_columns(RetiredNativeId, {"kind": []})
    with CaptureQueriesContext(connection) as queries:
        writes.send()
    assert queries.captured_queries == []


@pytest.mark.damages_rows
def test_one_row_goes_in_as_values_and_many_as_one_json_array_with_the_same_result():
    """A single row is written from plain values, many from one JSON array
    of rows (both cheaper for psycopg to send than arrays); the rows read
    back are what was set either way, NULLs and JSON included."""
    one, *many = _attempts(3)
    when = timezone.now()
    for attempt in (one, *many):
        attempt.failure_message, attempt.started_at = f"boom {attempt.number}", None
        attempt.status = Attempt.Status.LAUNCHING
    with CaptureQueriesContext(connection) as queries:
        bulk_update_rows([one], ["failure_message", "started_at", "status"])
        bulk_update_rows(many, ["failure_message", "started_at", "status"])
        insert_columns(
            Event,
            {"at": [when], "type": ["test.one"], "actor": ["t"], "data": [{"nested": [1, None, "x"]}]},
        )
    sqls = [q["sql"] for q in queries.captured_queries]
    assert "VALUES (" in sqls[0] and "unnest(" not in sqls[0]
    assert "jsonb_array_elements(" in sqls[1]
    assert "VALUES (" in sqls[2]
    for attempt in (one, *many):
        row = Attempt.objects.get(id=attempt.id)
        assert (row.failure_message, row.started_at, row.status) == (attempt.failure_message, None, "launching")
    assert Event.objects.get(type="test.one").data == {"nested": [1, None, "x"]}
