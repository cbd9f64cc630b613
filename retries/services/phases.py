"""Phase outcomes (rules 4 and 6), decided by ``decide_phase_outcome``."""

from __future__ import annotations

import uuid

from django.db import transaction
from django.utils import timezone

from missioncontrol.errors import invalid, not_found
from planning.ledger import ledger_append

from ..decisions import Refusal, decide_phase_outcome
from ..models import Attempt, PhaseOutcome
from .base import AS, attempt_status_set, lock_task, project_task, save_task, set_failure, task_id_of_attempt
from .facts import attempt_facts
from .requests import refusal_error


def attempt_record_phase(
    *, attempt_id: uuid.UUID, phase: str, outcome: str, message: str = "", actor: str
) -> tuple[PhaseOutcome, bool]:
    """Record a phase outcome. A repeat of the same outcome is a no-op that
    succeeds (created=False); a superseded attempt is refused."""
    if outcome not in PhaseOutcome.Outcome.values:
        raise invalid({"outcome": [f"Use one of: {', '.join(PhaseOutcome.Outcome.values)}."]})
    with transaction.atomic():
        task_id = task_id_of_attempt(attempt_id)
        if task_id is None:
            raise not_found("attempt", str(attempt_id))
        task = lock_task(task_id=task_id)
        now = timezone.now()
        attempt = (
            Attempt.objects.select_for_update(of=("self",)).select_related("requested_assignee").get(id=attempt_id)
        )
        recorded = dict(PhaseOutcome.objects.filter(attempt_id=attempt.id).values_list("phase", "outcome"))
        decision = decide_phase_outcome(
            phases=tuple(task.procedure.phases),
            phase=phase,
            outcome=outcome,
            existing=recorded.get(phase),
            attempt=attempt_facts(attempt),
            passed={p for p, o in recorded.items() if o == PhaseOutcome.Outcome.PASSED},
        )
        if isinstance(decision, Refusal):
            if decision.code == "invalid":
                raise invalid({"phase": [f"Procedure {task.procedure.slug}: {decision.detail}"]})
            raise refusal_error(decision)
        if not decision.record:
            return PhaseOutcome.objects.get(attempt_id=attempt.id, phase=phase), False
        record = PhaseOutcome.objects.create(attempt=attempt, phase=phase, outcome=outcome, at=now, message=message)
        ledger_append(
            type=f"phase.{outcome}",
            actor=actor,
            task_id=task.id,
            attempt_id=attempt.id,
            data={"phase": phase, "message": message, "number": attempt.number, "reason": decision.reason},
            at=now,
        )
        attempt.last_heartbeat_at = now
        fields = ["last_heartbeat_at", *attempt_status_set(attempt, AS.RUNNING, actor=actor, now=now)]
        if decision.ends_as == AS.FAILED:
            assert decision.failure_kind is not None  # decide_phase_outcome names the kind of every failure
            fields += attempt_status_set(attempt, AS.FAILED, actor=actor, now=now, data={"kind": decision.failure_kind})
            fields += set_failure(attempt, kind=decision.failure_kind, phase=phase, message=message)
        elif decision.ends_as == AS.SUCCEEDED:
            fields += attempt_status_set(attempt, AS.SUCCEEDED, actor=actor, now=now)
        attempt.save(update_fields=list(dict.fromkeys(fields)))
        save_task(task, project_task(task, attempt, fields, actor=actor), actor)
    return record, True
