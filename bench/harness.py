"""What every benchmark shares: its own PostgreSQL databases (cloned from one
migrated template, never anybody else's), the environment the app runs
with, a gunicorn server on loopback, API tokens, medians and a description
of the machine. Nothing here imports Django: each measurement runs in its own
process (``bench.cases``) so that one cannot warm or bloat the next.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import platform
import runpy
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6")


def var_dir() -> Path:
    """The app's MISSIONCONTROL_VAR_DIR (its collected static files) for this
    run only. A shared one let two runs' collectstatic delete each other's
    files mid-write (CI saw FileNotFoundError). Made once per run, handed to
    child processes through BENCH_VAR_DIR, removed by the process that made it."""
    given = os.environ.get("BENCH_VAR_DIR")
    if given:
        return Path(given)
    made = tempfile.mkdtemp(prefix="mc-bench-var-")
    os.environ["BENCH_VAR_DIR"] = made
    atexit.register(shutil.rmtree, made, ignore_errors=True)
    return Path(made)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- Databases ---------------------------------------------------------------------


def _admin() -> psycopg.Connection:
    return psycopg.connect(f"{PG_URL}/postgres", autocommit=True)


def db_url(name: str) -> str:
    return f"{PG_URL}/{name}"


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    return name


def drop_db(name: str) -> None:
    with _admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")


def create_template(name: str) -> None:
    """A freshly migrated database that every benchmark clones (a clone takes
    a fraction of a second; migrating takes seconds)."""
    drop_db(name)
    with _admin() as conn:
        conn.execute(f"CREATE DATABASE {_ident(name)}")
    manage(app_env(name), "migrate", "--noinput", "-v", "0")
    # DEBUG is off, so pages need the hashed static files a deployment serves.
    manage(app_env(name), "collectstatic", "--noinput", "-v", "0")


def clone_db(template: str, name: str) -> None:
    """A copy of ``template``. PostgreSQL 15 copies through the WAL by
    default: a clone of the 1M-event database then leaves hundreds of MB for
    the checkpointer to flush while the next measurement runs (a reconcile
    pass measured 30-50 % slower, more with every clone). FILE_COPY copies the
    files and checkpoints before returning, so measurements start quiet."""
    drop_db(name)
    with _admin() as conn:
        strategy = " STRATEGY FILE_COPY" if conn.info.server_version >= 150000 else ""
        conn.execute(f"CREATE DATABASE {_ident(name)} TEMPLATE {_ident(template)}{strategy}")


@contextlib.contextmanager
def database(template: str, name: str, *, keep: bool = False) -> Iterator[str]:
    clone_db(template, name)
    try:
        yield name
    finally:
        if not keep:
            drop_db(name)


def pg_settings() -> dict[str, str]:
    with _admin() as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        out = {"server_version": version}
        for setting in ("shared_buffers", "synchronous_commit", "fsync", "max_connections", "wal_level"):
            out[setting] = conn.execute(f"SHOW {setting}").fetchone()[0]
    return out


# --- The application ------------------------------------------------------------------

SECRET = "bench-" + secrets.token_hex(32)


def app_env(db_name: str, **extra: str) -> dict[str, str]:
    """Production-like settings: DEBUG off (no query log kept in memory),
    persistent connections as a deployment would use, loopback only."""
    var = var_dir()  # first, so that the copied environment hands it on
    env = dict(os.environ)
    # The bench's own seeding SQL (bench/datagen.py, also run inside the P2
    # and P4 cases) leaves its parameters untyped: client-side binding for the
    # cases (P3 and P4 measure without prepared statements; P2 and P2m switch
    # to the product's binding once seeded, see cases._product_binding); the
    # server under test (P1, P1b, P1b-wrk, P1h, M1) keeps the product's
    # default, see Server.
    env["DATABASE_PREPARE_THRESHOLD"] = "off"
    env.update(
        {
            "DATABASE_URL": db_url(db_name),
            "CELERY_BROKER_URL": REDIS_URL,
            "SECRET_KEY": SECRET,
            "DEBUG": "0",
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "SECURE_SSL_REDIRECT": "0",
            "SECURE_HSTS_SECONDS": "0",
            "CONN_MAX_AGE": "600",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "missioncontrol.settings",
            "PYTHONPATH": str(ROOT),
            "MISSIONCONTROL_VAR_DIR": str(var),
        }
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([PYTHON, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def create_tokens(db_name: str, users: list[tuple[str, str]]) -> dict[str, str]:
    """{username: key} through the project's own ``create_api_token`` command."""
    return run_case("tokens", db_name, {"users": users})["tokens"]


def integrity_failures(result: dict, where: str) -> list[str]:
    found = result.get("integrity", {})
    if found.get("problems"):
        return [f"{where}: {found['problems']} ledger problems, e.g. {found['first'][:3]}"]
    return []


def run_case(name: str, db_name: str, params: dict, *, env_extra: dict[str, str] | None = None) -> dict:
    """Run one measurement of ``bench.cases`` in a fresh process against
    ``db_name``; it prints its result as JSON on its last line."""
    env = app_env(db_name, **(env_extra or {}))
    proc = subprocess.run(
        [PYTHON, "-m", "bench.cases", name, json.dumps(params)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"bench case {name} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gunicorn_defaults(environ: dict[str, str] | None = None) -> tuple[int, int]:
    """(workers, threads) that gunicorn.conf.py gives under ``environ``
    (default: none of its variables set)."""
    keys = ("GUNICORN_WORKERS", "WEB_CONCURRENCY", "GUNICORN_THREADS")
    saved = {k: os.environ.get(k) for k in keys}
    try:
        for k in keys:
            os.environ.pop(k, None)
            if environ and environ.get(k):
                os.environ[k] = environ[k]
        conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return conf["workers"], conf["threads"]


def deployment(workers: int, threads: int) -> str:
    """How gunicorn runs with that many workers and threads."""
    return f"gthread {workers} × {threads}" if threads > 1 else f"sync × {workers}"


@dataclass
class Server:
    """gunicorn serving the app on loopback, with the committed
    gunicorn.conf.py (the production settings); ``workers`` and ``threads``
    override its defaults through GUNICORN_WORKERS and GUNICORN_THREADS.
    Stopped (master and workers) when the ``with`` block ends, whatever
    happens inside it."""

    env: dict[str, str]
    workers: int | None = None
    threads: int | None = None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def description(self) -> str:
        return deployment(*gunicorn_defaults(self._env()))

    def _env(self) -> dict[str, str]:
        env = dict(self.env)
        # The product's default, or BENCH_PREPARE_THRESHOLD (e.g. "off") to compare.
        env.pop("DATABASE_PREPARE_THRESHOLD", None)
        if os.environ.get("BENCH_PREPARE_THRESHOLD"):
            env["DATABASE_PREPARE_THRESHOLD"] = os.environ["BENCH_PREPARE_THRESHOLD"]
        if self.workers is not None:
            env["GUNICORN_WORKERS"] = str(self.workers)
        if self.threads is not None:
            env["GUNICORN_THREADS"] = str(self.threads)
        return env

    def __enter__(self) -> Server:
        cmd = [
            PYTHON, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "missioncontrol.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}",
            "--timeout", "120",
            "--log-level", "warning",
        ]  # fmt: skip
        self._log = open(ROOT / "bench" / "results" / f"gunicorn-{self.port}.log", "w")
        self.proc = subprocess.Popen(cmd, env=self._env(), cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self._log.name}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise RuntimeError("gunicorn did not answer /healthz within 60 s")

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        return children(self.proc.pid)

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def children(pid: int) -> list[int]:
    """Direct children of a process (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces; the fields after it are fixed.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            out.append(int(entry.name))
    return out


def peak_rss_kib(pid: int) -> int:
    """The kernel's high-water mark of a process's resident memory (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for {pid}")


# --- Numbers ----------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    pg = pg_settings()
    pgbench_version = subprocess.run(["pgbench", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": f"{cpu} × {os.cpu_count()} logical CPUs",
        "memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": f"{pg['server_version']} (shared_buffers {pg['shared_buffers']}, "
        f"synchronous_commit {pg['synchronous_commit']}, fsync {pg['fsync']})",
        "pgbench": pgbench_version,
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
