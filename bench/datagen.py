"""Large, ledger-consistent histories made with set-based SQL.

Going through the services row by row would take hours for a million events,
so the bulk history is written with ``INSERT … SELECT`` over
``generate_series``. The rows it writes are exactly what the services would
have left behind for the same story (task created, attempts requested,
superseded, bound to a native run, moved to their final status), and the
status-bearing events carry the statuses the rows hold, so
``integrity_problems()`` finds nothing to report. The few base objects
(agent, project, procedure) go through the services.

Runs inside a configured Django process (see ``bench.cases``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from django.db import DatabaseError, connection, transaction

from planning import services as planning_services
from planning.models import Agent, Event, Procedure, Project

ACTOR = "bench"
EXECUTOR = "bench"
PHASES = ["preflight", "execute", "finalize"]

# Final attempt status -> the task status it projects to (retries.decisions.TASK_STATUS_FOR_ATTEMPT).
TASK_STATUS = {"pending": "launch_requested", "running": "running", "failed": "failed", "succeeded": "succeeded"}


@dataclass(frozen=True)
class Base:
    agent_id: int
    project_id: int
    procedure_id: int
    procedure_slug: str
    project_slug: str


def base(*, slug: str = "bench", max_attempts: int = 1000) -> Base:
    """The agent, project and procedure every generated task uses, made once
    through the services so the ledger records them."""
    agent = Agent.objects.filter(name=f"{slug}-owner").first() or planning_services.agent_create(
        name=f"{slug}-owner", actor=ACTOR
    )
    project = Project.objects.filter(slug=slug).first() or planning_services.project_create(
        slug=slug, name="Benchmark", owner=agent.name, actor=ACTOR
    )
    procedure = Procedure.objects.filter(slug=f"{slug}-proc").first() or planning_services.procedure_create(
        slug=f"{slug}-proc",
        name="Benchmark procedure",
        phases=PHASES,
        executor=Procedure.Executor.EXTERNAL,
        max_attempts=max_attempts,
        stall_timeout_seconds=24 * 3600,
        actor=ACTOR,
    )
    return Base(agent.id, project.id, procedure.id, procedure.slug, project.slug)


# Events per attempt, in ledger order. ``when`` says which attempts get the row:
# every attempt, those that got a native run (not pending), or those that
# finished. ``k`` is the attempt's slot in the story (the supersede mark of
# attempt k is written just before attempt k + 1 is requested).
_EVENTS_SQL = """
WITH a AS (
    SELECT ba.*, bt.slug,
           CASE WHEN ba.next_id IS NOT NULL THEN 'failed' ELSE %(final)s END AS st,
           CASE WHEN ba.number = 1 THEN 'draft' ELSE 'failed' END AS task_before
    FROM bench_ba ba JOIN bench_bt bt ON bt.task_id = ba.task_id
), ev AS (
    SELECT bt.g, 0 AS k, 0 AS seq, 'task.created' AS type, bt.task_id, NULL::uuid AS attempt_id,
           jsonb_build_object('slug', bt.slug, 'status', 'draft', 'assignee', %(agent_name)s) AS data
    FROM bench_bt bt
  UNION ALL
    SELECT g, number + 1, 0, 'attempt.superseded', task_id, id,
           jsonb_build_object('number', number, 'superseded_by', next_id, 'retired_native_ids',
                              jsonb_build_array(nr, nt))
    FROM a WHERE next_id IS NOT NULL
  UNION ALL
    SELECT g, number, 1, 'attempt.requested', task_id, id,
           jsonb_build_object('number', number, 'kind', kind, 'status', 'pending', 'reason', reason,
                              'requested_assignee', %(agent_name)s, 'resume_phase', NULL, 'supersedes', prev_id)
    FROM a
  UNION ALL
    SELECT g, number, 2, 'task.status_changed', task_id, NULL,
           jsonb_build_object('from', task_before, 'status', 'launch_requested', 'attempt', number)
    FROM a
  UNION ALL
    SELECT g, number, 3, 'native_run.reported', task_id, id,
           jsonb_build_object('executor', %(executor)s, 'native_task_id', nt, 'native_run_id', nr,
                              'status', 'running', 'phase', '', 'new', true)
    FROM a WHERE st <> 'pending'
  UNION ALL
    SELECT g, number, 4, 'native_run.bound', task_id, id,
           jsonb_build_object('executor', %(executor)s, 'native_task_id', nt, 'native_run_id', nr)
    FROM a WHERE st <> 'pending'
  UNION ALL
    SELECT g, number, 5, 'attempt.status_changed', task_id, id,
           jsonb_build_object('from', 'pending', 'status', 'running', 'native_run_id', nr)
    FROM a WHERE st <> 'pending'
  UNION ALL
    SELECT g, number, 6, 'task.status_changed', task_id, NULL,
           jsonb_build_object('from', 'launch_requested', 'status', 'running', 'attempt', number)
    FROM a WHERE st <> 'pending'
  UNION ALL
    SELECT g, number, 7, 'native_run.reported', task_id, id,
           jsonb_build_object('native_run_id', nr, 'from', 'running', 'status', st, 'phase', '')
    FROM a WHERE st IN ('failed', 'succeeded')
  UNION ALL
    SELECT g, number, 8, 'attempt.status_changed', task_id, id,
           jsonb_build_object('from', 'running', 'status', st, 'native_run_id', nr)
    FROM a WHERE st IN ('failed', 'succeeded')
  UNION ALL
    SELECT g, number, 9, 'task.status_changed', task_id, NULL,
           jsonb_build_object('from', 'running', 'status', st, 'attempt', number)
    FROM a WHERE st IN ('failed', 'succeeded')
)
INSERT INTO planning_event (id, at, type, actor, task_id, plan_id, attempt_id, data)
SELECT %(first_id)s + row_number() OVER (ORDER BY g, k, seq),
       %(t0)s + ((g - 1) * (%(attempts)s + 2) + k) * interval '1 second' + seq * interval '1 millisecond',
       type, %(actor)s, task_id, NULL, attempt_id, data
FROM ev
"""


def tasks_with_history(*, n: int, prefix: str, attempts: int = 1, final: str = "failed", b: Base | None = None) -> int:
    """Create ``n`` tasks named ``<prefix>-<i>``, each with ``attempts``
    attempts: every attempt but the last failed and was superseded by a
    rerun (its native ids retired); the last one ends in ``final``
    (``pending``: launched, nothing reported yet; ``running``, ``failed`` or
    ``succeeded``: bound to a native run in that status). Returns the number
    of events written."""
    if final not in TASK_STATUS:
        raise ValueError(f"final must be one of {sorted(TASK_STATUS)}")
    if n <= 0:
        return 0
    b = b or base()
    agent_name = Agent.objects.get(id=b.agent_id).name
    params = {
        "n": n,
        "prefix": prefix,
        "attempts": attempts,
        "final": final,
        "task_status": TASK_STATUS[final],
        "project": b.project_id,
        "procedure": b.procedure_id,
        "agent": b.agent_id,
        "agent_name": agent_name,
        "executor": EXECUTOR,
        "actor": ACTOR,
    }
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT now() - interval '60 days'")
        params["t0"] = cur.fetchone()[0]
        span = "(%(n)s * (%(attempts)s + 2)) * interval '1 second'"
        cur.execute(
            f"""
            INSERT INTO planning_planningtask (slug, title, project_id, plan_id, procedure_id, params, assignee_id,
                status, max_attempts, attempt_count, inconsistent_since, inconsistency, created_at, updated_at)
            SELECT %(prefix)s || '-' || g, 'Benchmark task ' || g, %(project)s, NULL, %(procedure)s, '{{}}'::jsonb,
                   %(agent)s, %(task_status)s, 1000, %(attempts)s, NULL, '', %(t0)s, %(t0)s + {span}
            FROM generate_series(1, %(n)s) g
            """,
            params,
        )
        cur.execute("DROP TABLE IF EXISTS bench_bt, bench_ba0, bench_ba")
        cur.execute(
            """
            CREATE TEMP TABLE bench_bt ON COMMIT DROP AS
            SELECT id AS task_id, slug, substring(slug FROM length(%(prefix)s) + 2)::int AS g
            FROM planning_planningtask WHERE slug LIKE %(prefix)s || '-%%'
              AND substring(slug FROM length(%(prefix)s) + 2) ~ '^[0-9]+$'
            """,
            params,
        )
        cur.execute(
            """
            CREATE TEMP TABLE bench_ba0 ON COMMIT DROP AS
            SELECT bt.task_id, bt.g, k AS number, gen_random_uuid() AS id,
                   CASE WHEN k = 1 THEN 'initial' ELSE 'rerun' END AS kind,
                   CASE WHEN k = 1 THEN 'launch' ELSE 'benchmark rerun' END AS reason,
                   %(prefix)s || '-nt-' || bt.g || '-' || k AS nt,
                   %(prefix)s || '-nr-' || bt.g || '-' || k AS nr
            FROM bench_bt bt CROSS JOIN generate_series(1, %(attempts)s) k
            """,
            params,
        )
        cur.execute(
            """
            CREATE TEMP TABLE bench_ba ON COMMIT DROP AS
            SELECT *, lead(id) OVER w AS next_id, lag(id) OVER w AS prev_id,
                   %(t0)s + ((g - 1) * (%(attempts)s + 2) + number) * interval '1 second' AS ts
            FROM bench_ba0 WINDOW w AS (PARTITION BY task_id ORDER BY number)
            """,
            params,
        )
        cur.execute(
            """
            INSERT INTO retries_attempt (id, task_id, number, kind, status, requested_by, requested_at, reason,
                requested_assignee_id, resume_phase, superseded_at, superseded_by_id, native_task_id, native_run_id,
                failure_kind, failure_phase, failure_message, started_at, finished_at, last_heartbeat_at, imported)
            SELECT id, task_id, number, kind, st, %(actor)s, ts, reason, %(agent)s, NULL,
                   CASE WHEN next_id IS NOT NULL THEN ts + interval '1 second' END, next_id,
                   CASE WHEN st <> 'pending' THEN nt END, CASE WHEN st <> 'pending' THEN nr END,
                   CASE WHEN st = 'failed' THEN 'executor_failed' END,
                   CASE WHEN st = 'failed' THEN 'execute' END,
                   CASE WHEN st = 'failed' THEN 'The native run failed.' END,
                   CASE WHEN st <> 'pending' THEN ts + interval '5 milliseconds' END,
                   CASE WHEN st IN ('failed', 'succeeded') THEN ts + interval '8 milliseconds' END,
                   CASE WHEN st <> 'pending' THEN ts + interval '8 milliseconds' END,
                   false
            FROM (SELECT *, CASE WHEN next_id IS NOT NULL THEN 'failed' ELSE %(final)s END AS st FROM bench_ba) a
            """,
            params,
        )
        cur.execute(
            """
            INSERT INTO retries_nativerun (executor, native_task_id, native_run_id, task_slug, task_id,
                claimed_attempt_id, status, phase, created_at, first_seen_at, last_seen_at, message, binding,
                attempt_id, binding_reason)
            SELECT %(executor)s, a.nt, a.nr, bt.slug, a.task_id, a.id, a.st, '', a.ts, a.ts, a.ts + interval '8 milliseconds',
                   '', 'bound', a.id, NULL
            FROM (SELECT *, CASE WHEN next_id IS NOT NULL THEN 'failed' ELSE %(final)s END AS st FROM bench_ba) a
            JOIN bench_bt bt ON bt.task_id = a.task_id
            WHERE a.st <> 'pending'
            """,
            params,
        )
        cur.execute(
            """
            INSERT INTO retries_retirednativeid (kind, value, task_id, attempt_id, retired_at)
            SELECT v.id_kind, v.value, ba.task_id, ba.id, ba.ts + interval '1 second'
            FROM bench_ba ba CROSS JOIN LATERAL (VALUES ('task', ba.nt), ('run', ba.nr)) v(id_kind, value)
            WHERE ba.next_id IS NOT NULL
            """,
        )
        cur.execute("SELECT coalesce(max(id), 0) FROM planning_event")
        params["first_id"] = cur.fetchone()[0]
        cur.execute(_EVENTS_SQL, params)
        written = cur.rowcount
        # Later events made by the services must come after the generated ones.
        cur.execute(
            "SELECT setval(pg_get_serial_sequence('planning_event', 'id'), (SELECT max(id) FROM planning_event))"
        )
    return written


def analyze() -> None:
    """The state autovacuum would leave a long-running database in after a
    bulk load: planner statistics, visibility maps (index-only scans), and
    the load's dirty pages written. Otherwise autovacuum and the
    checkpointer catch up on the load during the next measurement (the board
    at 100k tasks measured 53-79 ms across rounds, 44 ms once settled)."""
    with connection.cursor() as cur:
        cur.execute("VACUUM (ANALYZE)")
        with contextlib.suppress(DatabaseError):  # needs superuser or pg_checkpoint; the rest still holds
            cur.execute("CHECKPOINT")


def event_count() -> int:
    return Event.objects.count()
