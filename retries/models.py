"""Retry domain: attempts (one try at a task, each with a fresh identity),
the phases they passed, the native runs executors report, the native ids that
may never be bound again, and stored idempotent responses.

Status columns are projections of the ledger; only services assign them.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models import Q

from planning.models import Agent, PlanningTask

if TYPE_CHECKING:
    from .selectors.task_detail import PhaseChip


class Attempt(models.Model):
    class Kind(models.TextChoices):
        INITIAL = "initial"
        RERUN = "rerun"
        RETRY = "retry"
        REPAIR = "repair"

    class Status(models.TextChoices):
        PENDING = "pending"
        LAUNCHING = "launching"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
    # Forward-only order: a status may only move to one of a higher rank.
    RANK = {
        Status.PENDING: 0,
        Status.LAUNCHING: 1,
        Status.RUNNING: 2,
        Status.SUCCEEDED: 3,
        Status.FAILED: 3,
        Status.CANCELLED: 3,
    }

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task = models.ForeignKey(PlanningTask, on_delete=models.PROTECT, related_name="attempts")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    requested_by = models.CharField(max_length=150)
    requested_at = models.DateTimeField()
    reason = models.TextField(blank=True, default="")
    # Decided once at request time (rule 3); nothing recomputes it.
    requested_assignee = models.ForeignKey(Agent, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # These text columns hold NULL until set, and the API answers null for
    # them; storing "" instead (DJ001) would change those answers and need a
    # data migration, so the rule is waived field by field.
    resume_phase = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    superseded_at = models.DateTimeField(null=True, blank=True)
    superseded_by = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="supersedes"
    )
    native_task_id = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    native_run_id = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    failure_kind = models.CharField(max_length=40, null=True, blank=True)  # noqa: DJ001
    failure_phase = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    failure_message = models.TextField(null=True, blank=True)  # noqa: DJ001
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Historical attempts brought in by import_retry_history.
    imported = models.BooleanField(default=False)

    # Not columns: set on the attempts the task page shows, by
    # retries.selectors.task_detail.
    chips: list[PhaseChip]
    bound_runs: list[NativeRun]
    rejected_runs: list[NativeRun]

    class Meta:
        ordering = ["task", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["task", "number"], name="attempt_task_number_unique"),
            models.UniqueConstraint(
                fields=["task"],
                condition=Q(superseded_at__isnull=True),
                name="attempt_one_current_per_task",
            ),
            models.CheckConstraint(
                condition=Q(superseded_at__isnull=True) | Q(superseded_by__isnull=False) | Q(imported=True),
                name="attempt_superseded_has_successor",
            ),
        ]
        indexes = [
            models.Index(
                fields=["status", "last_heartbeat_at"],
                condition=Q(superseded_at__isnull=True),
                name="attempt_current_status",
            ),
            # The board's "needs attention" count: tasks whose current attempt
            # stalled, without reading every current attempt.
            models.Index(
                fields=["task"],
                condition=Q(superseded_at__isnull=True, failure_kind="stalled"),
                name="attempt_current_stalled",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_id}#{self.number}"

    @property
    def is_current(self) -> bool:
        return self.superseded_at is None

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def failure(self) -> dict | None:
        if not self.failure_kind:
            return None
        return {"kind": self.failure_kind, "phase": self.failure_phase, "message": self.failure_message or ""}


class PhaseOutcome(models.Model):
    class Outcome(models.TextChoices):
        PASSED = "passed"
        FAILED = "failed"

    attempt = models.ForeignKey(Attempt, on_delete=models.PROTECT, related_name="phase_outcomes")
    phase = models.CharField(max_length=100)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    at = models.DateTimeField()
    message = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            # A phase has one outcome per attempt: replays are no-ops (rule 4).
            models.UniqueConstraint(fields=["attempt", "phase"], name="phase_outcome_once"),
        ]

    def __str__(self) -> str:
        return f"{self.attempt_id} {self.phase}: {self.outcome}"


class NativeRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Binding(models.TextChoices):
        BOUND = "bound"
        REJECTED = "rejected"
        UNBOUND = "unbound"

    TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
    RANK = {Status.QUEUED: 0, Status.RUNNING: 1, Status.SUCCEEDED: 2, Status.FAILED: 2, Status.CANCELLED: 2}

    executor = models.CharField(max_length=50)
    native_task_id = models.CharField(max_length=200)
    native_run_id = models.CharField(max_length=200)
    task_slug = models.CharField(max_length=200, blank=True, default="")
    task = models.ForeignKey(PlanningTask, on_delete=models.PROTECT, null=True, blank=True, related_name="native_runs")
    claimed_attempt_id = models.UUIDField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices)
    phase = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    message = models.TextField(blank=True, default="")
    binding = models.CharField(max_length=10, choices=Binding.choices, default=Binding.UNBOUND)
    attempt = models.ForeignKey(Attempt, on_delete=models.PROTECT, null=True, blank=True, related_name="native_runs")
    binding_reason = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001 - NULL until bound, as on Attempt
    # What the binding decision compared (``retries.decisions.decide_binding``):
    # every screen explains the binding from these with ``explain_binding``.
    binding_facts = models.JSONField(default=dict, db_default={}, blank=True)
    # Who (the API user, or "system" for the built-in executor) sent the
    # newest report that changed the run; the ledger keeps every report's actor.
    reported_by = models.CharField(max_length=150, blank=True, default="", db_default="")

    # Not a column: the attempt the run claims, as the native-runs page names
    # it (retries.selectors.native_runs).
    claimed: dict[str, Any] | None

    class Meta:
        ordering = ["-last_seen_at"]
        constraints = [
            models.UniqueConstraint(fields=["executor", "native_run_id"], name="native_run_unique"),
        ]
        indexes = [
            models.Index(fields=["binding", "id"], condition=Q(binding="unbound"), name="native_run_unbound"),
            models.Index(fields=["native_task_id"], name="native_run_native_task"),
            models.Index(fields=["task", "binding"], name="native_run_task_binding"),
            # Superseding an attempt retires the ids of every run that claimed it.
            models.Index(fields=["claimed_attempt_id"], name="native_run_claimed_attempt"),
        ]

    def __str__(self) -> str:
        return f"{self.executor}:{self.native_run_id}"

    @property
    def binding_explanation(self) -> str:
        from .decisions.binding import explain_binding  # noqa: PLC0415 - the decisions import these models

        return explain_binding(self.binding, self.binding_reason, self.binding_facts)


class RetiredNativeId(models.Model):
    """A native task or run id once linked to a superseded attempt. A run
    carrying one of these is never bound again (rule 2)."""

    class Kind(models.TextChoices):
        TASK = "task"
        RUN = "run"

    kind = models.CharField(max_length=4, choices=Kind.choices)
    value = models.CharField(max_length=200)
    task = models.ForeignKey(PlanningTask, on_delete=models.PROTECT, related_name="retired_native_ids")
    attempt = models.ForeignKey(Attempt, on_delete=models.PROTECT, related_name="retired_native_ids")
    retired_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="retired_native_id_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class IdempotencyKey(models.Model):
    """The first response to a keyed request, returned again for repeats."""

    task = models.ForeignKey(PlanningTask, on_delete=models.CASCADE, related_name="idempotency_keys")
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64)
    attempt = models.ForeignKey(Attempt, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "key"], name="idempotency_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.task_id}:{self.key}"
