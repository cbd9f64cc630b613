"""Every setting the README's configuration table names is read from the
environment by missioncontrol/settings.py (or, for gunicorn's, by
gunicorn.conf.py), and every variable those read is documented in the
README."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
SETTINGS = (ROOT / "missioncontrol" / "settings.py").read_text() + (ROOT / "gunicorn.conf.py").read_text()


def readme_table_variables() -> set[str]:
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            first_cell = line.split("|")[1]
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_cell))
    return names


def environment_reads() -> set[str]:
    direct = set(re.findall(r"os\.environ(?:\.get)?[\(\[]\s*\"([A-Z0-9_]+)\"", SETTINGS))
    helpers = set(re.findall(r"env_(?:bool|list)\(\s*\"([A-Z0-9_]+)\"", SETTINGS))
    return direct | helpers


def test_every_variable_in_the_readme_table_is_read_from_the_environment():
    table = readme_table_variables()
    assert {"DATABASE_URL", "SECRET_KEY", "RECONCILE_RELAUNCH_AFTER_SECONDS"} <= table, table
    missing = table - environment_reads()
    assert not missing, f"named in the README but never read from the environment: {sorted(missing)}"


def test_every_variable_settings_reads_is_documented():
    undocumented = {name for name in environment_reads() if f"`{name}`" not in README}
    assert not undocumented, f"read by settings.py but not in the README: {sorted(undocumented)}"


def test_reconcile_relaunch_after_is_a_setting_with_its_default():
    assert settings.RECONCILE_RELAUNCH_AFTER_SECONDS == 60
