"""Repair previews for the admin's confirmation page and ``repair_tasks``:
``retries.services.task_repair_previews``, the same decision the repair
applies (kept under this name for the interfaces that import it)."""

from __future__ import annotations

from .services.previews import ActionPreview, task_repair_previews


def repair_previews(slugs: list[str], *, assignee=None) -> list[ActionPreview]:
    return task_repair_previews(slugs=slugs, assignee=assignee)
