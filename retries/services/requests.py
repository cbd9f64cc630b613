"""An operator's requests: launch, rerun (one or many), repair, cancel.
Each locks its rows, reads the facts, asks its decision and applies it;
``task_rerun`` is ``task_rerun_many`` with one task."""

from __future__ import annotations

import uuid
from collections import Counter

from django.db import transaction
from django.utils import timezone

from missioncontrol.errors import ServiceError, invalid, not_found
from planning.ledger import ATTEMPT_STATUS_EVENTS, TASK_STATUS_EVENTS, ledger_append, ledger_batch
from planning.models import Event, PlanningTask
from planning.services import agent_get, task_status_set

from .. import dispatch
from ..decisions import AttemptFacts, NextAttempt, Refusal, decide_cancel, decide_launch, decide_repair, decide_rerun
from ..models import Attempt
from . import idempotency
from .attempts import NewAttempt, start_attempts
from .base import (
    AS,
    TS,
    AttemptResult,
    attempt_status_set,
    deferred_plan_refresh,
    lock_current_attempt,
    lock_task,
    save_task,
    set_failure,
)
from .facts import (
    agents_by_name,
    all_attempts_with_ids,
    attempt_facts,
    facts_for_new_attempt,
    linked_native_ids,
    task_facts,
)
from .locks import lock_current_attempts, lock_tasks

MAX_BULK_RERUN = 500


# One limit for an operator's reason, whichever interface takes it: the
# API's schema, the dashboard's forms, the admin's actions, repair_tasks.
REASON_MAX_LENGTH = 10_000


def check_reason(reason: str | None) -> str:
    """The reason kept in the ledger: required, not blank, at most
    ``REASON_MAX_LENGTH`` characters once trimmed."""
    if reason is None or not str(reason).strip():
        raise invalid({"reason": ["Give a reason: it is kept in the ledger."]})
    text = str(reason).strip()
    if len(text) > REASON_MAX_LENGTH:
        raise invalid(
            {"reason": [f"Keep the reason to at most {REASON_MAX_LENGTH:,} characters (it has {len(text):,})."]}
        )
    return text


def refusal_error(refusal: Refusal) -> ServiceError:
    return ServiceError(refusal.code, refusal.detail)


def task_launch(*, slug: str, actor: str, idempotency_key: str | None = None) -> AttemptResult:
    """From draft: create attempt 1 (``decide_launch``)."""
    print_ = idempotency.fingerprint("launch", {})
    with transaction.atomic():
        tasks = lock_tasks(slugs=[slug])
        if not tasks:
            raise not_found("task", slug)
        (task,) = tasks
        now = timezone.now()
        if replay := idempotency.lookup([task], [slug], idempotency_key, print_, now):
            return replay[0]
        locked = lock_current_attempts([task])
        current = locked.attempts.get(task.id)
        facts, agents = facts_for_new_attempt([task], locked.attempts, native=locked.native)
        decision = decide_launch(*facts[task.id])
        if isinstance(decision, Refusal):
            raise refusal_error(decision)
        if isinstance(decision, AttemptFacts):
            # Launching again what is already launched is a no-op.
            assert current is not None  # the facts are the current attempt's
            return AttemptResult(attempt=current, created=False)
        with ledger_batch():
            (attempt,) = start_attempts([NewAttempt(task, current, decision)], agents=agents, actor=actor, now=now)
        records = idempotency.record([task], idempotency_key, print_, {task.id: attempt}, now)
    return AttemptResult(attempt=attempt, created=True, idempotency=records.get(task.id))


def task_rerun(
    *,
    slug: str,
    actor: str,
    reason: str,
    assignee: str | None = None,
    override_budget: bool = False,
    supersede_active: bool = False,
    idempotency_key: str | None = None,
) -> AttemptResult:
    """An operator's fresh attempt at a failed, blocked or cancelled task:
    the bulk rerun of one task, refused with the decision's own code."""
    return _rerun(
        slugs=[slug],
        actor=actor,
        reason=reason,
        assignee=assignee,
        override_budget=override_budget,
        supersede_active=supersede_active,
        idempotency_key=idempotency_key,
        plan_id=None,
        single=True,
    )[0]


def task_rerun_many(
    *,
    slugs: list[str],
    actor: str,
    reason: str,
    assignee: str | None = None,
    override_budget: bool = False,
    supersede_active: bool = False,
    idempotency_key: str | None = None,
    plan_id: uuid.UUID | None = None,
) -> list[AttemptResult]:
    """Rerun many tasks at once, all or nothing: each gets what a rerun of
    it alone gives it. If any cannot be rerun nothing is written and the
    error (``rerun_refused``) lists every refusal by slug. Tasks are locked
    in id order in one statement, then their current attempts; results
    follow the order of ``slugs``. With ``idempotency_key`` every task keeps
    a record of the key, so a repeat creates nothing. With ``plan_id``
    every task must belong to that plan (checked on the locked rows)."""
    if not slugs:
        raise invalid({"tasks": ["Give at least one task."]})
    if len(slugs) > MAX_BULK_RERUN:
        raise invalid({"tasks": [f"Give at most {MAX_BULK_RERUN} tasks; got {len(slugs)}."]})
    repeated = sorted(slug for slug, n in Counter(slugs).items() if n > 1)
    if repeated:
        raise invalid({"tasks": [f"Each task once; repeated: {', '.join(repeated)}."]})
    return _rerun(
        slugs=slugs,
        actor=actor,
        reason=reason,
        assignee=assignee,
        override_budget=override_budget,
        supersede_active=supersede_active,
        idempotency_key=idempotency_key,
        plan_id=plan_id,
        single=False,
    )


def _rerun(
    *,
    slugs: list[str],
    actor: str,
    reason: str,
    assignee: str | None,
    override_budget: bool,
    supersede_active: bool,
    idempotency_key: str | None,
    plan_id: uuid.UUID | None,
    single: bool,
) -> list[AttemptResult]:
    reason = check_reason(reason)
    explicit = agent_get(name=assignee, active_only=True) if assignee else None
    flags = {
        "reason": reason,
        "assignee": assignee or None,
        "override_budget": bool(override_budget),
        "supersede_active": bool(supersede_active),
    }
    # A single rerun keeps its own fingerprint: keys stored before batches
    # existed still match their repeats.
    print_ = (
        idempotency.fingerprint("rerun", flags)
        if single
        else idempotency.fingerprint("rerun_many", {"tasks": sorted(slugs), "plan": plan_id, **flags})
    )
    with transaction.atomic(), deferred_plan_refresh():
        tasks = lock_tasks(slugs=slugs)
        now = timezone.now()
        by_slug = {t.slug: t for t in tasks}
        missing = [s for s in slugs if s not in by_slug]
        if missing and single:
            raise ServiceError("not_found", f"No task named {slugs[0]!r}.")
        if missing:
            raise ServiceError(
                "not_found",
                f"{len(missing)} of {len(slugs)} tasks do not exist; none was rerun.",
                errors={s: ["No task with this slug."] for s in missing},
            )
        if plan_id is not None and (outside := sorted(t.slug for t in tasks if t.plan_id != plan_id)):
            raise invalid(
                {"tasks": [f"Not in this plan: {', '.join(outside)}."]},
                "Some of these tasks are not in the plan; none was rerun.",
            )
        if replay := idempotency.lookup(tasks, slugs, idempotency_key, print_, now):
            return replay
        locked = lock_current_attempts(tasks)
        currents = locked.attempts
        facts, agents = facts_for_new_attempt(tasks, currents, native=locked.native)
        if explicit is not None:
            agents[explicit.name] = explicit
        decisions = {
            t.id: decide_rerun(
                *facts[t.id],
                reason=reason,
                explicit=explicit.name if explicit else None,
                override_budget=override_budget,
                supersede_active=supersede_active,
            )
            for t in tasks
        }
        refusals = {t.slug: d for t in tasks if isinstance(d := decisions[t.id], Refusal)}
        if refusals and single:
            raise refusal_error(next(iter(refusals.values())))
        if refusals:
            raise ServiceError(
                "rerun_refused",
                f"{len(refusals)} of {len(slugs)} tasks cannot be rerun now; none was.",
                errors={slug: [f"{r.code}: {r.detail}"] for slug, r in sorted(refusals.items())},
            )
        items = []
        for t in tasks:
            decision = decisions[t.id]
            assert isinstance(decision, NextAttempt)  # the refusals were raised above
            items.append(
                NewAttempt(
                    t,
                    currents.get(t.id),
                    decision,
                    event_data={"override_budget": decision.over_budget, "supersede_active": bool(supersede_active)},
                )
            )
        with ledger_batch():
            created = start_attempts(items, agents=agents, actor=actor, now=now)
        attempts = {item.task.id: attempt for item, attempt in zip(items, created, strict=True)}
        records = idempotency.record(tasks, idempotency_key, print_, attempts, now)
    return [
        AttemptResult(attempt=attempts[by_slug[s].id], created=True, idempotency=records.get(by_slug[s].id))
        for s in slugs
    ]


def task_repair(
    *, slug: str, actor: str, reason: str, assignee: str | None = None, idempotency_key: str | None = None
) -> AttemptResult:
    """Rule 9 (``decide_repair``): reopen completed work or fix a damaged
    task, explicitly and with a reason. A row that disagrees with the
    ledger is first put back to what the ledger says (itself a fact);
    then every earlier attempt is superseded, all their native ids retired,
    the inconsistency mark cleared and a fresh attempt started."""
    reason = check_reason(reason)
    explicit = agent_get(name=assignee, active_only=True) if assignee else None
    print_ = idempotency.fingerprint("repair", {"reason": reason, "assignee": assignee or None})
    with transaction.atomic():
        task = lock_task(slug=slug)
        now = timezone.now()
        if replay := idempotency.lookup([task], [slug], idempotency_key, print_, now):
            return replay[0]
        rows = all_attempts_with_ids([task.id], lock=True).get(task.id, [])
        with ledger_batch():
            _restore_task_from_ledger(task, actor=actor, now=now)
            _restore_attempts_from_ledger(task, rows, actor=actor, now=now)
            native = linked_native_ids(rows)
            decision = decide_repair(
                task_facts(task),
                [attempt_facts(a, native.get(a.id, ())) for a in rows],
                reason=reason,
                explicit=explicit.name if explicit else None,
            )
            if isinstance(decision, Refusal):
                raise refusal_error(decision)
            ledger_append(
                type="repair.started",
                actor=actor,
                task_id=task.id,
                data={
                    "reason": reason,
                    "from_status": task.status,
                    "inconsistency": task.inconsistency or None,
                    "plan": decision.summary(),
                },
                at=now,
            )
            current = next((a for a in rows if a.superseded_at is None), None)
            (attempt,) = start_attempts(
                [NewAttempt(task, current, decision, attempt_count=len(rows) + 1)],
                agents={**agents_by_name([task], rows), **({explicit.name: explicit} if explicit else {})},
                actor=actor,
                now=now,
            )
        records = idempotency.record([task], idempotency_key, print_, {task.id: attempt}, now)
    return AttemptResult(attempt=attempt, created=True, idempotency=records.get(task.id))


def _restore_attempts_from_ledger(task: PlanningTask, attempts: list[Attempt], *, actor: str, now) -> None:
    """An attempt row whose status disagrees with the ledger is put back to
    what the ledger says, and the correction is itself a fact."""
    ledger = {}
    for event in (
        Event.objects.filter(attempt_id__in=[a.id for a in attempts], type__in=ATTEMPT_STATUS_EVENTS)
        .order_by("id")
        .values("attempt_id", "data")
    ):
        ledger[event["attempt_id"]] = event["data"].get("status")
    for attempt in attempts:
        truth = ledger.get(attempt.id)
        if truth is None or truth == attempt.status:
            continue
        ledger_append(
            type="attempt.status_restored",
            actor=actor,
            task_id=task.id,
            attempt_id=attempt.id,
            data={"row_status": attempt.status, "ledger_status": truth},
            at=now,
        )
        attempt.status = truth
        attempt.save(update_fields=["status"])


def _restore_task_from_ledger(task: PlanningTask, *, actor: str, now) -> None:
    """A task row whose status disagrees with the ledger (set back by hand,
    seed 000) is put back first, so the repair's own move is a ledger fact."""
    truth = (
        Event.objects.filter(task_id=task.id, type__in=TASK_STATUS_EVENTS)
        .order_by("-id")
        .values_list("data__status", flat=True)
        .first()
    )
    if truth is None or truth == task.status:
        return
    ledger_append(
        type="task.status_restored",
        actor=actor,
        task_id=task.id,
        data={"row_status": task.status, "ledger_status": truth},
        at=now,
    )
    task.status = truth
    task.save(update_fields=["status", "updated_at"])


def task_cancel(*, slug: str, actor: str, reason: str) -> PlanningTask:
    """``decide_cancel``: stop the current attempt and the task's retries."""
    reason = check_reason(reason)
    with transaction.atomic():
        task = lock_task(slug=slug)
        now = timezone.now()
        current = lock_current_attempt(task)
        decision = decide_cancel(task_facts(task), [attempt_facts(current)] if current else [])
        if isinstance(decision, Refusal):
            raise refusal_error(decision)
        if decision.noop:
            return task
        if decision.cancels is not None:
            assert current is not None  # what it cancels is the current attempt
            fields = attempt_status_set(current, AS.CANCELLED, actor=actor, now=now, data={"reason": reason})
            fields += set_failure(current, kind="cancelled", phase=None, message=reason)
            current.save(update_fields=fields)
            dispatch.cancel_after_commit(attempt_id=current.id, executor=task.procedure.executor)
        fields = task_status_set(task, TS.CANCELLED, actor=actor, data={"reason": reason, "decision": decision.reason})
        save_task(task, fields, actor)
    return task
