"""Running management commands the way an operator does, and comparing the
database before and after a command that must write nothing."""

import io
from dataclasses import dataclass

from django.core.management import call_command
from django.core.management.base import CommandError

from planning.models import Event, PlanningTask
from retries.models import Attempt, NativeRun, RetiredNativeId


@dataclass
class Run:
    code: int
    out: str
    err: str


def run(*args: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except CommandError as exc:
        err.write(str(exc))
        return Run(exc.returncode, out.getvalue(), err.getvalue())
    return Run(0, out.getvalue(), err.getvalue())


def db_state() -> dict:
    """Every row an import, export or repair could touch."""
    return {
        "tasks": list(
            PlanningTask.objects.order_by("id").values_list(
                "slug", "status", "attempt_count", "inconsistent_since", "updated_at"
            )
        ),
        "attempts": list(
            Attempt.objects.order_by("id").values_list("id", "task_id", "number", "status", "superseded_at", "imported")
        ),
        "events": list(Event.objects.order_by("id").values_list("id", "type")),
        "retired": list(RetiredNativeId.objects.order_by("id").values_list("kind", "value")),
        "runs": list(NativeRun.objects.order_by("id").values_list("id", "binding")),
    }
