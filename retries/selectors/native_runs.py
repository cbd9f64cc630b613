"""Reads behind the dashboard's native runs page: the runs that are not
bound to anything, and the attempt each one claimed, in a fixed number of
queries whatever the number of runs."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from retries.models import Attempt, NativeRun

from .tasks import count_of

TRIAGE_BINDINGS = (NativeRun.Binding.UNBOUND, NativeRun.Binding.REJECTED)


def native_runs_for_triage(*, binding: str = "", executor: str = "") -> QuerySet[NativeRun]:
    """Runs that are not bound to anything: waiting (unbound) or refused
    (rejected), newest report first."""
    qs = NativeRun.objects.select_related("task").filter(binding__in=[binding] if binding else TRIAGE_BINDINGS)
    if executor:
        qs = qs.filter(executor=executor)
    return qs.order_by("-last_seen_at", "-id")


def native_run_executors() -> list[str]:
    return list(NativeRun.objects.order_by("executor").values_list("executor", flat=True).distinct())


def attach_claimed_attempts(runs: list[NativeRun], *, attempts_window: int | None = None) -> list[NativeRun]:
    """Name the attempt each run claimed (number and task) in one query, and
    whether the task page shows it only with its whole timeline
    (``beyond_window``: more than ``attempts_window`` newer attempts)."""
    ids = {r.claimed_attempt_id for r in runs if r.claimed_attempt_id}
    newer = count_of(Attempt.objects.filter(task_id=OuterRef("task_id"), number__gt=OuterRef("number")))
    claimed = (
        {
            row["id"]: {**row, "beyond_window": attempts_window is not None and (row["newer"] or 0) >= attempts_window}
            for row in Attempt.objects.filter(id__in=ids)
            .annotate(newer=Subquery(newer))
            .values("id", "number", "task__slug", "superseded_at", "newer")
        }
        if ids
        else {}
    )
    for run in runs:
        run.claimed = claimed.get(run.claimed_attempt_id) if run.claimed_attempt_id else None
    return runs
