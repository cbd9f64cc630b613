"""The old runtime of the demo, still alive: it keeps reporting its old
failed run. Beat runs ``demo_stale_report`` every 15 s when
``DEMO_STALE_REPORTER`` is on (``make run`` only)."""

from __future__ import annotations

from django.utils import timezone

from planning.models import PlanningTask
from retries import services
from retries.models import NativeRun

from .load import history_entries

LEGACY_EXECUTOR = "legacy-runtime"


def _report_old_run(entry: dict, status: str, message: str = "") -> NativeRun:
    run, _ = services.native_run_report(
        report=services.RunReport(
            executor=LEGACY_EXECUTOR,
            native_task_id=entry["nativeTaskId"],
            native_run_id=entry["nativeRunId"],
            task=entry["planningTaskId"],
            status=status,
            # The newer runtime stamped the attempt id; the oldest did not.
            attempt_id=entry["attemptId"],
            created_at=timezone.now(),
            phase="execute",
            message=message,
        ),
        actor=LEGACY_EXECUTOR,
    )
    return run


def demo_stale_report() -> int:
    """The old runtime is still alive: it keeps reporting its old failed run,
    under the old attempt id or (the oldest runs) with none. Its ids were
    retired by the import, so Mission Control refuses it every time; it shows
    as rejected on the native runs page, its last-seen time moving."""
    sent = 0
    for entry in history_entries():
        if PlanningTask.objects.filter(slug=entry["planningTaskId"]).exists():
            _report_old_run(entry, NativeRun.Status.RUNNING, message="relinking to the old task")
            sent += 1
    return sent
