"""Measurements that run inside a Django process, one process each:
``python -m bench.cases NAME '{json params}'`` prints its result as JSON on
its last line. The orchestrator (``bench.run``) picks the database through
the environment (see ``bench.harness.app_env``).
"""

from __future__ import annotations

import contextlib
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator

import django

CASES: dict[str, Callable[[dict], dict]] = {}


def case(fn: Callable[[dict], dict]) -> Callable[[dict], dict]:
    CASES[fn.__name__] = fn
    return fn


@case
def seed(params: dict) -> dict:
    """Bulk histories: ``{"sets": [{"prefix", "n", "attempts", "final"}, …]}``.
    Returns the id range of each set's tasks and the events written."""
    from planning.models import PlanningTask

    from . import datagen

    b = datagen.base()
    ranges = {}
    written = 0
    for spec in params["sets"]:
        written += datagen.tasks_with_history(
            n=spec["n"], prefix=spec["prefix"], attempts=spec.get("attempts", 1), final=spec["final"], b=b
        )
        ids = PlanningTask.objects.filter(slug__startswith=spec["prefix"] + "-").values_list("id", flat=True)
        ranges[spec["prefix"]] = [min(ids), max(ids)]
    datagen.analyze()
    out = {"events_written": written, "events": datagen.event_count(), "ranges": ranges}
    if params.get("users"):
        out.update(tokens({"users": params["users"]}))
    return out


@case
def p2(params: dict) -> dict:
    """Reruns per second through ``retries.services.task_rerun``, one client,
    on failed tasks that each have one earlier attempt. Then a sample of
    further reruns with every statement and the COMMIT timed, which splits a
    rerun's time into its SQL (round trip and server) and the Python around
    it (timing costs a little, so the rate is measured without it)."""
    from django.db import connection

    from retries.services import task_rerun

    from . import datagen

    n = params["n"]
    sample = max(5, n // 5)
    bulk_size = params.get("bulk_size", 50)
    datagen.tasks_with_history(n=n + sample, prefix="p2", attempts=params.get("attempts", 1), final="failed")
    datagen.tasks_with_history(n=n + bulk_size, prefix="p2m", attempts=1, final="failed")
    datagen.analyze()
    _product_binding(connection)
    slugs = [f"p2-{i}" for i in range(1, n + sample + 1)]
    warm = max(1, n // 20)
    for slug in slugs[:warm]:
        task_rerun(slug=slug, actor="bench", reason="benchmark warm-up rerun")
    started = time.perf_counter()
    for slug in slugs[warm:n]:
        task_rerun(slug=slug, actor="bench", reason="benchmark rerun")
    seconds = time.perf_counter() - started
    count = n - warm
    with _sql_timed(connection) as sql:
        started = time.perf_counter()
        for slug in slugs[n:]:
            task_rerun(slug=slug, actor="bench", reason="benchmark rerun, statements timed")
        sampled = time.perf_counter() - started
    bulk = _p2_bulk(n, bulk_size)
    return _with_integrity(
        {
            "reruns": count,
            "seconds": seconds,
            "per_second": count / seconds,
            "sample_ms": 1000 * sampled / sample,
            "sample_sql_ms": 1000 * sql.seconds / sample,
            "statements": sql.statements / sample,
            "bulk_per_second": bulk,
        },
        params,
    )


class _SqlTime:
    seconds = 0.0
    statements = 0


@contextlib.contextmanager
def _sql_timed(connection) -> Iterator[_SqlTime]:
    """Wall time spent in the database driver: every statement (psycopg
    sends the implicit BEGIN with the first one) and every COMMIT, each
    timed with ``perf_counter``. (``CaptureQueriesContext`` keeps times
    rounded to the millisecond, too coarse for statements of a fraction of
    one.)"""
    spent = _SqlTime()

    def timed(call: Callable, *args):
        started = time.perf_counter()
        try:
            return call(*args)
        finally:
            spent.seconds += time.perf_counter() - started
            spent.statements += 1

    commit = connection._commit
    connection._commit = lambda: timed(commit)
    try:
        with connection.execute_wrapper(timed):
            yield spent
    finally:
        del connection._commit


def _product_binding(connection) -> None:
    """Reconnect with the product's parameter binding (prepared statements,
    ``DATABASE_PREPARE_THRESHOLD``'s default, or BENCH_PREPARE_THRESHOLD to
    compare): the cases seed with client-side binding because datagen's SQL
    leaves its parameters untyped, but what they measure runs as deployed."""
    import os

    from missioncontrol import settings as product

    connection.close()
    threshold = os.environ.get("BENCH_PREPARE_THRESHOLD") or product.DEFAULT_PREPARE_THRESHOLD
    connection.settings_dict.setdefault("OPTIONS", {}).update(product.prepare_options(threshold))


def _p2_bulk(n: int, size: int) -> float:
    """Reruns per second through ``task_rerun_many``, ``size`` tasks per
    call, one client: the same transition as P2, set-based (tasks seeded
    by ``p2``)."""
    from retries.services import task_rerun_many

    slugs = [f"p2m-{i}" for i in range(1, n + size + 1)]
    task_rerun_many(slugs=slugs[:size], actor="bench", reason="benchmark warm-up bulk rerun")
    rest = slugs[size:]
    started = time.perf_counter()
    for i in range(0, len(rest), size):
        task_rerun_many(slugs=rest[i : i + size], actor="bench", reason="benchmark bulk rerun")
    return len(rest) / (time.perf_counter() - started)


@case
def p3_seed(params: dict) -> dict:
    """A settled history of about ``events`` ledger rows (tasks that failed
    twice, were rerun and succeeded), then ``changed`` running tasks whose
    native runs now report failure through the real report service: the
    work one reconciliation pass has to pick up."""
    from retries.services import RunReport, native_run_report

    from . import datagen

    b = datagen.base()
    per_task = 30  # events of a 3-attempt story, see datagen
    history = max(1, params["events"] // per_task)
    datagen.tasks_with_history(n=history, prefix="hist", attempts=3, final="succeeded", b=b)
    changed = params["changed"]
    datagen.tasks_with_history(n=changed, prefix="chg", attempts=1, final="running", b=b)
    datagen.analyze()
    started = time.perf_counter()
    for i in range(1, changed + 1):
        native_run_report(
            report=RunReport(
                executor=datagen.EXECUTOR,
                native_task_id=f"chg-nt-{i}-1",
                native_run_id=f"chg-nr-{i}-1",
                task=f"chg-{i}",
                status="failed",
                phase="execute",
                message="benchmark failure",
            ),
            actor="bench-executor",
        )
    return {"events": datagen.event_count(), "report_seconds": time.perf_counter() - started}


@case
def p3_pass(params: dict) -> dict:
    """One reconciliation pass, timed, in a process that did nothing else
    (its peak RSS is the pass's, for M1), then an idle pass. The batch size
    is raised so that one pass takes every changed run, as the target asks."""
    from django.conf import settings
    from django.db import connection

    from retries.reconcile import reconcile_pass

    settings.RECONCILE_BATCH_SIZE = max(int(getattr(settings, "RECONCILE_BATCH_SIZE", 500)), params["changed"])
    connection.ensure_connection()
    started = time.perf_counter()
    summary = reconcile_pass()
    seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # A second pass right after, with nothing changed: the cost of looking.
    started = time.perf_counter()
    idle = reconcile_pass()
    idle_seconds = time.perf_counter() - started
    return _with_integrity(
        {
            "seconds": seconds,
            "summary": summary.as_dict(),
            "peak_rss_kib": rss,
            "idle_seconds": idle_seconds,
            "idle_summary": idle.as_dict(),
        },
        params,
    )


@case
def p4_seed(params: dict) -> dict:
    """``tasks`` tasks in a mix of statuses, plus the two detail pages'
    tasks: one with 3 attempts and one with 300."""
    from . import datagen

    b = datagen.base()
    n = params["tasks"]
    quarter = max(1, n // 4)
    for final, count in (
        ("failed", quarter),
        ("succeeded", quarter),
        ("running", quarter),
        ("pending", n - 3 * quarter),
    ):
        datagen.tasks_with_history(n=count, prefix=f"board-{final}", attempts=1, final=final, b=b)
    for attempts in params["detail_attempts"]:
        datagen.tasks_with_history(n=1, prefix=f"detail{attempts}", attempts=attempts, final="failed", b=b)
    datagen.analyze()
    return {"events": datagen.event_count()}


@case
def p4(params: dict) -> dict:
    """Server time of the board and of task detail pages through Django's
    test client (the whole middleware and template stack, no network), the
    median of ``repeat`` requests after a warm-up, and the queries each page
    makes."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from missioncontrol.roles import OPERATOR

    if params.get("seed"):
        p4_seed(params)

    user, _ = get_user_model().objects.get_or_create(username="bench-operator")
    user.groups.add(Group.objects.get(name=OPERATOR))
    client = Client()
    client.force_login(user)
    pages = {"board": "/"}
    for attempts in params["detail_attempts"]:
        pages[f"detail{attempts}"] = f"/tasks/detail{attempts}-1/"
    for url in pages.values():
        for _ in range(2):
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
    # The pages take turns, request by request: a burst of load from the
    # machine's neighbours then falls on every page alike instead of on
    # whichever page was being measured (the 300-attempt detail against the
    # 3-attempt one measured 1.27-1.74 x across runs when taken one after
    # the other).
    times: dict[str, list[float]] = {name: [] for name in pages}
    sizes: dict[str, int] = {}
    for _ in range(params["repeat"]):
        for name, url in pages.items():
            started = time.perf_counter()
            response = client.get(url)
            times[name].append(time.perf_counter() - started)
            assert response.status_code == 200, (url, response.status_code)
            sizes[name] = len(response.content)
    out = {}
    for name, url in pages.items():
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        out[name] = {"seconds": statistics.median(times[name]), "queries": len(queries), "bytes": sizes[name]}
    return _with_integrity(out, params)


@case
def integrity(params: dict) -> dict:
    from retries.integrity import integrity_problems

    problems = integrity_problems()
    return {"problems": len(problems), "first": [str(p) for p in problems[:10]]}


@case
def tokens(params: dict) -> dict:
    """API tokens through the project's own ``create_api_token`` command (its
    key is alone on the last line), several in one process."""
    import io

    from django.core.management import call_command

    out = {}
    for username, role in params["users"]:
        buffer = io.StringIO()
        # Executor tokens are confined to the executors the loads report as.
        grants = [arg for name in ("bench", "soak", "external") for arg in ("--executor", name)]
        call_command(
            "create_api_token", username, "--role", role, *(grants if role == "executor" else []), stdout=buffer
        )
        out[username] = buffer.getvalue().strip().splitlines()[-1].strip()
    return {"tokens": out}


def _with_integrity(result: dict, params: dict) -> dict:
    """Saves a process start per database: the ledger check after a case."""
    if params.get("integrity"):
        result["integrity"] = integrity({})
    return result


def main(argv: list[str]) -> int:
    name, raw = argv[1], (argv[2] if len(argv) > 2 else "{}")
    django.setup()
    result = CASES[name](json.loads(raw))
    result.setdefault("peak_rss_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
