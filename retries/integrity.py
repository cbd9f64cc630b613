"""Rule 7: the ledger is the truth; rows are projections checked against it.

``integrity_problems`` re-derives every task's and attempt's status from the
last status-bearing event and reports each row that disagrees. Its cost is a
fixed number of queries, each using the (task|attempt, type, id) indexes.
It also checks the board's per-status counts (``TaskStatusCount``) against
the tasks: a problem of no one task (``task_id`` None), which
``verify_integrity --repair`` rebuilds."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Subquery

from planning.ledger import ATTEMPT_STATUS_EVENTS, TASK_STATUS_EVENTS
from planning.models import Event, PlanningTask
from planning.selectors import task_counts_by_status
from planning.services import task_mark_inconsistent, task_status_counts

from .models import Attempt

COUNTS_SUBJECT = "task status counts"


@dataclass(frozen=True)
class Problem:
    task_id: int | None  # None: not one task's problem (the status counts)
    task_slug: str
    message: str

    def __str__(self) -> str:
        return f"{self.task_slug}: {self.message}"


def integrity_problems() -> list[Problem]:
    problems: list[Problem] = []
    last_task_status = Subquery(
        Event.objects.filter(task_id=OuterRef("pk"), type__in=TASK_STATUS_EVENTS)
        .order_by("-id")
        .values("data__status")[:1]
    )
    tasks = (
        PlanningTask.objects.annotate(ledger_status=last_task_status, n_attempts=Count("attempts"))
        .values_list("id", "slug", "status", "ledger_status", "attempt_count", "n_attempts")
        .order_by("id")
    )
    for task_id, slug, status, ledger_status, attempt_count, n_attempts in tasks.iterator(chunk_size=2000):
        if ledger_status is None:
            problems.append(Problem(task_id, slug, "no task.created event in the ledger"))
        elif ledger_status != status:
            problems.append(Problem(task_id, slug, f"status is {status} but the ledger says {ledger_status}"))
        if attempt_count != n_attempts:
            problems.append(
                Problem(task_id, slug, f"attempt_count is {attempt_count} but it has {n_attempts} attempts")
            )

    last_attempt_status = Subquery(
        Event.objects.filter(attempt_id=OuterRef("pk"), type__in=ATTEMPT_STATUS_EVENTS)
        .order_by("-id")
        .values("data__status")[:1]
    )
    superseded_in_ledger = Exists(Event.objects.filter(attempt_id=OuterRef("pk"), type="attempt.superseded"))
    attempts = (
        Attempt.objects.annotate(ledger_status=last_attempt_status, ledger_superseded=superseded_in_ledger)
        .values_list(
            "task_id",
            "task__slug",
            "number",
            "status",
            "ledger_status",
            "superseded_at",
            "ledger_superseded",
            "imported",
        )
        .order_by("task_id", "number")
    )
    current_per_task: dict[int, int] = defaultdict(int)
    for task_id, slug, number, status, ledger_status, superseded_at, ledger_superseded, imported in attempts.iterator(
        chunk_size=2000
    ):
        if ledger_status is None:
            problems.append(Problem(task_id, slug, f"attempt #{number} has no request event in the ledger"))
        elif ledger_status != status:
            problems.append(
                Problem(task_id, slug, f"attempt #{number} status is {status} but the ledger says {ledger_status}")
            )
        if superseded_at is None:
            current_per_task[task_id] += 1
        if not imported and (superseded_at is not None) != ledger_superseded:
            problems.append(
                Problem(
                    task_id,
                    slug,
                    f"attempt #{number} superseded mark ({superseded_at is not None}) "
                    f"disagrees with the ledger ({ledger_superseded})",
                )
            )
    problems.extend(status_count_problems())
    return problems


def status_count_problems() -> list[Problem]:
    """The projection of tasks per status must say what the tasks say."""
    real = task_counts_by_status()
    projected = task_status_counts()
    return [
        Problem(
            None,
            COUNTS_SUBJECT,
            f"{status}: the board counts {projected.get(status, 0)} but {real.get(status, 0)} tasks have it "
            "(verify_integrity --repair rebuilds the counts)",
        )
        for status in sorted(set(real) | set(projected))
        if real.get(status, 0) != projected.get(status, 0)
    ]


def integrity_verify_and_mark(*, actor: str = "system") -> list[Problem]:
    """Check everything and flag each inconsistent task so that
    reconciliation leaves it alone until a repair clears the flag."""
    problems = integrity_problems()
    by_task: dict[int, list[str]] = defaultdict(list)
    for problem in problems:
        if problem.task_id is not None:
            by_task[problem.task_id].append(problem.message)
    for task_id, messages in by_task.items():
        task_mark_inconsistent(task_id=task_id, problems=messages, actor=actor)
    return problems
