"""Celery tasks. Each takes ids (never model instances, which would be stale
by the time a worker runs) and calls one function that does the work through
the services. Settings make delivery at-least-once (acks_late,
reject_on_worker_lost), so every task here is safe to run twice."""

from __future__ import annotations

import uuid

from celery import shared_task
from django.db import DatabaseError

from missioncontrol.observability.metrics import reconcile_timer
from retries import executors
from retries.executors import local
from retries.reconcile import reconcile_pass


@shared_task(
    name="retries.tasks.launch_attempt",
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=5,
)
def launch_attempt(attempt_id: str) -> str:
    return executors.attempt_launch(attempt_id=uuid.UUID(attempt_id))


@shared_task(name="retries.tasks.cancel_attempt", autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=5)
def cancel_attempt(attempt_id: str) -> None:
    executors.attempt_cancel(attempt_id=uuid.UUID(attempt_id))


@shared_task(name="retries.tasks.run_phase", autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=5)
def run_phase(attempt_id: str, phase: str) -> str:
    return local.run_phase(attempt_id=uuid.UUID(attempt_id), phase=phase)


@shared_task(name="retries.tasks.reconcile")
def reconcile() -> dict:
    # Timed here, not in reconcile_pass: mc_reconcile_pass_duration_seconds.
    with reconcile_timer() as timer:
        summary = reconcile_pass()
        timer.done(skipped=summary.skipped)
    return summary.as_dict()


@shared_task(name="retries.tasks.demo_stale_report")
def demo_stale_report() -> int:
    from retries.demo.stale import demo_stale_report as report  # noqa: PLC0415 - the demo code loads only when this demo task runs

    return report()
