"""A batch meets a concurrent insert of one of its new native runs: it
rolls back to its savepoint, finds the committed run and applies its report
to it, with no duplicate and no report applied twice."""

import threading
import time

import pytest
from django.db import connection, transaction

from planning.models import Event
from retries import services
from retries.models import Attempt, NativeRun
from tests.factories import TaskFactory
from tests.steps import launch

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def _orphan(status):
    return services.RunReport(
        executor="e", native_task_id="nt-x", native_run_id="nr-x", task="no-such-task", status=status
    )


def _batch_waits_on_the_run_insert() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO \"retries_nativerun\"%%'"
        )
        return cursor.fetchone()[0] > 0


def test_a_batch_whose_new_run_is_inserted_concurrently_retries_and_applies_to_it():
    task = TaskFactory()
    attempt = launch(task)
    inserted, release = threading.Event(), threading.Event()
    outcome = {}

    def first():
        try:
            with transaction.atomic():
                services.native_run_report(report=_orphan("queued"), actor="first")
                inserted.set()
                release.wait(60)
        finally:
            connection.close()

    def second():
        try:
            inserted.wait(60)
            outcome["answers"] = services.native_run_report_batch(
                reports=[
                    services.RunReport(
                        executor="e",
                        native_task_id="nt-1",
                        native_run_id="nr-1",
                        task=task.slug,
                        status="running",
                        attempt_id=attempt.id,
                    ),
                    _orphan("running"),
                ],
                actor="second",
            )
        except BaseException as exc:  # asserted on below
            outcome["error"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(1200):
            if _batch_waits_on_the_run_insert():
                break
            time.sleep(0.05)
        else:
            pytest.fail("the batch never reached its insert of nr-x")
    finally:
        release.set()
        for thread in threads:
            thread.join()

    assert "error" not in outcome, outcome.get("error")
    (bound, bound_created), (orphan, orphan_created) = outcome["answers"]
    assert bound_created is True and bound.binding == NativeRun.Binding.BOUND
    assert orphan_created is False and orphan.status == "running"
    assert NativeRun.objects.filter(native_run_id="nr-x").count() == 1
    reported = list(
        Event.objects.filter(type="native_run.reported", data__native_run_id="nr-x")
        .order_by("id")
        .values_list("actor", "data__status")
    )
    assert reported == [("first", "queued"), ("second", "running")]
    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.RUNNING
    assert Event.objects.filter(attempt_id=attempt.id, type="attempt.status_changed").count() == 1
