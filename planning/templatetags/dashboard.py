"""Small presentation filters for the dashboard: statuses carry a word and
a glyph, not only a colour; binding reasons read as sentences."""

from __future__ import annotations

import json

from django import template

register = template.Library()

GLYPHS = {
    "draft": "○",
    "pending": "…",
    "launch_requested": "…",
    "launching": "↗",
    "queued": "…",
    "running": "▶",
    "succeeded": "✓",
    "failed": "✕",
    "blocked": "■",
    "cancelled": "⊘",
    "paused": "❚❚",
    "bound": "↔",
    "rejected": "✕",
    "unbound": "?",
}

BINDING_REASONS = {
    "superseded": "It names an attempt that was superseded; a superseded run never binds again.",
    "unknown_attempt": "It names an attempt id this system has never issued.",
    "task_mismatch": "The attempt it names belongs to another task.",
    "legacy_run_without_created_at": "A legacy run (no attempt id) without its own creation time cannot be placed.",
    "predates_current_attempt": "A legacy run created before the current attempt was requested.",
    "retired_native_id": "Its native id was linked to a superseded attempt and is retired.",
    "attempt_already_bound": "The current attempt is already bound to another native run.",
    "unknown_task": "It names a task slug that does not exist.",
    "no_current_attempt": "The task has no attempt yet; it waits for one.",
}


@register.filter
def status_label(value: str) -> str:
    return (value or "").replace("_", " ")


@register.filter
def status_glyph(value: str) -> str:
    return GLYPHS.get(value or "", "•")


@register.filter
def binding_reason_text(value: str | None) -> str:
    if not value:
        return ""
    return BINDING_REASONS.get(value, value.replace("_", " "))


@register.filter
def short_id(value) -> str:
    return str(value)[:8] if value else ""


@register.filter
def compact_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None
