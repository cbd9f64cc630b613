"""``python -m bench --deployments``: P1b-wrk and P1h under several gunicorn
deployments (worker class, workers and threads), each as a ratio against B8
of the same run, medians over rounds; one table on stdout, written between
its own markers of ``docs/performance.md``. What gunicorn.conf.py's defaults
are chosen by.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path

from . import harness, pgbench
from .harness import deployment, log, median
from .run import Sizes, single_paths, wrk_sets

BEGIN = "<!-- bench-deployments:begin (written by `python -m bench --deployments`; edit outside these markers) -->"
END = "<!-- bench-deployments:end -->"


def candidates(cpus: int) -> list[tuple[int, int]]:
    """(workers, threads): sync with a worker per CPU, one more, and
    gunicorn's own suggestion of 2 × CPUs + 1; gthread with a worker per CPU
    × 4 threads and two per CPU × 2."""
    out = [(cpus, 1), (cpus + 1, 1), (2 * cpus + 1, 1), (cpus, 4), (2 * cpus, 2)]
    return list(dict.fromkeys(out))


def parse(spec: str) -> list[tuple[int, int]]:
    """``"2x1,3x1,2x4"`` → [(2, 1), (3, 1), (2, 4)] (workers x threads)."""
    out = []
    for item in spec.split(","):
        workers, _, threads = item.strip().partition("x")
        out.append((int(workers), int(threads or 1)))
    return out


def measure(template: str, prefix: str, sizes: Sizes, configs: list[tuple[int, int]], problems: list[str]) -> dict:
    """One seeded database, cloned for each round; in a round, B8 once, then
    every deployment on the clone with its own tasks, in an order rotated
    round by round so that a change in the machine's load falls on all."""
    seed_db = f"{prefix}_dseed"
    out: dict = {"pg8": [], "configs": {f"{w}x{t}": {"p1bw": [], "p1h": []} for w, t in configs}}
    try:
        harness.clone_db(template, seed_db)
        log(f"deployments: seeding {len(configs)} × {sizes.wrk_tasks + sizes.p1h_runs} tasks")
        sets = [{"prefix": "pool", "n": sizes.pool_tasks, "attempts": 1, "final": "succeeded"}]
        for k in range(len(configs)):
            sets += wrk_sets(sizes, new=f"d{k}w", heartbeat=f"d{k}h")
        seeded = harness.run_case("seed", seed_db, {"sets": sets, "users": [("bench-executor", "executor")]})
        token = seeded["tokens"]["bench-executor"]
        lo, hi = seeded["ranges"]["pool"]
        for r in range(sizes.rounds):
            with harness.database(seed_db, f"{prefix}_deploy") as db:
                pg8 = pgbench.transition_tps(db, clients=sizes.clients, seconds=sizes.pgbench_seconds, lo=lo, hi=hi)
                out["pg8"].append(pg8)
                log(f"deployments round {r + 1}/{sizes.rounds}: pgbench {pg8:.0f} tps at {sizes.clients} clients")
                order = list(enumerate(configs))
                order = order[r % len(order) :] + order[: r % len(order)]
                for k, (workers, threads) in order:
                    with harness.Server(harness.app_env(db), workers=workers, threads=threads) as server:
                        p1bw, p1h = single_paths(
                            server, token, db, sizes, problems, tag=f"r{r}", new=f"d{k}w", heartbeat=f"d{k}h"
                        )
                    got = out["configs"][f"{workers}x{threads}"]
                    got["p1bw"].append(p1bw)
                    got["p1h"].append(p1h)
                problems += harness.integrity_failures(
                    {"integrity": harness.run_case("integrity", db, {})}, f"deployments round {r + 1}"
                )
    finally:
        harness.drop_db(seed_db)
    return out


def table(result: dict, configs: list[tuple[int, int]]) -> tuple[str, list[dict]]:
    pg8 = median(result["pg8"])
    default = harness.gunicorn_defaults()
    rows = []
    for workers, threads in configs:
        got = result["configs"][f"{workers}x{threads}"]
        p1bw, p1h = median(got["p1bw"]), median(got["p1h"])
        rows.append(
            {
                "deployment": deployment(workers, threads),
                "workers": workers,
                "threads": threads,
                "default": (workers, threads) == default,
                "p1bw": p1bw,
                "p1bw_b8": p1bw / pg8 if pg8 else None,
                "p1h": p1h,
                "p1h_b8": p1h / pg8 if pg8 else None,
            }
        )
    lines = [
        "| gunicorn | P1b-wrk reports/s | × B8 | P1h heartbeats/s | × B8 |",
        "|---|---|---|---|---|",
    ]
    best_bw = max(rows, key=lambda row: row["p1bw"])
    best_h = max(rows, key=lambda row: row["p1h"])
    for row in rows:
        name = row["deployment"] + (" (gunicorn.conf.py default)" if row["default"] else "")
        bw = f"{row['p1bw']:.0f}" + (" (best)" if row is best_bw else "")
        h = f"{row['p1h']:.0f}" + (" (best)" if row is best_h else "")
        lines.append(f"| {name} | {bw} | {row['p1bw_b8']:.3f} | {h} | {row['p1h_b8']:.3f} |")
    lines.append(f"| B8 (pgbench, {len(result['pg8'])} run(s)) | {pg8:.0f} tps | | | |")
    return "\n".join(lines), rows


def render(text: str, machine: dict, sizes: Sizes, problems: list[str], seconds: float) -> str:
    lines = [
        BEGIN,
        "",
        f"Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {sizes.rounds} round(s), "
        f"{sizes.wrk_seconds:g} s of wrk per figure and deployment, {sizes.clients} connections, medians; "
        f"took {seconds / 60:.1f} min; load average at start {machine['load average at start']}, "
        f"at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}.",
        "",
        text,
        "",
    ]
    if problems:
        lines += ["Problems seen during the run:", ""] + [f"- {p}" for p in problems] + [""]
    lines.append(END)
    return "\n".join(lines)


def write(out: Path, section: str) -> None:
    text = out.read_text() if out.exists() else "# Performance\n\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        out.write_text(head + section + rest.split(END, 1)[1])
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text.rstrip("\n") + "\n\n" + section + "\n")


def main(args, sizes: Sizes) -> int:
    configs = parse(args.configs) if args.configs else candidates(os.cpu_count() or 1)
    out = args.out or (harness.ROOT / ("bench/results/deployments-quick.md" if args.quick else "docs/performance.md"))
    (harness.ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    machine = harness.machine()
    template = f"{args.db_prefix}_tpl"
    problems: list[str] = []
    log(f"template database {template}; deployments {', '.join(deployment(w, t) for w, t in configs)}")
    harness.create_template(template)
    try:
        result = measure(template, args.db_prefix, sizes, configs, problems)
    finally:
        harness.drop_db(template)
    text, rows = table(result, configs)
    print(text)
    for problem in problems:
        print("PROBLEM:", problem)
    write(out, render(text, machine, sizes, problems, time.perf_counter() - started))
    raw_path = args.json or harness.ROOT / "bench" / "results" / (
        "deployments-quick.json" if args.quick else "deployments.json"
    )
    raw = {"sizes": asdict(sizes), "machine": machine, "result": result, "rows": rows, "problems": problems}
    raw_path.write_text(json.dumps(raw, indent=2, default=str))
    log(f"wrote {out}")
    return 1 if problems else 0
