"""HTTP load for P1/P1b and M1: concurrent clients posting native-run
reports to a running server, as executors would."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from dataclasses import dataclass

import psycopg
import requests

from .harness import db_url


@dataclass
class LoadResult:
    reports: int
    seconds: float
    statuses: Counter

    @property
    def per_second(self) -> float:
        return self.reports / self.seconds

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 400)


def launched_tasks(db_name: str, prefix: str) -> list[tuple[str, str]]:
    """(slug, current attempt id) of the generated tasks named ``<prefix>-<i>``."""
    with psycopg.connect(db_url(db_name)) as conn:
        rows = conn.execute(
            """
            SELECT t.slug, a.id::text FROM planning_planningtask t
            JOIN retries_attempt a ON a.task_id = t.id AND a.superseded_at IS NULL
            WHERE t.slug LIKE %s ORDER BY t.id
            """,
            [prefix + "-%"],
        ).fetchall()
    return [(slug, attempt_id) for slug, attempt_id in rows]


def report_pairs(tasks: list[tuple[str, str]], tag: str) -> list[list[dict]]:
    """For each task, the two reports of one run that binds to the current
    attempt and finishes: ``running`` (a new run, bound) then ``succeeded``."""
    created_at = dt.datetime.now(dt.UTC).isoformat()
    out = []
    for slug, attempt_id in tasks:
        common = {
            "executor": "bench",
            "native_task_id": f"{tag}-nt-{slug}",
            "native_run_id": f"{tag}-nr-{slug}",
            "task": slug,
            "attempt_id": attempt_id,
            "created_at": created_at,
        }
        out.append(
            [
                {**common, "status": "running", "phase": "execute"},
                {**common, "status": "succeeded", "phase": "finalize"},
            ]
        )
    return out


def _split(items: list, parts: int) -> list[list]:
    return [items[i::parts] for i in range(parts)]


def post_reports(
    url: str, token: str, tasks: list[tuple[str, str]], *, clients: int, batch_tasks: int | None, tag: str
) -> LoadResult:
    """Each client owns a slice of the tasks. With ``batch_tasks``, a client
    sends ``POST /native-runs/batch/`` bodies of that many tasks' report pairs
    (2 × batch_tasks reports); without, one ``POST /native-runs/`` per report."""
    slices = _split(report_pairs(tasks, tag), clients)
    statuses: Counter = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1, timeout=300)
    failures: list[BaseException] = []

    def client(pairs: list[list[dict]]) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        local: Counter = Counter()
        if batch_tasks:
            bodies = [
                ("/api/v1/native-runs/batch/", {"reports": [r for pair in pairs[i : i + batch_tasks] for r in pair]})
                for i in range(0, len(pairs), batch_tasks)
            ]
        else:
            bodies = [("/api/v1/native-runs/", report) for pair in pairs for report in pair]
        barrier.wait()
        try:
            for path, body in bodies:
                response = session.post(url + path, json=body, timeout=120)
                local[response.status_code] += 1
        except BaseException as exc:  # a client that died must fail the measurement
            failures.append(exc)
        finally:
            with lock:
                statuses.update(local)
            session.close()

    threads = [threading.Thread(target=client, args=(s,)) for s in slices]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} client(s) failed: {failures[0]!r}")
    return LoadResult(reports=2 * len(tasks), seconds=seconds, statuses=statuses)


def bind_runs(url: str, token: str, reports: list[dict], *, per_request: int = 100) -> None:
    """Send ``running`` reports of new runs through ``POST
    /native-runs/batch/`` (untimed set-up): afterwards each run exists,
    bound to its task's current attempt, ready for heartbeats."""
    with requests.Session() as session:
        session.headers["Authorization"] = f"Token {token}"
        for i in range(0, len(reports), per_request):
            response = session.post(
                url + "/api/v1/native-runs/batch/", json={"reports": reports[i : i + per_request]}, timeout=120
            )
            if response.status_code != 200:
                raise RuntimeError(f"binding runs for heartbeats: {response.status_code} {response.text[:500]}")
