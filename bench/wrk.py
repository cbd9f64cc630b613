"""Single reports measured with wrk (Debian's package, C, one event loop per
thread) instead of Python threads: what the server does, not what a Python
client can send on the same two CPUs. P1b-wrk sends the two reports of new
runs (``running``, which binds the run to the current attempt, then
``succeeded``), each once; P1h sends heartbeats, the same ``running`` report
of runs already bound, again and again. ``bench/lua/reports.lua`` reads the
request bodies this module writes, one file per wrk thread.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .harness import log

LUA = Path(__file__).resolve().parent / "lua" / "reports.lua"
THREADS = 2  # wrk's event loops; more would only compete for the two CPUs


class WrkUnavailable(RuntimeError):
    """wrk is not installed and could not be."""


def ensure() -> str:
    """The path of wrk, installing Debian's package first when it is
    missing (as .ci/services.sh installs chromium); raises WrkUnavailable,
    with the reason, when that is not possible."""
    found = shutil.which("wrk")
    if found:
        return found
    if not shutil.which("apt-get"):
        raise WrkUnavailable("wrk is missing and there is no apt-get to install Debian's package")
    if os.geteuid() != 0:
        raise WrkUnavailable("wrk is missing and installing it needs root: as root, apt-get install wrk")
    log("installing Debian's wrk (apt-get install wrk)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    proc = subprocess.run(install, env=env, capture_output=True, text=True)
    if proc.returncode != 0:  # an empty or stale package list: update it once, then try again
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, text=True)
        proc = subprocess.run(install, env=env, capture_output=True, text=True)
    found = shutil.which("wrk")
    if proc.returncode != 0 or not found:
        raise WrkUnavailable(f"apt-get install wrk failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-500:]}")
    return found


@dataclass
class WrkResult:
    requests: int
    seconds: float
    status_errors: int
    socket_errors: int
    threads_exhausted: int
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def problems(self, name: str) -> list[str]:
        out = []
        if self.status_errors or self.socket_errors:
            out.append(
                f"{name}: {self.status_errors} responses ≥ 400 and {self.socket_errors} socket errors or timeouts"
            )
        if self.threads_exhausted:
            out.append(
                f"{name}: {self.threads_exhausted} wrk thread(s) ran out of reports before the end "
                "(the rate is then too low): seed more tasks (Sizes.wrk_tasks)"
            )
        return out


def write_bodies(directory: Path, per_thread: list[list[dict]]) -> Path:
    """``directory/req-<n>.jsonl`` for wrk thread n (from 1): its bodies in
    the order it sends them, one JSON object per line."""
    directory.mkdir(parents=True, exist_ok=True)
    for n, bodies in enumerate(per_thread, start=1):
        (directory / f"req-{n}.jsonl").write_text("".join(json.dumps(b, separators=(",", ":")) + "\n" for b in bodies))
    return directory


def new_run_order(pairs: list[list[dict]], *, threads: int, connections: int) -> list[list[dict]]:
    """Each thread's share of the report pairs, in blocks: the ``running``
    reports of a block's tasks, then their ``succeeded`` reports. A wrk
    thread has at most one request in flight per connection, so with a block
    at least as long as its connections, a task's first report has been
    answered before its second is sent: the same story the Python client
    tells (a new run, then its status change), without waiting in between."""
    block = max(16, 2 * -(-connections // threads))
    out = []
    for share in (pairs[i::threads] for i in range(threads)):
        bodies: list[dict] = []
        for start in range(0, len(share), block):
            chunk = share[start : start + block]
            bodies += [pair[0] for pair in chunk] + [pair[1] for pair in chunk]
        out.append(bodies)
    return out


def heartbeat_order(reports: list[dict], *, threads: int) -> list[list[dict]]:
    """Each thread cycles through its own runs, so no run is reported by two
    threads at once."""
    return [reports[i::threads] for i in range(threads)]


def run(
    url: str, token: str, directory: Path, *, connections: int, seconds: float, cycle: bool, threads: int = THREADS
) -> WrkResult:
    cmd = [
        ensure(),
        "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--timeout", "60s",
        "-s", str(LUA), url, "--", str(directory), token, "1" if cycle else "0",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRK-RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    raw = json.loads(line.split(" ", 1)[1])
    return WrkResult(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        status_errors=raw["status_errors"],
        socket_errors=raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"],
        threads_exhausted=raw["threads_exhausted"],
        p50_ms=raw["latency_p50_us"] / 1000,
        p99_ms=raw["latency_p99_us"] / 1000,
    )
