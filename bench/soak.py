"""``python -m bench.soak [--minutes M] [--max-requests N] [--quick]``
(``make soak``): a mixed load held through the REST API on loopback.

Simulated executors pick up launched tasks, report their native runs,
heartbeat, record phases and finish (some fail, some fall silent and
stall); simulated operators rerun (one task, or several in one
``POST /reruns/``), repair and cancel at random (sometimes repeating an
Idempotency-Key); a stale executor keeps reporting the runs of
superseded attempts, under their old ids, under fresh ids that claim the old
attempt, and as legacy runs without an attempt id; reconciliation passes run
alongside. Bounded by time and by requests. At the end it checks, and
prints: zero 5xx responses, zero superseded runs bound, attempt numbers
1..n with none missing or repeated, and ``verify_integrity`` clean. The
result goes to ``docs/reliability.md`` (``bench/results/`` in quick mode).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests

from . import harness
from .harness import log

BEGIN = "<!-- soak:begin (written by `make soak`; edit outside these markers) -->"
END = "<!-- soak:end -->"
PHASES = ["preflight", "execute", "finalize"]


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0
    by_action: Counter = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    stale_fresh_run_ids: set[str] = field(default_factory=set)
    replays_that_differed: list[str] = field(default_factory=list)

    def record(self, action: str, response: requests.Response) -> None:
        with self.lock:
            self.requests += 1
            self.by_action[(action, response.status_code)] += 1
            if response.status_code >= 500:
                self.server_errors.append(f"{action} {response.status_code}: {response.text[:300]}")


@dataclass
class Job:
    """One run an executor is carrying out for one attempt."""

    slug: str
    attempt_id: str
    native_task_id: str
    native_run_id: str
    phase: int = 0
    fate: str = "succeed"  # succeed | fail | stall


class Soak:
    def __init__(self, url: str, tokens: dict[str, str], *, seconds: float, max_requests: int, seed: int) -> None:
        self.url = url
        self.tokens = tokens
        self.deadline = time.monotonic() + seconds
        self.max_requests = max_requests
        self.stats = Stats()
        self.stop = threading.Event()
        self.claimed: set[str] = set()  # attempt ids some executor took
        self.superseded_jobs: list[Job] = []
        self.lock = threading.Lock()
        self.seed = seed

    # -- plumbing --

    def session(self, role: str) -> requests.Session:
        s = requests.Session()
        s.headers["Authorization"] = f"Token {self.tokens[role]}"
        return s

    def done(self) -> bool:
        return self.stop.is_set() or time.monotonic() > self.deadline or self.stats.requests >= self.max_requests

    def call(self, s: requests.Session, action: str, method: str, path: str, **kwargs) -> requests.Response:
        response = s.request(method, self.url + path, timeout=60, **kwargs)
        self.stats.record(action, response)
        return response

    # -- executors --

    def executor(self, name: str, rng: random.Random) -> None:
        s = self.session("executor")
        jobs: dict[str, Job] = {}
        while not self.done():
            if len(jobs) < 4:
                page = self.call(
                    s, "list launched", "GET", "/api/v1/tasks/", params={"status": "launch_requested", "page_size": 20}
                )
                if page.status_code == 200:
                    for task in page.json()["results"]:
                        current = task.get("current_attempt") or {}
                        attempt_id = current.get("id")
                        with self.lock:
                            if not attempt_id or attempt_id in self.claimed:
                                continue
                            self.claimed.add(attempt_id)
                        tag = uuid.uuid4().hex[:10]
                        fate = rng.choices(["succeed", "fail", "stall"], weights=[75, 18, 7])[0]
                        jobs[attempt_id] = Job(task["slug"], attempt_id, f"soak-nt-{tag}", f"soak-nr-{tag}", fate=fate)
                        self.report(s, jobs[attempt_id], "running")
                        if len(jobs) >= 4:
                            break
            for attempt_id, job in list(jobs.items()):
                if self.done():
                    break
                if job.fate == "stall" and job.phase >= 1:
                    # Falls silent: reconciliation must notice the stall.
                    del jobs[attempt_id]
                    continue
                self.report(s, job, "running")  # heartbeat
                if job.phase < len(PHASES):
                    outcome = "failed" if job.fate == "fail" and job.phase == 1 else "passed"
                    r = self.call(
                        s,
                        "phase",
                        "POST",
                        f"/api/v1/attempts/{attempt_id}/phases/",
                        json={"phase": PHASES[job.phase], "outcome": outcome},
                    )
                    if r.status_code == 409:
                        # Superseded or finished meanwhile: hand it to the stale executor.
                        del jobs[attempt_id]
                        with self.lock:
                            self.superseded_jobs.append(job)
                        continue
                    job.phase += 1
                    if outcome == "failed":
                        self.report(s, job, "failed", message="soak failure")
                        del jobs[attempt_id]
                        continue
                if job.phase >= len(PHASES):
                    self.report(s, job, "succeeded")
                    del jobs[attempt_id]
                    with self.lock:
                        self.superseded_jobs.append(job)  # finished runs also get replayed by the stale executor
            time.sleep(rng.uniform(0.0, 0.05))

    def report(
        self,
        s: requests.Session,
        job: Job,
        status: str,
        *,
        message: str = "",
        action: str = "report",
        attempt_id: str | bool | None = True,
        native_run_id: str | None = None,
    ) -> requests.Response:
        body = {
            "executor": "soak",
            "native_task_id": job.native_task_id,
            "native_run_id": native_run_id or job.native_run_id,
            "task": job.slug,
            "status": status,
            "phase": PHASES[min(job.phase, len(PHASES) - 1)],
            "message": message,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        }
        if attempt_id is True:
            body["attempt_id"] = job.attempt_id
        elif attempt_id:
            body["attempt_id"] = attempt_id
        return self.call(s, action, "POST", "/api/v1/native-runs/", json=body)

    # -- the stale executor --

    def stale_executor(self, rng: random.Random) -> None:
        s = self.session("stale")
        while not self.done():
            with self.lock:
                job = rng.choice(self.superseded_jobs) if self.superseded_jobs else None
            if job is None:
                time.sleep(0.1)
                continue
            kind = rng.choice(["same", "fresh", "legacy"])
            if kind == "same":
                self.report(s, job, rng.choice(["running", "succeeded", "failed"]), action="stale same run")
            elif kind == "fresh":
                fresh = f"soak-stale-{uuid.uuid4().hex[:10]}"
                with self.stats.lock:
                    self.stats.stale_fresh_run_ids.add(fresh)
                self.report(s, job, "running", action="stale fresh run claiming old attempt", native_run_id=fresh)
            else:
                self.report(s, job, "running", action="stale legacy run (old ids)", attempt_id=None)
            time.sleep(rng.uniform(0.0, 0.05))

    # -- operators --

    def operator(self, rng: random.Random) -> None:
        s = self.session("operator")
        keys: list[tuple[str, str, dict, str]] = []
        bulk_keys: list[tuple[str, dict, list[str]]] = []
        while not self.done():
            page = self.call(s, "list tasks", "GET", "/api/v1/tasks/", params={"page_size": 200})
            if page.status_code != 200 or not page.json()["results"]:
                time.sleep(0.1)
                continue
            task = rng.choice(page.json()["results"])
            slug, status = task["slug"], task["status"]
            roll = rng.random()
            if keys and roll < 0.08:
                # Repeat an earlier keyed rerun: must give back the first answer, create nothing.
                k_slug, key, body, first_id = rng.choice(keys)
                r = self.call(
                    s,
                    "rerun (repeated key)",
                    "POST",
                    f"/api/v1/tasks/{k_slug}/rerun/",
                    json=body,
                    headers={"Idempotency-Key": key},
                )
                if r.status_code != 201 or r.json().get("id") != first_id:
                    with self.stats.lock:
                        self.stats.replays_that_differed.append(f"{k_slug} {key}: {r.status_code} {r.text[:200]}")
            elif roll < 0.14:
                self.bulk_rerun(s, rng, page.json()["results"], bulk_keys)
            elif status in ("failed", "blocked", "cancelled") or (
                status in ("running", "launch_requested") and roll < 0.4
            ):
                body = {
                    "reason": "soak rerun",
                    "override_budget": rng.random() < 0.5,
                    "supersede_active": status in ("running", "launch_requested"),
                }
                key = uuid.uuid4().hex
                r = self.call(
                    s, "rerun", "POST", f"/api/v1/tasks/{slug}/rerun/", json=body, headers={"Idempotency-Key": key}
                )
                if r.status_code == 201:
                    # Only an accepted request has a first response to give back.
                    keys.append((slug, key, body, r.json()["id"]))
            elif status == "succeeded" or roll < 0.55:
                self.call(s, "repair", "POST", f"/api/v1/tasks/{slug}/repair/", json={"reason": "soak repair"})
            elif roll < 0.75:
                self.call(s, "cancel", "POST", f"/api/v1/tasks/{slug}/cancel/", json={"reason": "soak cancel"})
            time.sleep(rng.uniform(0.05, 0.25))

    def bulk_rerun(
        self, s: requests.Session, rng: random.Random, tasks: list[dict], keys: list[tuple[str, dict, list[str]]]
    ) -> None:
        """``POST /reruns/`` of a few rerunnable tasks, keyed; sometimes the
        repeat of an earlier one, which must give back the first answer. A
        409 is expected when another operator or an executor moved one of
        them first: the whole request then changes nothing."""
        if keys and rng.random() < 0.3:
            key, body, first_ids = rng.choice(keys)
            r = self.call(
                s, "bulk rerun (repeated key)", "POST", "/api/v1/reruns/", json=body, headers={"Idempotency-Key": key}
            )
            if r.status_code != 201 or [a["id"] for a in r.json()["results"]] != first_ids:
                with self.stats.lock:
                    self.stats.replays_that_differed.append(f"bulk {key}: {r.status_code} {r.text[:200]}")
            return
        rerunnable = [t["slug"] for t in tasks if t["status"] not in ("draft", "succeeded")]
        if not rerunnable:
            return
        body = {
            "tasks": rng.sample(rerunnable, min(len(rerunnable), rng.randint(2, 6))),
            "reason": "soak bulk rerun",
            "override_budget": True,
            "supersede_active": True,
        }
        key = uuid.uuid4().hex
        r = self.call(s, "bulk rerun", "POST", "/api/v1/reruns/", json=body, headers={"Idempotency-Key": key})
        if r.status_code == 201:
            keys.append((key, body, [a["id"] for a in r.json()["results"]]))

    # -- reconciliation --

    def reconciler(self, env: dict[str, str]) -> None:
        while not self.done():
            harness.manage(env, "reconcile", check=False)
            with self.stats.lock:
                self.stats.by_action[("reconcile pass", 0)] += 1
            self.stop.wait(1.0)

    def run(self, env: dict[str, str], *, executors: int, operators: int) -> float:
        threads = [
            threading.Thread(target=self.executor, args=(f"e{i}", random.Random(self.seed + i)))
            for i in range(executors)
        ]
        threads += [
            threading.Thread(target=self.operator, args=(random.Random(self.seed + 100 + i),)) for i in range(operators)
        ]
        threads.append(threading.Thread(target=self.stale_executor, args=(random.Random(self.seed + 200),)))
        threads.append(threading.Thread(target=self.reconciler, args=(env,)))
        started = time.monotonic()
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(timeout=1)
        except KeyboardInterrupt:
            self.stop.set()
            for t in threads:
                t.join()
        return time.monotonic() - started


def setup(url: str, tokens: dict[str, str], n_tasks: int, stall_seconds: int) -> None:
    admin = requests.Session()
    admin.headers["Authorization"] = f"Token {tokens['admin']}"

    def ok(response: requests.Response) -> dict:
        if response.status_code >= 300:
            raise RuntimeError(
                f"setup: {response.request.method} {response.url} {response.status_code} {response.text}"
            )
        return response.json()

    ok(admin.post(f"{url}/api/v1/agents/", json={"name": "soak-owner", "kind": "ai"}))
    ok(admin.post(f"{url}/api/v1/projects/", json={"slug": "soak", "name": "Soak", "owner": "soak-owner"}))
    ok(
        admin.post(
            f"{url}/api/v1/procedures/",
            json={
                "slug": "soak-proc",
                "name": "Soak procedure",
                "phases": PHASES,
                "executor": "external",
                "max_attempts": 3,
                "stall_timeout_seconds": stall_seconds,
            },
        )
    )
    op = requests.Session()
    op.headers["Authorization"] = f"Token {tokens['operator']}"
    for i in range(n_tasks):
        slug = f"soak-{i}"
        ok(
            op.post(
                f"{url}/api/v1/tasks/",
                json={"slug": slug, "title": f"Soak {i}", "project": "soak", "procedure": "soak-proc"},
            )
        )
        ok(op.post(f"{url}/api/v1/tasks/{slug}/launch/"))


# --- Checks -----------------------------------------------------------------------------

CHECKS = {
    "superseded runs bound": """
        SELECT count(*) FROM planning_event e JOIN retries_attempt a ON a.id = e.attempt_id
        WHERE e.type = 'native_run.bound' AND a.superseded_at IS NOT NULL AND e.at > a.superseded_at
    """,
    "runs bound to another attempt than their retired ids'": """
        SELECT count(*) FROM retries_nativerun r
        JOIN retries_retirednativeid x ON x.kind = 'run' AND x.value = r.native_run_id
        WHERE r.binding = 'bound' AND r.attempt_id <> x.attempt_id
    """,
    "runs claiming one attempt but bound to another": """
        SELECT count(*) FROM retries_nativerun
        WHERE binding = 'bound' AND claimed_attempt_id IS NOT NULL AND attempt_id <> claimed_attempt_id
    """,
    "stale fresh runs bound": """
        SELECT count(*) FROM retries_nativerun WHERE binding = 'bound' AND native_run_id = ANY(%(fresh)s)
    """,
    "tasks with attempt numbers missing or repeated": """
        SELECT count(*) FROM (
            SELECT t.id FROM planning_planningtask t LEFT JOIN retries_attempt a ON a.task_id = t.id
            GROUP BY t.id, t.attempt_count
            HAVING count(a.id) <> coalesce(max(a.number), 0) OR count(DISTINCT a.number) <> count(a.id)
                OR count(a.id) <> t.attempt_count
        ) bad
    """,
    "tasks with more than one current attempt": """
        SELECT count(*) FROM (SELECT task_id FROM retries_attempt WHERE superseded_at IS NULL
                              GROUP BY task_id HAVING count(*) > 1) bad
    """,
}

FACTS = {
    "tasks": "SELECT count(*) FROM planning_planningtask",
    "attempts": "SELECT count(*) FROM retries_attempt",
    "attempts by kind": "SELECT string_agg(kind || ' ' || n, ', ' ORDER BY kind) FROM "
    "(SELECT kind, count(*) n FROM retries_attempt GROUP BY kind) k",
    "tasks by status": "SELECT string_agg(status || ' ' || n, ', ' ORDER BY status) FROM "
    "(SELECT status, count(*) n FROM planning_planningtask GROUP BY status) s",
    "native runs bound / rejected / unbound": "SELECT string_agg(binding || ' ' || n, ', ' ORDER BY binding) FROM "
    "(SELECT binding, count(*) n FROM retries_nativerun GROUP BY binding) b",
    "rejections by reason": "SELECT string_agg(coalesce(binding_reason, '?') || ' ' || n, ', ' ORDER BY n DESC) FROM "
    "(SELECT binding_reason, count(*) n FROM retries_nativerun WHERE binding = 'rejected' GROUP BY binding_reason) r",
    "stalls detected": "SELECT count(*) FROM retries_attempt WHERE failure_kind = 'stalled'",
    "ledger events": "SELECT count(*) FROM planning_event",
}


def check(db: str, env: dict[str, str], stats: Stats) -> tuple[dict[str, int], dict[str, str], str]:
    results: dict[str, int] = {
        "5xx responses": len(stats.server_errors),
        "repeated Idempotency-Keys not answered with the first 201": len(stats.replays_that_differed),
    }
    facts: dict[str, str] = {}
    with psycopg.connect(harness.db_url(db)) as conn:
        for name, sql in CHECKS.items():
            results[name] = conn.execute(sql, {"fresh": sorted(stats.stale_fresh_run_ids)}).fetchone()[0]
        for name, sql in FACTS.items():
            facts[name] = str(conn.execute(sql).fetchone()[0])
    verify = harness.manage(env, "verify_integrity", "--no-mark", check=False)
    results["verify_integrity exit status"] = verify.returncode
    return results, facts, (verify.stdout + verify.stderr).strip()


def render(args, *, seconds: float, stats: Stats, results: dict, facts: dict, verify_out: str, machine: dict) -> str:
    clean = all(v == 0 for v in results.values())
    lines = [
        BEGIN,
        "",
        f"Soak of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        f"{' (quick mode)' if args.quick else ''}: **{'clean' if clean else 'NOT CLEAN'}**.",
        "",
    ]
    lines += [f"- **{k}**: {v}" for k, v in machine.items()]
    lines += [
        f"- **load held**: {seconds:.0f} s, {stats.requests} requests ({stats.requests / seconds:.1f}/s) from "
        f"{args.executors} executors, {args.operators} operators and 1 stale executor, reconciliation every ~1 s; "
        f"{args.tasks} tasks, stall timeout {args.stall_seconds} s; bounds {args.minutes:g} min / {args.max_requests} requests",
        "",
        "| check | count | expected |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {value} | 0 |" for name, value in results.items()]
    lines += ["", "| request | status | count |", "|---|---|---|"]
    lines += [f"| {action} | {status or '—'} | {n} |" for (action, status), n in sorted(stats.by_action.items())]
    lines += ["", "| at the end | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in facts.items()]
    lines += ["", "`verify_integrity --no-mark`:", "", "```", verify_out or "(no output)", "```", ""]
    if stats.server_errors:
        lines += ["5xx responses:", ""] + [f"- `{e}`" for e in stats.server_errors[:20]] + [""]
    if stats.replays_that_differed:
        lines += ["Replays that differed:", ""] + [f"- `{e}`" for e in stats.replays_that_differed[:20]] + [""]
    lines.append(END)
    return "\n".join(lines)


def write(out: Path, section: str) -> None:
    if out.exists() and BEGIN in (text := out.read_text()) and END in text:
        head, rest = text.split(BEGIN, 1)
        out.write_text(head + section + rest.split(END, 1)[1])
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("# Reliability\n\n" + section + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="15 s and 1,500 requests at most")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--max-requests", type=int, default=50_000)
    parser.add_argument("--executors", type=int, default=4)
    parser.add_argument("--operators", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=60)
    parser.add_argument("--stall-seconds", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--db-prefix", default=os.environ.get("BENCH_SOAK_DB_PREFIX", "mc_soak_run"))
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes, args.max_requests, args.tasks = min(args.minutes, 0.25), min(args.max_requests, 1500), 16
    out = args.out or harness.ROOT / ("bench/results/reliability-quick.md" if args.quick else "docs/reliability.md")
    (harness.ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    machine = harness.machine()
    template, db = f"{args.db_prefix}_tpl", f"{args.db_prefix}_db"
    harness.create_template(template)
    try:
        with harness.database(template, db):
            env = harness.app_env(db)
            users = [
                ("soak-admin", "admin"),
                ("soak-operator", "operator"),
                ("soak-executor", "executor"),
                ("soak-stale-executor", "executor"),
            ]
            keys = harness.create_tokens(db, users)
            tokens = {
                "admin": keys["soak-admin"],
                "operator": keys["soak-operator"],
                "executor": keys["soak-executor"],
                "stale": keys["soak-stale-executor"],
            }
            with harness.Server(env, workers=2, threads=4) as server:
                log(
                    f"soak: {args.tasks} tasks, up to {args.minutes} min / {args.max_requests} requests at {server.url}"
                )
                setup(server.url, tokens, args.tasks, args.stall_seconds)
                soak = Soak(
                    server.url, tokens, seconds=args.minutes * 60, max_requests=args.max_requests, seed=args.seed
                )
                seconds = soak.run(env, executors=args.executors, operators=args.operators)
            harness.manage(env, "reconcile", check=False)
            results, facts, verify_out = check(db, env, soak.stats)
    finally:
        harness.drop_db(template)
    section = render(
        args, seconds=seconds, stats=soak.stats, results=results, facts=facts, verify_out=verify_out, machine=machine
    )
    write(out, section)
    print(section)
    clean = all(v == 0 for v in results.values())
    log(f"soak {'clean' if clean else 'NOT CLEAN'}; wrote {out}")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
