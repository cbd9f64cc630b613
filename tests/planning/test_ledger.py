"""The ledger is append-only, held by PostgreSQL itself."""

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from planning.models import Event
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "sql",
    ["UPDATE planning_event SET type = 'forged' WHERE id = %s", "DELETE FROM planning_event WHERE id = %s"],
)
def test_raw_update_or_delete_of_a_ledger_row_fails(sql):
    TaskFactory()
    event = Event.objects.first()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [event.id])
    event.refresh_from_db()
    assert event.type == "task.created"


def test_orm_update_and_delete_fail_too():
    TaskFactory()
    with pytest.raises(DatabaseError), transaction.atomic():
        Event.objects.update(actor="someone else")
    with pytest.raises(DatabaseError), transaction.atomic():
        Event.objects.all().delete()
    assert Event.objects.filter(actor="tests").count() == 1
