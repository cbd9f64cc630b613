"""Secrets come only from the environment, and production settings pass
Django's deployment checks with no warnings."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args, env_overrides):
    """manage.py on the production settings (not the suite's tests.settings),
    with none of the test run's DEBUG, key or hosts."""
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"}}
    env.update({"DJANGO_SETTINGS_MODULE": "missioncontrol.settings", **env_overrides})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_check_deploy_has_no_warnings_with_debug_off():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env_overrides={"SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "mc.example.com"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = run_manage("check", env_overrides={"ALLOWED_HOSTS": "mc.example.com"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
