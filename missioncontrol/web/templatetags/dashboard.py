"""Small presentation filters for the dashboard: statuses carry a word and
a glyph, not only a colour. (Binding reasons read as sentences through
``NativeRun.binding_explanation``, the binding decision's own.)"""

from __future__ import annotations

import json

from django import template
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString

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
    "delivered": "✓",
}


@register.filter
def status_label(value: str) -> str:
    return (value or "").replace("_", " ")


@register.filter
def status_glyph(value: str) -> str:
    return GLYPHS.get(value or "", "•")


@register.filter
def short_id(value) -> str:
    return str(value)[:8] if value else ""


@register.filter
def compact_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), default=str)


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None


# --- Per-attempt markup ----------------------------------------------------------
# The task page repeats these for every attempt it shows. Each is one tag
# here instead of an include or a loop of template nodes: rendering an
# attempt with them costs about half as much (issue 7, P4).

CHIP_GLYPHS = {"passed": "✓", "failed": "✕", "earlier": "↺"}
CHIP_STATES = {"not_reached": "not reached", "earlier": "passed earlier"}


@register.simple_tag
def badge(status: str) -> SafeString:
    """What ``planning/_badge.html`` renders, for use inside loops."""
    return format_html(
        '<span class="badge s-{}"><span class="glyph" aria-hidden="true">{}</span> {}</span>',
        status,
        status_glyph(status),
        status_label(status),
    )


@register.simple_tag
def timestamp(value) -> SafeString:
    """``<time>`` with the ISO value, the local time and, as its title, the
    time with its zone; one conversion to local time for all three."""
    if not value:
        return SafeString("")
    local = timezone.localtime(value)
    text = local.strftime("%Y-%m-%d %H:%M:%S")
    return format_html(
        '<time datetime="{}" title="{} {}">{}</time>', local.isoformat(), text, local.tzname() or "", text
    )


@register.simple_tag
def phase_chips(chips) -> SafeString:
    """The ``<li>`` of each phase chip of an attempt, built as one string
    (``format_html`` per chip escaped our own constants too)."""
    items = []
    for c in chips:
        state = escape(c.state)
        title = f' title="{escape(c.message)}"' if c.message else ""
        resume = ' <span class="chip-state">(resume)</span>' if c.is_resume else ""
        items.append(
            f'<li class="chip chip-{state}{" chip-resume" if c.is_resume else ""}"{title}>\n'
            f'  <span aria-hidden="true">{CHIP_GLYPHS.get(c.state, "·")}</span>\n'
            f'  {escape(c.phase)} <span class="chip-state">{CHIP_STATES.get(c.state, state)}</span>{resume}\n</li>'
        )
    return SafeString("\n".join(items))
