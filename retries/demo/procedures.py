"""The two demo procedures, run by the ``local`` executor. Their phases'
behaviour comes from each task's params (``faults``); ``phase_seconds``
here are only the defaults."""

from __future__ import annotations

from typing import Any

DEMO_PROCEDURES: dict[str, dict[str, Any]] = {
    "aemeath": {
        "name": "Aemeath",
        "phases": ["preflight", "execute", "finalize"],
        "max_attempts": 3,
        "stall_timeout_seconds": 15,
        "phase_seconds": {"preflight": 2, "execute": 5, "finalize": 2},
    },
    "shorekeeper": {
        "name": "Shorekeeper",
        "phases": ["preflight", "execute", "finalize"],
        "max_attempts": 3,
        "stall_timeout_seconds": 15,
        "phase_seconds": {"preflight": 1, "execute": 4, "finalize": 2},
    },
}
