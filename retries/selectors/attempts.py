"""Reads about one attempt that the interfaces need before calling a service."""

from __future__ import annotations

import uuid

from retries.models import Attempt


def attempt_executor(attempt_id: uuid.UUID) -> str | None:
    """The executor an attempt runs on (its task's procedure's); None when
    there is no such attempt."""
    return Attempt.objects.filter(pk=attempt_id).values_list("task__procedure__executor", flat=True).first()
