"""The README's run command uses the embedded default: SQLite, no broker
server. The set-based services write with PostgreSQL-only statements there and
with the ORM's bulk methods here; this runs them on SQLite, in a process of
its own, so a PostgreSQL-only statement cannot slip into that path (one did:
the reconcile pass's batched retry failed on every pass and fell back to
the per-task path)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_set_based_services_run_on_the_embedded_default(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env.update(
        {
            "DEBUG": "1",
            "MISSIONCONTROL_VAR_DIR": str(tmp_path),
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "missioncontrol.settings",
        }
    )
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "embedded" / "story.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["vendor"] == "sqlite"
    assert found["retried"] == 3
    assert found["started_when_spent"] == 0 and found["after_block"] == ["blocked"] * 3
    assert found["reruns"] == [3, 3, 3]
    assert found["bound"] == ["bound"] * 4
    # Attempts 1 and 2 of each task superseded; each bound run's ids retired once.
    assert found["superseded"] == 6
    assert found["retired"] == 12
    assert found["statuses"] == ["running"] * 4
    assert found["problems"] == []
