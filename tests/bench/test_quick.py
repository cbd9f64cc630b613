"""The quick modes of the benchmarks and of the soak run in CI so that they
cannot rot: they must run against real PostgreSQL and gunicorn, produce a
number for every figure and find nothing wrong. The targets themselves are
judged by ``make bench`` at full size, not here."""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIGURES = {"B1", "B8", "P1", "P1b", "P1b-wrk", "P1h", "P2", "P2s", "P2m", "P3", "P3r", "P3i", "P4", "M1"}


def _require_wrk() -> None:
    """P1b-wrk and P1h need wrk; the bench installs Debian's package when it
    is missing (as root). Only when that cannot be done is the test skipped."""
    from bench import wrk

    try:
        wrk.ensure()
    except wrk.WrkUnavailable as exc:
        pytest.skip(f"wrk is not installed and cannot be: {exc}")


def _env() -> dict[str, str]:
    """The bench makes its own databases on the server the suite uses, with
    names of its own, and uses the suite's Redis database."""
    env = dict(os.environ)
    url = urlsplit(os.environ["DATABASE_URL"])
    env["BENCH_PG_URL"] = f"{url.scheme}://{url.netloc}"
    if os.environ.get("CELERY_BROKER_URL", "").startswith("redis://"):
        env["BENCH_REDIS_URL"] = os.environ["CELERY_BROKER_URL"]
    return env


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=_env(), capture_output=True, text=True, check=False, timeout=840
    )


def _databases_left(prefix: str) -> list[str]:
    import psycopg

    with psycopg.connect(_env()["BENCH_PG_URL"] + "/postgres") as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [prefix + "%"]).fetchall()
    return [r[0] for r in rows]


# A minute on a quiet 2-CPU machine; several when other suites share it.
@pytest.mark.timeout(900)
@pytest.mark.xdist_group("bench")
def test_quick_bench_produces_every_figure(tmp_path):
    _require_wrk()
    prefix = f"mc_bench_ci_{os.getpid()}"
    out, raw = tmp_path / "performance.md", tmp_path / "raw.json"
    proc = _run(["-m", "bench", "--quick", "--out", str(out), "--json", str(raw), "--db-prefix", prefix])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]

    result = json.loads(raw.read_text())
    assert result["problems"] == []
    rows = result["rows"]
    assert {row["id"] for row in rows} == FIGURES
    for row in rows:
        # Every figure has a measured number, and a ratio wherever it has a baseline.
        assert any(ch.isdigit() for ch in row["value"]), row
        if row["baseline"] != "—":
            assert row["ratio"] is not None and row["ratio"] > 0, row
    assert min(result["writes"]["pg1"]) > 0 and min(result["writes"]["p1"]) > 0 and min(result["writes"]["p2"]) > 0
    # The split of a rerun's time: SQL is a real part of it, not all of it.
    for sql, total in zip(result["writes"]["p2_sql_ms"], result["writes"]["p2_ms"], strict=True):
        assert 0 < sql < total

    # The single-report paths, measured by wrk against the same server: a rate
    # per round, and the rows judge issue 14's targets (yes or no, never blank).
    assert min(result["writes"]["p1bw"]) > 0 and min(result["writes"]["p1h"]) > 0
    by_id = {row["id"]: row for row in rows}
    assert "wrk" in by_id["P1b-wrk"]["what"] and "wrk" in by_id["P1h"]["what"]
    assert by_id["P1b-wrk"]["target"] == "≥ 0.12 × B8" and by_id["P1h"]["target"] == "≥ 0.25 × B8"
    assert by_id["P1b-wrk"]["met"] in (True, False) and by_id["P1h"]["met"] in (True, False)

    text = out.read_text()
    assert "| P1 |" in text and "pgbench" in text and "postgresql" in text
    assert "| P1b-wrk |" in text and "| P1h |" in text
    assert _databases_left(prefix) == [], "the bench must drop the databases it made"


# Half a minute on a quiet 2-CPU machine.
@pytest.mark.timeout(900)
@pytest.mark.xdist_group("bench")
def test_quick_deployments_compares_gunicorn_configurations(tmp_path):
    _require_wrk()
    prefix = f"mc_bench_dep_{os.getpid()}"
    out, raw = tmp_path / "performance.md", tmp_path / "raw.json"
    args = ["-m", "bench", "--deployments", "--quick", "--configs", "1x1,1x2"]
    proc = _run([*args, "--out", str(out), "--json", str(raw), "--db-prefix", prefix])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]

    result = json.loads(raw.read_text())
    assert result["problems"] == []
    assert [row["deployment"] for row in result["rows"]] == ["sync × 1", "gthread 1 × 2"]
    for row in result["rows"]:
        assert row["p1bw"] > 0 and row["p1h"] > 0 and row["p1bw_b8"] > 0 and row["p1h_b8"] > 0, row
    text = out.read_text()
    assert "| gthread 1 × 2 |" in text and "bench-deployments:begin" in text
    assert _databases_left(prefix) == []


@pytest.mark.timeout(900)
@pytest.mark.xdist_group("bench")
def test_quick_soak_is_clean(tmp_path):
    prefix = f"mc_soak_ci_{os.getpid()}"
    out = tmp_path / "reliability.md"
    proc = _run(["-m", "bench.soak", "--quick", "--out", str(out), "--db-prefix", prefix])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]

    text = out.read_text()
    assert "**clean**" in text
    for check in (
        "5xx responses",
        "superseded runs bound",
        "tasks with attempt numbers missing or repeated",
        "repeated Idempotency-Keys not answered with the first 201",
        "verify_integrity exit status",
    ):
        assert f"| {check} | 0 | 0 |" in text
    # The load really went through the API: reports were accepted and stale ones turned away.
    assert "| report | 201 |" in text
    assert "stale" in text
    assert _databases_left(prefix) == []
