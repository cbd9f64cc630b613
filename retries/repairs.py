"""What a repair (rule 9) would do to each task, read without changing
anything: for ``repair_tasks --dry-run``, the command's per-task output and
the admin's confirmation page. Four queries, whatever the number of tasks.

The repair itself is ``retries.services.task_repair``; this mirrors its
decisions (which attempts, which native ids, which number, which frozen
assignee) so that what an admin is shown is what will happen."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from planning.models import PlanningTask

from .models import Attempt, NativeRun, RetiredNativeId


@dataclass
class RepairPreview:
    slug: str
    task: PlanningTask | None = None
    # Why the repair would be refused (unknown task, never launched), or None.
    refusal: str | None = None
    current_number: int | None = None
    superseded_numbers: list[int] = field(default_factory=list)
    native_ids_to_retire: list[str] = field(default_factory=list)
    next_number: int | None = None
    assignee: str | None = None
    assignee_source: str = ""

    @property
    def ok(self) -> bool:
        return self.refusal is None

    def describe(self, *, explicit_assignee: str | None = None) -> str:
        if not self.ok:
            return self.refusal
        task = self.task
        parts = [f"status {task.status}"]
        if task.inconsistent_since is not None:
            parts.append(f"inconsistent ({task.inconsistency})")
        if self.current_number is not None:
            parts.append(f"supersede current attempt #{self.current_number}")
        if self.superseded_numbers:
            parts.append("keep earlier attempts " + ", ".join(f"#{n}" for n in self.superseded_numbers) + " superseded")
        parts.append(
            "retire native ids " + ", ".join(self.native_ids_to_retire) if self.native_ids_to_retire else "no native id left to retire"
        )
        if explicit_assignee:
            assignee = f"{explicit_assignee} (given)"
        else:
            assignee = f"{self.assignee or 'nobody'} ({self.assignee_source})"
        parts.append(f"start repair attempt #{self.next_number} for {assignee}")
        return "; ".join(parts)


def repair_previews(slugs: list[str]) -> list[RepairPreview]:
    """One preview per slug, in the order given."""
    tasks = {
        t.slug: t
        for t in PlanningTask.objects.select_related("project__owner", "assignee").filter(slug__in=set(slugs))
    }
    attempts: dict[int, list[Attempt]] = defaultdict(list)
    for attempt in (
        Attempt.objects.select_related("requested_assignee")
        .filter(task_id__in=[t.id for t in tasks.values()])
        .order_by("number")
    ):
        attempts[attempt.task_id].append(attempt)
    linked: dict[int, set[str]] = defaultdict(set)
    for attempt_list in attempts.values():
        for attempt in attempt_list:
            linked[attempt.task_id].update(v for v in (attempt.native_task_id, attempt.native_run_id) if v)
    for task_id, native_task_id, native_run_id in NativeRun.objects.filter(
        attempt__task_id__in=[t.id for t in tasks.values()]
    ).values_list("attempt__task_id", "native_task_id", "native_run_id"):
        linked[task_id].update((native_task_id, native_run_id))
    retired = set(
        RetiredNativeId.objects.filter(value__in=set().union(*linked.values()) if linked else set()).values_list(
            "value", flat=True
        )
    )
    previews = []
    for slug in slugs:
        task = tasks.get(slug)
        preview = RepairPreview(slug=slug, task=task)
        previews.append(preview)
        if task is None:
            preview.refusal = "unknown task"
            continue
        if task.status == PlanningTask.Status.DRAFT:
            preview.refusal = "never launched: launch it instead"
            continue
        task_attempts = attempts.get(task.id, [])
        current = next((a for a in task_attempts if a.superseded_at is None), None)
        preview.current_number = current.number if current else None
        preview.superseded_numbers = [a.number for a in task_attempts if a.superseded_at is not None]
        preview.native_ids_to_retire = sorted(linked.get(task.id, set()) - retired)
        preview.next_number = max((a.number for a in task_attempts), default=0) + 1
        # The same order as the service (rule 3): the current attempt's frozen
        # assignee, else the task's assignee, else the project owner.
        if current is not None and current.requested_assignee_id is not None:
            preview.assignee = current.requested_assignee.name
            preview.assignee_source = f"frozen on attempt #{current.number}"
        elif task.assignee_id is not None:
            preview.assignee = task.assignee.name
            preview.assignee_source = "task assignee"
        else:
            preview.assignee = task.project.owner.name
            preview.assignee_source = "project owner"
    return previews
