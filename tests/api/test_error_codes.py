"""Every business error code the core raises has its HTTP status in the one
table of the API (``STATUS_FOR_CODE``): a new code cannot silently fall back."""

from __future__ import annotations

import pathlib
import re

from missioncontrol.api.errors import STATUS_FOR_CODE

ROOT = pathlib.Path(__file__).resolve().parents[2]
RAISED = re.compile(r"""(?:ServiceError|Refusal)\(\s*["']([a-z_]+)["']""")


def _codes_in_core() -> set[str]:
    codes: set[str] = set()
    for package in ("planning", "retries", "missioncontrol"):
        for path in (ROOT / package).rglob("*.py"):
            codes.update(RAISED.findall(path.read_text()))
    return codes


def test_every_raised_code_is_in_the_table():
    codes = _codes_in_core()
    assert "use_repair" in codes and "invalid" in codes  # the scan finds the core's raises
    assert codes - set(STATUS_FOR_CODE) == set()


def test_the_contract_statuses():
    assert STATUS_FOR_CODE["invalid"] == 400
    assert STATUS_FOR_CODE["not_found"] == 404
    assert STATUS_FOR_CODE["idempotency_key_reused"] == 422
    for code in ("attempt_active", "use_repair", "not_launched", "budget_exhausted", "superseded"):
        assert STATUS_FOR_CODE[code] == 409
