"""What the side-by-side tests of a set-based service compare with the
per-task path: every task's rows and every ledger event since a point,
with ids, times and each copy's slug prefix taken out."""

import json

from planning.models import Event, Plan, PlanningTask
from retries.models import Attempt, RetiredNativeId


def normal(value, p: str):
    """Data without ids and times, and without the copy's prefix."""
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k not in ("superseded_by", "supersedes", "at")}
    return json.loads(json.dumps(value, default=str).replace(f"{p}-", "X-"))


def last_event_id() -> int:
    return Event.objects.order_by("-id").values_list("id", flat=True).first() or 0


def outcome(p: str, tasks: dict[str, PlanningTask], plans: dict[str, Plan], since: int) -> dict:
    role_of_task = {t.id: role for role, t in tasks.items()}
    role_of_plan = {plan.id: role for role, plan in plans.items()}
    result: dict = {"tasks": {}, "plans": {}, "events": {}, "order": []}
    for role, task in tasks.items():
        task.refresh_from_db()
        attempts = [
            (
                a.number, a.kind, a.resume_phase, a.requested_assignee.name if a.requested_assignee else None,
                a.status, a.superseded_at is not None, a.reason, a.requested_by, a.failure_kind,
                a.failure_message, a.finished_at is not None,
            )
            for a in Attempt.objects.filter(task=task).select_related("requested_assignee").order_by("number")
        ]
        retired = sorted(
            (kind, normal(value, p))
            for kind, value in RetiredNativeId.objects.filter(task=task).values_list("kind", "value")
        )
        result["tasks"][role] = (task.status, task.attempt_count, normal(attempts, p), retired)
    for role, plan in plans.items():
        plan.refresh_from_db()
        result["plans"][role] = (plan.status, plan.paused_at is not None)
    for event in Event.objects.filter(id__gt=since).order_by("id"):
        if event.task_id is not None:
            key = ("task", role_of_task[event.task_id])
        else:
            key = ("plan", role_of_plan[event.plan_id])
        entry = (event.type, event.actor, event.attempt_id is None, event.plan_id is None, normal(event.data, p))
        result["events"].setdefault(key, []).append(entry)
        result["order"].append((key, event.type))
    return result
