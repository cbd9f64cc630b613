"""What a rerun or repair would do, read without locks and written nowhere:
the same facts readers and the same decisions as ``task_rerun_many`` and
``task_repair``, so the API's previews, the dashboard forms' defaults and
previews, the admin's confirmation page and ``repair_tasks --dry-run``
show exactly what the action will do (or why it is refused). A fixed
number of queries for any number of tasks."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from planning.models import Agent, PlanningTask

from ..decisions import (
    AttemptFacts,
    CancelDecision,
    FrozenAssignee,
    NextAttempt,
    Refusal,
    TaskFacts,
    decide_cancel,
    decide_repair,
    decide_rerun,
    frozen_assignee,
)
from ..models import Attempt
from .base import ledger_statuses
from .facts import all_attempts_with_ids, attempt_facts, facts_for_new_attempt, linked_native_ids, task_facts


@dataclass
class ActionPreview:
    slug: str
    action: str  # "rerun" | "repair"
    task: PlanningTask | None
    outcome: NextAttempt | Refusal
    # Repair: the row's status is first put back to the ledger's.
    restores_status: tuple[str, str] | None = None
    # Rule 3's answer when no agent is chosen: what a form offers as its
    # default (also when the action itself is refused now).
    keep: FrozenAssignee | None = None

    @property
    def allowed(self) -> bool:
        return isinstance(self.outcome, NextAttempt)

    @property
    def refusal(self) -> Refusal | None:
        return self.outcome if isinstance(self.outcome, Refusal) else None

    @property
    def attempt(self) -> NextAttempt | None:
        return self.outcome if isinstance(self.outcome, NextAttempt) else None

    def summary(self) -> str:
        outcome = self.outcome
        if isinstance(outcome, Refusal):
            return f"refused ({outcome.code}): {outcome.detail}"
        text = outcome.summary()
        if self.restores_status:
            text = f"put status {self.restores_status[0]} back to the ledger's {self.restores_status[1]}; " + text
        return text

    def as_dict(self) -> dict[str, Any]:
        """The API's preview body."""
        body: dict[str, Any] = {
            "task": self.slug,
            "action": self.action,
            "allowed": self.allowed,
            "summary": self.summary(),
        }
        plan = self.outcome
        if isinstance(plan, Refusal):
            body["refusal"] = {"code": plan.code, "detail": plan.detail}
            body["attempt"] = None
            return body
        body["refusal"] = None
        body["attempt"] = {
            "number": plan.number,
            "kind": plan.kind,
            "requested_assignee": plan.assignee.name,
            "assignee_source": plan.assignee.source,
            "resume_phase": plan.resume_phase,
            "passed_phases": list(plan.passed_phases),
            "budget": {
                "used": plan.budget_used,
                "max": plan.budget_max,
                "left": plan.budget_left,
                "over_budget": plan.over_budget,
            },
            "supersedes": (
                {"id": str(plan.supersedes.id), "number": plan.supersedes.number, "cancels": plan.cancels_active}
                if plan.supersedes is not None
                else None
            ),
            "retires_native_ids": [
                {"kind": kind, "value": value, "attempt_number": number} for kind, value, number, _ in plan.retires
            ],
            "reason": plan.reason,
        }
        body["restores_status"] = (
            {"from": self.restores_status[0], "to": self.restores_status[1]} if self.restores_status else None
        )
        return body


def _tasks(slugs: list[str]) -> dict[str, PlanningTask]:
    return {
        t.slug: t
        for t in PlanningTask.objects.select_related("procedure", "project__owner", "plan", "assignee").filter(
            slug__in=set(slugs)
        )
    }


def _unknown(slug: str, action: str) -> ActionPreview:
    return ActionPreview(slug, action, None, Refusal("not_found", f"No task named {slug!r}."))


def task_rerun_previews(
    *,
    slugs: list[str],
    reason: str = "",
    assignee: Agent | None = None,
    override_budget: bool = False,
    supersede_active: bool = False,
) -> list[ActionPreview]:
    """``decide_rerun`` for each task, in the order given, without locks."""
    tasks = _tasks(slugs)
    found = list(tasks.values())
    currents = {a.task_id: a for a in _current_attempts(found)}
    facts, _ = facts_for_new_attempt(found, currents)
    previews = []
    for slug in slugs:
        task = tasks.get(slug)
        if task is None:
            previews.append(_unknown(slug, "rerun"))
            continue
        outcome = decide_rerun(
            *facts[task.id],
            reason=reason or "(the reason you give)",
            explicit=assignee.name if assignee else None,
            override_budget=override_budget,
            supersede_active=supersede_active,
        )
        previews.append(ActionPreview(slug, "rerun", task, outcome, keep=_keep(*facts[task.id])))
    return previews


def _keep(task: TaskFacts, attempts: list[AttemptFacts]) -> FrozenAssignee:
    latest = max(attempts, key=lambda a: a.number, default=None)
    return frozen_assignee(
        explicit=None, previous=latest, task_assignee=task.assignee, project_owner=task.project_owner
    )


def _current_attempts(tasks: list[PlanningTask]):
    return Attempt.objects.select_related("requested_assignee").filter(
        task_id__in=[t.id for t in tasks], superseded_at__isnull=True
    )


def task_repair_previews(*, slugs: list[str], reason: str = "", assignee: Agent | None = None) -> list[ActionPreview]:
    """``decide_repair`` for each task, in the order given, without locks,
    on the facts the repair will see: the task's status as the ledger has
    it, every attempt with every native id linked to it."""
    tasks = _tasks(slugs)
    found = list(tasks.values())
    attempts = all_attempts_with_ids([t.id for t in found])
    native = linked_native_ids([a for rows in attempts.values() for a in rows])
    ledger, _ = ledger_statuses([t.id for t in found], [])
    previews = []
    for slug in slugs:
        task = tasks.get(slug)
        if task is None:
            previews.append(_unknown(slug, "repair"))
            continue
        facts: TaskFacts = task_facts(task)
        truth = ledger.get(task.id)
        restores = None
        if truth is not None and truth != task.status:
            restores = (task.status, truth)
            facts = replace(facts, status=truth)
        rows: list[AttemptFacts] = [attempt_facts(a, native.get(a.id, ())) for a in attempts.get(task.id, [])]
        outcome = decide_repair(
            facts, rows, reason=reason or "(the reason you give)", explicit=assignee.name if assignee else None
        )
        previews.append(ActionPreview(slug, "repair", task, outcome, restores_status=restores, keep=_keep(facts, rows)))
    return previews


@dataclass
class TaskPagePreviews:
    rerun: ActionPreview
    # Rule 3's answer a repair form offers as its default; the repair's
    # full preview (every native id of every attempt it retires) grows with
    # the history, so the page fetches it on its own (``task_repair_previews``).
    repair_keep: FrozenAssignee
    cancel: CancelDecision | Refusal


def task_page_previews(task: PlanningTask) -> TaskPagePreviews:
    """The task page's forms: the rerun's preview, the repair's default
    assignee and whether a cancel applies, from the rows a rerun reads (the
    current attempt, else the newest, with its native ids): a fixed number
    of queries, whatever the history. The same decisions as the actions."""
    currents = {a.task_id: a for a in _current_attempts([task])}
    facts, _ = facts_for_new_attempt([task], currents)
    task_facts_, seen = facts[task.id]
    rerun = ActionPreview(
        task.slug,
        "rerun",
        task,
        decide_rerun(task_facts_, seen, reason="(the reason you give)"),
        keep=_keep(task_facts_, seen),
    )
    current = [a for a in seen if a.current]
    return TaskPagePreviews(rerun, _keep(task_facts_, seen), decide_cancel(task_facts_, current))
