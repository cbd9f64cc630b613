"""Tasks in the states the dashboard shows, made through the real services."""

import datetime as dt

from django.utils import timezone

from planning import services as planning_services
from planning.models import Event, PlanningTask
from retries import services
from retries.models import Attempt
from tests.factories import TaskFactory
from tests.steps import fail_current, launch, report


def failed_task(**kwargs) -> PlanningTask:
    task = TaskFactory(**kwargs)
    fail_current(task)
    return task


def phase_failed_task(**kwargs) -> PlanningTask:
    """Failed in ``execute`` after ``preflight`` passed."""
    task = TaskFactory(**kwargs)
    attempt = launch(task)
    services.attempt_record_phase(attempt_id=attempt.id, phase="preflight", outcome="passed", actor="ex")
    services.attempt_record_phase(
        attempt_id=attempt.id, phase="execute", outcome="failed", message="disk full on worker-3", actor="ex"
    )
    task.refresh_from_db()
    return task


def running_task(**kwargs) -> PlanningTask:
    task = TaskFactory(**kwargs)
    attempt = launch(task)
    services.attempt_record_phase(attempt_id=attempt.id, phase="preflight", outcome="passed", actor="ex")
    task.refresh_from_db()
    return task


def succeeded_task(**kwargs) -> PlanningTask:
    task = TaskFactory(**kwargs)
    attempt = launch(task)
    for phase in task.procedure.phases:
        services.attempt_record_phase(attempt_id=attempt.id, phase=phase, outcome="passed", actor="ex")
    task.refresh_from_db()
    return task


def stalled_task(**kwargs) -> PlanningTask:
    task = TaskFactory(**kwargs)
    attempt = launch(task)
    services.attempt_mark_launching(attempt_id=attempt.id)
    services.attempt_fail_if_stalled(attempt_id=attempt.id, now=timezone.now() + dt.timedelta(days=1))
    task.refresh_from_db()
    return task


def blocked_task(**kwargs) -> PlanningTask:
    kwargs.setdefault("max_attempts", 1)
    task = failed_task(**kwargs)
    services.task_retry_or_block(task_id=task.id)
    task.refresh_from_db()
    return task


def inconsistent_task(**kwargs) -> PlanningTask:
    task = failed_task(**kwargs)
    planning_services.task_mark_inconsistent(task_id=task.id, problems=["attempt #1 disagrees with the ledger"])
    task.refresh_from_db()
    return task


def rerun(task: PlanningTask, **kwargs) -> Attempt:
    kwargs.setdefault("reason", "again")
    return services.task_rerun(slug=task.slug, actor="tests", **kwargs).attempt


def rich_history(task: PlanningTask, reruns: int) -> PlanningTask:
    """Fail and rerun a task ``reruns`` times, with a stale run rejected
    each time: many attempts, phases, native runs and events."""
    for n in range(reruns):
        old = fail_current(task, native_run_id=f"nr-{task.slug}-{n}")
        rerun(task, override_budget=True)
        report(task, status="running", native_run_id=f"stale-{task.slug}-{n}", attempt=old)
    task.refresh_from_db()
    return task


def snapshot(task: PlanningTask) -> tuple:
    """What a refused request must leave untouched."""
    task.refresh_from_db()
    return (
        task.status,
        task.attempt_count,
        Attempt.objects.filter(task=task).count(),
        Event.objects.filter(task=task).count(),
    )
