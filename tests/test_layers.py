"""The import contracts of pyproject.toml ([tool.importlinter], checked by
``lint-imports`` in ``make test``) cover every module: each module of
planning/ and retries/ is either core, a source of both core contracts, or
one of the interfaces below. A new module is classified before it lands, so
a core module can never slip out of the contracts by being forgotten."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Not core: entry points and Django's plumbing. Everything else is core.
INTERFACES = {
    "planning.admin",
    "planning.apps",
    "planning.migrations",
    "retries.admin",
    "retries.apps",
    "retries.demo",
    "retries.management",
    "retries.migrations",
    "retries.tasks",
}
CORE_CONTRACTS = ("core-no-interfaces", "core-no-http")


def contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def test_both_core_contracts_cover_the_same_modules():
    found = contracts()
    first, second = (set(found[name]["source_modules"]) for name in CORE_CONTRACTS)
    assert first == second


def test_every_module_of_planning_and_retries_is_core_or_an_interface():
    core = set(contracts()[CORE_CONTRACTS[0]]["source_modules"])
    unclassified = sorted(
        name
        for package in ("planning", "retries")
        for info in pkgutil.iter_modules([str(ROOT / package)])
        if (name := f"{package}.{info.name}") not in core | INTERFACES
    )
    assert not unclassified, (
        f"{unclassified}: add each core module to the source_modules of {' and '.join(CORE_CONTRACTS)} "
        "in pyproject.toml, or an entry point to INTERFACES here."
    )
    assert not core & INTERFACES
