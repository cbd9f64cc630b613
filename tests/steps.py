"""Small steps that bring a task into a state through the real services."""

import datetime as dt
import uuid

from django.utils import timezone

from planning.models import PlanningTask
from retries import services
from retries.models import Attempt


def launch(task: PlanningTask) -> Attempt:
    return services.task_launch(slug=task.slug, actor="operator").attempt


def report(
    task: PlanningTask,
    *,
    status: str,
    native_run_id: str,
    attempt: Attempt | None = None,
    native_task_id: str | None = None,
    created_at: dt.datetime | None = None,
    executor: str = "ext",
    phase: str = "",
    message: str = "",
):
    return services.native_run_report(
        report=services.RunReport(
            executor=executor,
            native_task_id=native_task_id or f"nt-{native_run_id}",
            native_run_id=native_run_id,
            task=task.slug,
            status=status,
            attempt_id=attempt.id if attempt is not None else None,
            created_at=created_at,
            phase=phase,
            message=message,
        ),
        actor="executor",
    )


def fail_current(task: PlanningTask, native_run_id: str | None = None) -> Attempt:
    """Launch if needed, bind a native run to the current attempt and fail it."""
    task.refresh_from_db()
    if task.status == PlanningTask.Status.DRAFT:
        launch(task)
    attempt = Attempt.objects.get(task=task, superseded_at__isnull=True)
    run_id = native_run_id or f"nr-{uuid.uuid4().hex[:8]}"
    report(task, status="running", native_run_id=run_id, attempt=attempt)
    report(task, status="failed", native_run_id=run_id, attempt=attempt, message="boom")
    attempt.refresh_from_db()
    task.refresh_from_db()
    return attempt


def current(task: PlanningTask) -> Attempt:
    return Attempt.objects.get(task=task, superseded_at__isnull=True)


def ago(seconds: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(seconds=seconds)


def is_heartbeat_statement(sql: str) -> bool:
    """The heartbeat's one statement (``retries/services/heartbeats.py``),
    told from a service's combined write, which also starts with WITH."""
    return sql.lstrip().startswith("WITH target AS")
