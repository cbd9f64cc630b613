"""Planning domain: who works (agents), on what (projects, procedures, plans,
tasks), and the append-only ledger every state change is written to.

Status columns here are projections of the ledger. Only the functions in
``planning/services.py`` and ``retries/services.py`` assign them.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

slug_validator = RegexValidator(
    # \A…\Z: "$" would also accept a final newline.
    r"\A[a-z0-9][a-z0-9._-]*\Z",
    "Use lowercase letters, digits, dots, dashes and underscores; start with a letter or digit.",
)


class Agent(models.Model):
    class Kind(models.TextChoices):
        HUMAN = "human"
        AI = "ai"

    name = models.CharField(max_length=100, unique=True, validators=[slug_validator])
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.AI)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Project(models.Model):
    slug = models.CharField(max_length=100, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    owner = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="owned_projects")

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Procedure(models.Model):
    class Executor(models.TextChoices):
        EXTERNAL = "external"
        LOCAL = "local"
        HTTP = "http"

    slug = models.CharField(max_length=100, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    phases = models.JSONField(default=list)
    executor = models.CharField(max_length=20, choices=Executor.choices, default=Executor.EXTERNAL)
    max_attempts = models.PositiveIntegerField(default=3, validators=[MinValueValidator(1)])
    stall_timeout_seconds = models.PositiveIntegerField(default=300, validators=[MinValueValidator(1)])

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Plan(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        RUNNING = "running"
        PAUSED = "paused"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class OnError(models.TextChoices):
        CONTINUE = "continue"
        PAUSE = "pause"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="plans")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    on_error = models.CharField(max_length=10, choices=OnError.choices, default=OnError.CONTINUE)
    paused_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Not columns: set on the plans a page or the API shows, by
    # retries.selectors.plan_list_with_projection (counts, failed_tasks) and
    # the dashboard's plan list (rerun_key, rerun_needs_override).
    counts: dict[str, int]
    failed_tasks: list[dict[str, Any]]
    rerun_key: str
    rerun_needs_override: bool

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class PlanningTask(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        LAUNCH_REQUESTED = "launch_requested"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        BLOCKED = "blocked"
        CANCELLED = "cancelled"

    slug = models.CharField(max_length=200, unique=True, validators=[slug_validator])
    title = models.CharField(max_length=300)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="tasks")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="tasks")
    procedure = models.ForeignKey(Procedure, on_delete=models.PROTECT, related_name="tasks")
    params = models.JSONField(default=dict, blank=True)
    assignee = models.ForeignKey(Agent, on_delete=models.PROTECT, null=True, blank=True, related_name="assigned_tasks")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    max_attempts = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    # Counter kept under the task row lock; verify_integrity checks it against the attempts.
    attempt_count = models.PositiveIntegerField(default=0)
    # Set by verify_integrity when rows and ledger disagree; reconciliation skips
    # such a task until a repair clears it (rule 7).
    inconsistent_since = models.DateTimeField(null=True, blank=True)
    inconsistency = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    ACTIVE_STATUSES = (Status.LAUNCH_REQUESTED, Status.RUNNING)
    # Ended badly: what an operator reruns, what a plan counts as failing.
    FAILING_STATUSES = (Status.FAILED, Status.BLOCKED)

    # Not columns: set on the board's rows by retries.selectors.decorate_board_rows.
    # ``current`` is a retries Attempt, a model this layer does not import.
    current: models.Model | None
    shown_assignee: Agent | None
    assignee_drift: bool

    class Meta:
        ordering = ["slug"]
        indexes = [
            models.Index(fields=["status", "updated_at"], name="task_status_updated"),
            models.Index(fields=["project", "status"], name="task_project_status"),
            models.Index(fields=["plan", "status"], name="task_plan_status"),
            # Exactly the board's ORDER BY (-updated_at, -id): with ties on
            # updated_at (a batch touches many tasks at once) an index on
            # updated_at alone made PostgreSQL sort every tied row before the LIMIT.
            models.Index(fields=["-updated_at", "-id"], name="task_updated_id_desc"),
            # The board's "needs attention" count reads the few flagged tasks
            # through this instead of testing every task.
            models.Index(
                fields=["inconsistent_since"],
                condition=models.Q(inconsistent_since__isnull=False),
                name="task_inconsistent",
            ),
        ]

    def __str__(self) -> str:
        return self.slug


class TaskStatusCount(models.Model):
    """How many tasks have each status, for the board: a projection of
    ``PlanningTask.status`` kept by the database itself (migration 0006), so
    no write path can skip it: services, set-based batch UPDATEs, imports,
    raw SQL and deletes all go through the triggers on the task table.

    Insert-only: each statement that changes task statuses appends one delta
    row per status it changed (on PostgreSQL; one per row on SQLite), so
    concurrent transitions never wait on a shared counter row. The count of a
    status is ``SUM(n)`` of its rows; reconciliation folds the deltas back
    into one row per status (``planning.services.task_status_counts_fold``),
    which keeps that read bounded. ``integrity_problems`` checks it against
    the tasks and ``verify_integrity --repair`` rebuilds it."""

    id = models.BigAutoField(primary_key=True)
    status = models.CharField(max_length=20)
    n = models.IntegerField()

    def __str__(self) -> str:
        return f"{self.status} {self.n:+d}"


class Event(models.Model):
    """The ledger: one append-only row per fact. On PostgreSQL a trigger
    refuses UPDATE and DELETE (see migration 0002)."""

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(db_index=True)
    type = models.CharField(max_length=50)
    actor = models.CharField(max_length=150)
    # Indexed by ``event_task_id`` (task, id) below instead of on its own.
    task = models.ForeignKey(
        PlanningTask,
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="events",
        db_constraint=True,
        db_index=False,
    )
    plan = models.ForeignKey(Plan, on_delete=models.DO_NOTHING, null=True, blank=True, related_name="events")
    attempt_id = models.UUIDField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["task", "type", "id"], name="event_task_type"),
            # A task's ledger in order, and its newest event (the task page's
            # version) as one index probe rather than a read of every event.
            models.Index(fields=["task", "id"], name="event_task_id"),
            models.Index(fields=["attempt_id", "type", "id"], name="event_attempt_type"),
            models.Index(fields=["type", "id"], name="event_type"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.type}"
