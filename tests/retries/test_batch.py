"""A batch of reports decides exactly like the same reports sent one by one
(rule 2 and the run/attempt/task projections), with a number of statements
that does not grow with the batch."""

import datetime as dt
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from planning.models import Event, PlanningTask
from retries import services
from retries.models import Attempt, NativeRun
from tests.factories import ProcedureFactory, ProjectFactory, TaskFactory
from tests.steps import fail_current, launch

pytestmark = pytest.mark.django_db

ROLES = ["bound", "legacy", "rerun", "draft", "race"]


def _world(prefix):
    """Five tasks in the states the rules tell apart, every name prefixed."""
    project = ProjectFactory(slug=f"{prefix}project")
    procedure = ProcedureFactory(slug=f"{prefix}procedure")
    tasks = {role: TaskFactory(slug=f"{prefix}{role}", project=project, procedure=procedure) for role in ROLES}
    for role in ("bound", "legacy", "race"):
        launch(tasks[role])
    old = fail_current(tasks["rerun"], native_run_id=f"{prefix}nr-old")
    services.task_rerun(slug=tasks["rerun"].slug, actor="operator", reason="again")
    attempts = {role: Attempt.objects.filter(task=t, superseded_at__isnull=True).first() for role, t in tasks.items()}
    return tasks, attempts, old


def _reports(prefix, attempts, old, requested_before):
    def r(role, run, status, *, claim=None, created_at=None, task=None, message="", native_task=None):
        return services.RunReport(
            executor="ext",
            native_task_id=native_task or f"{prefix}nt-{run}",
            native_run_id=f"{prefix}{run}",
            task=task if task is not None else f"{prefix}{role}",
            status=status,
            attempt_id=claim.id if claim is not None else None,
            created_at=created_at,
            message=message,
        )

    now = timezone.now()
    return [
        r("bound", "nr-1", "running", claim=attempts["bound"]),
        r("bound", "nr-1", "running", claim=attempts["bound"]),  # heartbeat
        r("bound", "nr-1", "succeeded", claim=attempts["bound"]),
        r("bound", "nr-1", "running", claim=attempts["bound"]),  # late
        r("legacy", "nr-2", "queued", created_at=now),
        r("legacy", "nr-3", "running", created_at=now),  # attempt already bound
        r("legacy", "nr-2", "failed", message="disk full"),
        r("rerun", "nr-old", "running"),  # a late report of the superseded attempt's run
        r("rerun", "nr-12", "running", created_at=now, native_task=f"nt-{prefix}nr-old"),  # retired id
        r("rerun", "nr-4", "running", claim=old),  # superseded attempt
        r("rerun", "nr-5", "running", created_at=requested_before),  # predates the attempt
        r("rerun", "nr-6", "running"),  # legacy without created_at
        r("draft", "nr-7", "running", created_at=now),  # no current attempt
        r("nobody", "nr-8", "running"),  # unknown task
        r("legacy", "nr-1", "failed", claim=attempts["bound"]),  # conflicts with nr-1's first report
        r("race", "nr-9", "queued", created_at=now),  # two legacy runs race: the first binds
        r("race", "nr-10", "queued", created_at=now),
        r("race", "nr-9", "running", created_at=now),
        r("rerun", "nr-11", "running", claim=attempts["rerun"]),
    ]


def _times_as_set(rows):
    # Times differ between the two runs; whether each one is set must not.
    return [{k: (v is not None) if isinstance(v, dt.datetime) or k.endswith("_at") else v for k, v in row.items()}
            for row in rows]


def _snapshot(prefix, tasks, since):
    """Rows and ledger facts with names, ids and times made comparable."""
    names = {}
    for attempt in Attempt.objects.filter(task__in=tasks.values()).select_related("task"):
        names[str(attempt.id)] = f"{attempt.task.slug.removeprefix(prefix)}#{attempt.number}"
    task_names = {t.id: t.slug.removeprefix(prefix) for t in tasks.values()}

    def norm(value):
        text = json.dumps(value, sort_keys=True, default=str).replace(prefix, "")
        for uid, name in names.items():
            text = text.replace(uid, name)
        return json.loads(text)

    task_rows = norm(list(PlanningTask.objects.filter(id__in=task_names).order_by("slug").values(
        "slug", "status", "attempt_count")))
    attempt_rows = norm(_times_as_set(Attempt.objects.filter(task_id__in=task_names).order_by("task__slug", "number").values(
        "id", "status", "native_task_id", "native_run_id", "failure_kind", "failure_phase", "failure_message",
        "superseded_at", "started_at", "finished_at", "last_heartbeat_at")))
    run_rows = norm(_times_as_set(NativeRun.objects.filter(native_run_id__startswith=prefix).order_by("executor", "native_run_id").values(
        "executor", "native_task_id", "native_run_id", "task_slug", "status", "phase", "message", "binding",
        "binding_reason", "attempt_id", "claimed_attempt_id", "created_at", "first_seen_at", "last_seen_at")))
    events = norm([
        (e.type, task_names.get(e.task_id), str(e.attempt_id) if e.attempt_id else None, e.data)
        for e in Event.objects.filter(id__gt=since).order_by("id")
        if e.task_id in task_names or prefix in json.dumps(e.data)
    ])
    return task_rows, attempt_rows, run_rows, events


def test_a_batch_leaves_the_same_rows_and_ledger_as_the_same_reports_one_by_one():
    requested_before = timezone.now() - dt.timedelta(hours=1)
    results = {}
    for prefix, batched in (("wa-", False), ("wb-", True)):
        tasks, attempts, old = _world(prefix)
        since = Event.objects.order_by("-id").values_list("id", flat=True).first()
        reports = _reports(prefix, attempts, old, requested_before)
        if batched:
            answers = services.native_run_report_batch(reports=reports, actor="executor")
        else:
            answers = [services.native_run_report(report=report, actor="executor") for report in reports]
        answered = [(run.native_run_id.removeprefix(prefix), run.status, run.binding, created) for run, created in answers]
        results[batched] = (_snapshot(prefix, tasks, since), answered)

    (single_rows, single_answers), (batch_rows, batch_answers) = results[False], results[True]
    assert batch_answers == single_answers
    for single, batch in zip(single_rows, batch_rows, strict=True):
        assert batch == single
    # The sequence exercised every rule it was written for.
    tasks, attempts, runs, events = batch_rows
    reasons = {r["native_run_id"]: r["binding_reason"] for r in runs}
    assert reasons == {
        "nr-1": None, "nr-2": None, "nr-3": "attempt_already_bound", "nr-old": None, "nr-12": "retired_native_id",
        "nr-4": "superseded", "nr-5": "predates_current_attempt", "nr-6": "legacy_run_without_created_at",
        "nr-7": "no_current_attempt", "nr-8": "unknown_task", "nr-9": None, "nr-10": "attempt_already_bound",
        "nr-11": None,
    }
    assert {t["slug"]: t["status"] for t in tasks} == {
        "bound": "succeeded", "legacy": "failed", "rerun": "running", "draft": "draft", "race": "running",
    }
    types = [e[0] for e in events]
    assert types.count("native_run.late_report") == 2 and types.count("native_run.conflicting_report") == 1
    assert [e[3]["status"] for e in events if e[0] == "task.status_changed" and e[1] == "bound"] == [
        "running", "succeeded"]


def _statements_for_batch(size, prefix):
    project = ProjectFactory(slug=f"{prefix}project")
    procedure = ProcedureFactory(slug=f"{prefix}procedure")
    reports = []
    for i in range(size):
        task = TaskFactory(slug=f"{prefix}{i}", project=project, procedure=procedure)
        attempt = launch(task)
        for status in ("running", "succeeded"):
            reports.append(services.RunReport(
                executor="ext", native_task_id=f"{prefix}nt-{i}", native_run_id=f"{prefix}nr-{i}", task=task.slug,
                status=status, attempt_id=attempt.id))
    reports.append(services.RunReport(
        executor="ext", native_task_id=f"{prefix}nt-x", native_run_id=f"{prefix}nr-x", task="unknown", status="running"))
    with CaptureQueriesContext(connection) as queries:
        answers = services.native_run_report_batch(reports=reports, actor="executor")
    assert len(answers) == 2 * size + 1
    assert PlanningTask.objects.filter(slug__startswith=prefix, status="succeeded").count() == size
    return len(queries.captured_queries)


def test_the_statements_of_a_batch_do_not_grow_with_its_size():
    small = _statements_for_batch(3, "sa-")
    large = _statements_for_batch(40, "la-")
    assert small == large
    assert large <= 16
