"""The write baseline: pgbench running the raw transition (bench/sql/transition.sql)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from .harness import PG_URL

SCRIPT = Path(__file__).resolve().parent / "sql" / "transition.sql"
_TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.MULTILINE)


def transition_tps(db_name: str, *, clients: int, seconds: float, lo: int, hi: int) -> float:
    """Transactions per second of the raw transition on task ids in [lo, hi]."""
    url = urlsplit(PG_URL)
    cmd = [
        "pgbench", "--no-vacuum",
        "-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres",
        "-f", str(SCRIPT),
        "-c", str(clients), "-j", str(min(clients, 2)),
        "-T", str(max(1, round(seconds))),
        "-D", f"lo={lo}", "-D", f"hi={hi}",
        db_name,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    match = _TPS.search(proc.stdout)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"pgbench failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return float(match.group(1))
