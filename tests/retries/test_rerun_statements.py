"""A rerun's statement budget and the order of its ledger facts, which are
written with one INSERT (integrity reads the last status event by id)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from planning.models import Event
from retries import services
from retries.models import Attempt, RetiredNativeId
from tests.factories import TaskFactory
from tests.steps import fail_current, launch

pytestmark = pytest.mark.django_db


def _rerun(task, **kwargs):
    with CaptureQueriesContext(connection) as queries:
        services.task_rerun(slug=task.slug, actor="operator", reason="again", **kwargs)
    return len(queries.captured_queries)


def test_rerun_of_a_bound_attempt_takes_five_statements_and_appends_its_facts_in_order():
    task = TaskFactory()
    old = fail_current(task, native_run_id="nr-1")
    last_id = Event.objects.order_by("-id").values_list("id", flat=True).first()

    with CaptureQueriesContext(connection) as queries:
        services.task_rerun(slug=task.slug, actor="operator", reason="again")
    # BEGIN, the task lock (no join), the attempt lock with the task's
    # relations and the bound runs, one write, COMMIT
    assert len(queries.captured_queries) == 5
    lock, currents, write = (q["sql"] for q in queries.captured_queries[1:4])
    assert " JOIN " not in lock and lock.endswith("FOR UPDATE")
    assert "FOR UPDATE" in currents and "retries_nativerun" in currents
    # retire, supersede, insert the attempt, move the task, append the facts
    assert write.startswith('WITH w0 AS (INSERT INTO "retries_retirednativeid"')
    order = [
        write.index(part)
        for part in (
            'UPDATE "retries_attempt"',
            'INSERT INTO "retries_attempt"',
            'UPDATE "planning_planningtask"',
            'INSERT INTO "planning_event"',
        )
    ]
    assert order == sorted(order)

    new = Attempt.objects.get(task=task, superseded_at__isnull=True)
    facts = list(Event.objects.filter(id__gt=last_id).order_by("id").values_list("type", "attempt_id", "data"))
    assert [(t, a) for t, a, _ in facts] == [
        ("attempt.superseded", old.id),
        ("attempt.requested", new.id),
        ("task.status_changed", None),
    ]
    assert facts[0][2]["retired_native_ids"] == ["nr-1", "nt-nr-1"]
    assert facts[2][2] == {"from": "failed", "status": "launch_requested", "attempt": 2}
    assert RetiredNativeId.objects.filter(attempt=old).count() == 2


def test_rerun_of_an_attempt_that_never_ran_still_retires_what_claimed_it():
    """No native id on the attempt, but a run may have claimed it (rule 2:
    a claim counts), so the runs are still read with the attempt; nothing to
    retire: still one write, so 5 statements."""
    task = TaskFactory()
    launch(task)
    services.task_cancel(slug=task.slug, actor="operator", reason="stop")

    assert _rerun(task) == 5
    assert not RetiredNativeId.objects.filter(task=task).exists()


def test_superseding_an_active_attempt_saves_its_cancel_and_supersede_in_one_update():
    task = TaskFactory()
    old = launch(task)
    last_id = Event.objects.order_by("-id").values_list("id", flat=True).first()

    _rerun(task, supersede_active=True)

    old.refresh_from_db()
    assert old.status == Attempt.Status.CANCELLED and old.failure_kind == "superseded"
    assert old.superseded_at is not None
    types = list(Event.objects.filter(id__gt=last_id).order_by("id").values_list("type", "data__status"))
    assert types == [
        ("attempt.status_changed", "cancelled"),
        ("attempt.superseded", None),
        ("attempt.requested", "pending"),
    ]  # the task was launch_requested already: no task fact
