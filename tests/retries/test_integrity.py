"""Rule 7: rows are projections checked against the ledger."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from missioncontrol.errors import ServiceError
from retries import services
from retries.integrity import integrity_problems
from tests.factories import TaskFactory
from tests.steps import fail_current

pytestmark = pytest.mark.django_db


def test_clean_history_has_no_problems():
    task = TaskFactory()
    fail_current(task)
    services.task_rerun(slug=task.slug, actor="op", reason="again")
    assert integrity_problems() == []
    call_command("verify_integrity")


@pytest.mark.damages_rows
def test_damaged_rows_are_reported_marked_skipped_and_repaired():
    task = TaskFactory()
    attempt = fail_current(task)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE planning_planningtask SET status = 'succeeded' WHERE id = %s", [task.id])
        cursor.execute("UPDATE retries_attempt SET status = 'running' WHERE id = %s", [attempt.id])

    problems = [str(p) for p in integrity_problems()]
    assert any("status is succeeded but the ledger says failed" in p for p in problems)
    assert any("attempt #1 status is running but the ledger says failed" in p for p in problems)

    with pytest.raises(CommandError) as exc:
        call_command("verify_integrity")
    assert exc.value.returncode == 1
    task.refresh_from_db()
    assert task.inconsistent_since is not None and "ledger says failed" in task.inconsistency

    # An inconsistent task is not scheduled, nor rerun; only repaired.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE planning_planningtask SET status = 'failed' WHERE id = %s", [task.id])
    assert services.task_retry_or_block(task_id=task.id) is None
    with pytest.raises(ServiceError) as refused:
        services.task_rerun(slug=task.slug, actor="op", reason="x")
    assert refused.value.code == "inconsistent"

    services.task_repair(slug=task.slug, actor="admin", reason="rows damaged by a manual edit")
    task.refresh_from_db()
    assert task.inconsistent_since is None
    assert integrity_problems() == []
    call_command("verify_integrity")
