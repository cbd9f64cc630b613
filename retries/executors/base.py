"""The executor interface: ``launch`` (required), ``poll`` and ``cancel``
(optional). Backends receive a frozen snapshot of the attempt, never a model
instance, so nothing they do can write a row except through the services."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from planning.models import PlanningTask
from retries.models import Attempt


class LaunchError(Exception):
    """The executor could not take the launch; the attempt fails with it."""


@dataclass(frozen=True)
class LaunchRequest:
    attempt_id: uuid.UUID
    attempt_number: int
    task: str
    procedure: str
    executor: str
    phases: tuple[str, ...]
    resume_phase: str | None
    params: dict[str, Any] = field(default_factory=dict)
    requested_assignee: str | None = None
    stall_timeout_seconds: int = 300

    @property
    def first_phase(self) -> str:
        if self.resume_phase in self.phases:
            return self.resume_phase
        return self.phases[0]

    @classmethod
    def for_attempt(cls, attempt_id: uuid.UUID) -> LaunchRequest | None:
        attempt = Attempt.objects.select_related("task__procedure", "requested_assignee").filter(id=attempt_id).first()
        if attempt is None:
            return None
        task: PlanningTask = attempt.task
        return cls(
            attempt_id=attempt.id,
            attempt_number=attempt.number,
            task=task.slug,
            procedure=task.procedure.slug,
            executor=task.procedure.executor,
            phases=tuple(task.procedure.phases),
            resume_phase=attempt.resume_phase,
            params=dict(task.params or {}),
            requested_assignee=attempt.requested_assignee.name if attempt.requested_assignee else None,
            stall_timeout_seconds=task.procedure.stall_timeout_seconds,
        )


def native_ids(executor: str, attempt_id: uuid.UUID | str) -> tuple[str, str]:
    """Native ids derived from the attempt id: a launch repeated after a crash
    or a redelivered message names the same run, so the executor's unique
    (executor, native_run_id) key can never hold a second run for one attempt."""
    return f"{executor}-task-{attempt_id}", f"{executor}-run-{attempt_id}"


class Executor:
    """One backend. ``pollable`` says whether reconciliation should call ``poll``."""

    name: str = ""
    pollable: bool = False

    def launch(self, request: LaunchRequest) -> tuple[str, str] | None:
        """Start the attempt; return the native ids when the backend knows
        them now, None when the executor reports them later."""
        raise NotImplementedError

    def poll(self, request: LaunchRequest) -> dict[str, Any] | None:
        """Ask the executor for the run's state; None when it has nothing new."""
        return None

    def cancel(self, attempt_id: uuid.UUID) -> None:
        """Tell the executor to stop; best effort, the attempt is already final."""
        return
