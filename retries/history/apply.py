"""Importing a retry history: parse and check the whole file, then (unless
it is a dry run) apply it in one transaction: historical attempts, retired
native ids, ledger events, and draft tasks moved to their history's status."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from planning.ledger import ledger_append
from planning.models import Agent, PlanningTask
from planning.services import plan_refresh, task_status_set
from retries.models import Attempt, RetiredNativeId

from .checks import check_against_database, check_native_ids
from .parse import Entry, HistoryImportError, in_file_order, retry_history_parse

# A draft task whose newest imported attempt ended takes the matching status.
TASK_STATUS_FOR_ENDED: dict[str, PlanningTask.Status] = {
    Attempt.Status.FAILED: PlanningTask.Status.FAILED,
    Attempt.Status.SUCCEEDED: PlanningTask.Status.SUCCEEDED,
    Attempt.Status.CANCELLED: PlanningTask.Status.CANCELLED,
}


@dataclass
class ImportedAttempt:
    index: int
    task: str
    number: int
    attempt_id: uuid.UUID
    status: str
    retired: list[str]


@dataclass
class ImportReport:
    dry_run: bool
    entries: int = 0
    imported: list[ImportedAttempt] = field(default_factory=list)
    # (index, task slug, number) of entries found already imported.
    skipped: list[tuple[int, str, int]] = field(default_factory=list)
    # task slug -> (from, to) for draft tasks moved to their history's status.
    status_changes: dict[str, tuple[str, str]] = field(default_factory=dict)


def retry_history_import(*, data: str | bytes, actor: str, dry_run: bool = False) -> ImportReport:
    """Validate the whole file, then (unless ``dry_run``) apply it in one
    transaction. Raises ``HistoryImportError`` listing every problem, with
    nothing written, when anything is wrong."""
    entries, problems = retry_history_parse(data)
    if problems:
        raise HistoryImportError(in_file_order(problems))
    report = ImportReport(dry_run=dry_run, entries=len(entries))
    now = timezone.now()
    with transaction.atomic():
        # Lock order: tasks (by id), then their attempts, then native runs.
        tasks = {
            t.slug: t
            for t in PlanningTask.objects.select_for_update(of=("self",))
            .filter(slug__in={e.task_slug for e in entries})
            .order_by("id")
        }
        task_ids = [t.id for t in tasks.values()]
        attempts = list(
            Attempt.objects.select_for_update(of=("self",))
            .select_related("task")
            .filter(task_id__in=task_ids)
            .order_by("task_id", "number")
        )
        # Attempts of other tasks the file names (as its own id or as a
        # successor) are only read: their tasks are not ours to lock.
        named = {e.attempt_id for e in entries if e.attempt_id} | {e.superseded_by for e in entries if e.superseded_by}
        attempts += list(Attempt.objects.select_related("task").filter(id__in=named).exclude(task_id__in=task_ids))
        new, done = check_against_database(entries, tasks, attempts, problems)
        check_native_ids(new, problems)
        if problems:
            raise HistoryImportError(in_file_order(problems))
        report.skipped = [(e.index, e.task_slug, e.number) for e in done]
        ids = {e.index: e.attempt_id or uuid.uuid4() for e in new}
        file_ids = {e.attempt_id: ids.get(e.index, e.attempt_id) for e in entries if e.attempt_id}
        for entry in new:
            report.imported.append(
                ImportedAttempt(
                    index=entry.index,
                    task=entry.task_slug,
                    number=entry.number,
                    attempt_id=ids[entry.index],
                    status=entry.status,
                    retired=[v for v in (entry.native_task_id, entry.native_run_id) if v],
                )
            )
        report.status_changes = _draft_status_changes(new, tasks, attempts)
        if dry_run or not new:
            return report
        _apply(new, tasks, ids, file_ids, report, actor=actor, now=now)
    return report


def _draft_status_changes(
    new: list[Entry], tasks: dict[str, PlanningTask], attempts: list[Attempt]
) -> dict[str, tuple[str, str]]:
    newest: dict[str, tuple[int, str]] = {}
    for attempt in attempts:
        if attempt.imported and attempt.task.slug in tasks:
            newest[attempt.task.slug] = max(newest.get(attempt.task.slug, (0, "")), (attempt.number, attempt.status))
    for entry in new:
        newest[entry.task_slug] = max(newest.get(entry.task_slug, (0, "")), (entry.number, entry.status))
    changes: dict[str, tuple[str, str]] = {}
    for slug in sorted({e.task_slug for e in new}):
        task = tasks[slug]
        target = TASK_STATUS_FOR_ENDED.get(newest[slug][1])
        if task.status == PlanningTask.Status.DRAFT and target is not None:
            changes[slug] = (task.status, target)
    return changes


def _apply(
    new: list[Entry],
    tasks: dict[str, PlanningTask],
    ids: dict[int, uuid.UUID],
    file_ids: dict[uuid.UUID, uuid.UUID],
    report: ImportReport,
    *,
    actor: str,
    now: dt.datetime,
) -> None:
    agents = {a.name: a for a in Agent.objects.filter(name__in={e.assignee for e in new if e.assignee})}
    # Superseded-by links may point at attempts created in this same batch;
    # PostgreSQL checks the foreign key at commit, when all rows exist.
    for entry in sorted(new, key=lambda e: (tasks[e.task_slug].id, e.number)):
        task = tasks[entry.task_slug]
        attempt_id = ids[entry.index]
        superseded_by = file_ids.get(entry.superseded_by, entry.superseded_by) if entry.superseded_by else None
        superseded_at = entry.superseded_at or now
        attempt = Attempt.objects.create(
            id=attempt_id,
            task=task,
            number=entry.number,
            kind=Attempt.Kind.INITIAL if entry.number == 1 else Attempt.Kind.RERUN,
            status=entry.status,
            requested_by=actor,
            requested_at=entry.requested_at,
            reason="Imported from the legacy retry history.",
            requested_assignee=agents.get(entry.assignee) if entry.assignee else None,
            superseded_at=superseded_at,
            superseded_by_id=superseded_by,
            native_task_id=entry.native_task_id,
            native_run_id=entry.native_run_id,
            imported=True,
        )
        retired = [
            RetiredNativeId(kind=kind, value=value, task=task, attempt=attempt, retired_at=now)
            for kind, value in (
                (RetiredNativeId.Kind.TASK, entry.native_task_id),
                (RetiredNativeId.Kind.RUN, entry.native_run_id),
            )
            if value
        ]
        # An id retired already (by an earlier attempt) stays retired; one row per id.
        RetiredNativeId.objects.bulk_create(retired, ignore_conflicts=True)
        ledger_append(
            type="attempt.imported",
            actor=actor,
            task_id=task.id,
            plan_id=task.plan_id,
            attempt_id=attempt.id,
            data={
                "number": entry.number,
                "kind": attempt.kind,
                "status": entry.status,
                "requested_at": entry.requested_at,
                "requested_assignee": entry.assignee,
                "native_task_id": entry.native_task_id,
                "native_run_id": entry.native_run_id,
                "superseded_at": superseded_at,
                "superseded_by": superseded_by,
                "legacy_attempt_id": entry.attempt_id,
                "entry": entry.index,
            },
            at=now,
        )
        task.attempt_count += 1
    plans = set()
    for slug in sorted({e.task_slug for e in new}, key=lambda s: tasks[s].id):
        task = tasks[slug]
        fields = ["attempt_count"]
        if slug in report.status_changes:
            fields += task_status_set(
                task, report.status_changes[slug][1], actor=actor, data={"reason": "imported retry history"}
            )
        task.save(update_fields=[*fields, "updated_at"])
        if "status" in fields and task.plan_id:
            plans.add(task.plan_id)
    # Plan rows are locked last, after every task row (lock order).
    for plan_id in sorted(plans, key=str):
        plan_refresh(plan_id=plan_id, actor=actor)
