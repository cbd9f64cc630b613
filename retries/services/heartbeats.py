"""Heartbeats: a report that only says "still running" costs one statement.

Most reports an executor sends repeat what Mission Control already holds: the
same run, still ``running``, bound to its task's current attempt, which is
running too. Such a report changes no status, binds nothing and writes no
ledger event in the full report path (``reports.native_run_report_batch``);
all it does is move two liveness times. Here that is one statement, outside
any explicit transaction, and the times move at most once per run per
``HEARTBEAT_COALESCE_SECONDS``: a report within that interval of the last
recorded one writes nothing at all.

Stall detection stays exact: ``stall_check`` is given the coalescing
interval, so a run that is heard from within its stall timeout is never
failed, and a silent one is failed at most that interval later.

A report that is anything more than a heartbeat (another status, a phase
or message that differs, a claim the run does not hold, another reporter,
an unbound run or one of a superseded attempt, a new run) finds no row here
and takes the full path, with its locks, decisions and ledger events.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.utils import timezone

from missioncontrol.db import column_name

from ..models import Attempt, NativeRun
from .reports import RunReport, native_run_report, run_known

B = NativeRun.Binding

_SQL = """
WITH target AS (
    SELECT {columns}, r.last_seen_at < %(due)s AS due
    FROM {runs} r
    JOIN {attempts} a ON a.id = r.attempt_id
    WHERE r.executor = %(executor)s AND r.native_run_id = %(run_id)s
      AND r.binding = %(bound)s AND r.status = %(running)s
      AND r.task_slug = %(task)s AND r.reported_by = %(actor)s
      AND (%(attempt_id)s::uuid IS NULL OR r.claimed_attempt_id IS NULL OR r.claimed_attempt_id = %(attempt_id)s::uuid)
      AND (%(phase)s::text = '' OR r.phase = %(phase)s::text)
      AND (%(message)s::text = '' OR r.message = %(message)s::text)
      AND a.superseded_at IS NULL AND a.status = %(running)s
),
run AS (
    UPDATE {runs} r SET last_seen_at = %(now)s
    FROM target t
    WHERE r.id = t.id AND t.due AND r.binding = %(bound)s AND r.status = %(running)s
    RETURNING r.id
),
attempt AS (
    UPDATE {attempts} a SET last_heartbeat_at = %(now)s
    FROM target t
    WHERE a.id = t.attempt_id AND t.due AND a.superseded_at IS NULL AND a.status = %(running)s
      AND (a.last_heartbeat_at IS NULL OR a.last_heartbeat_at < %(now)s)
    RETURNING a.id
)
SELECT {selected}, t.due FROM target t
"""


@dataclass(frozen=True)
class Heartbeat:
    """A report taken as a heartbeat: the run as it is after it (its
    ``last_seen_at`` now, or the recorded time when coalesced)."""

    run: NativeRun
    written: bool


@functools.cache
def _statement() -> tuple[str, list]:
    fields = list(NativeRun._meta.concrete_fields)
    quote = connection.ops.quote_name
    sql = _SQL.format(
        runs=quote(NativeRun._meta.db_table),
        attempts=quote(Attempt._meta.db_table),
        columns=", ".join(f"r.{quote(column_name(f))}" for f in fields),
        selected=", ".join(f"t.{quote(column_name(f))}" for f in fields),
    )
    return sql, fields


def native_run_heartbeat(*, report: RunReport, actor: str) -> Heartbeat | None:
    """Take ``report`` as a heartbeat if that is all it is; None when it is
    more (or the database is not PostgreSQL): the caller then applies it
    through ``native_run_report``. Writes no ledger event: the full path
    writes none for a heartbeat either."""
    if connection.vendor != "postgresql" or report.status != NativeRun.Status.RUNNING or not report.task:
        return None
    now = timezone.now()
    interval = dt.timedelta(seconds=settings.HEARTBEAT_COALESCE_SECONDS)
    sql, fields = _statement()
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "executor": report.executor,
                "run_id": report.native_run_id,
                "task": report.task,
                "actor": actor,
                "attempt_id": report.attempt_id,
                "phase": report.phase or "",
                "message": report.message or "",
                "bound": B.BOUND,
                "running": NativeRun.Status.RUNNING,
                "now": now,
                "due": now - interval,
            },
        )
        row = cursor.fetchone()
    if row is None:
        return None
    *values, due = row
    # A raw cursor skips the fields' converters (JSON arrives as text).
    values = [
        f.from_db_value(v, None, connection) if hasattr(f, "from_db_value") else v
        for f, v in zip(fields, values, strict=True)
    ]
    run = NativeRun.from_db(connection.alias, [f.attname for f in fields], values)
    if due:
        run.last_seen_at = now
    return Heartbeat(run=run, written=bool(due))


def native_run_report_one(*, report: RunReport, actor: str) -> tuple[NativeRun, bool]:
    """One report through the cheapest path that applies: the heartbeat
    statement for a run this process has seen, the full path
    (``native_run_report``) otherwise or when it is more than a heartbeat.
    Returns (run, created). A heartbeat of a run this process has not seen
    yet takes the full path, which answers and records it the same way
    (it moves the same times, without coalescing) and makes the run known."""
    if run_known(report.executor, report.native_run_id):
        heartbeat = native_run_heartbeat(report=report, actor=actor)
        if heartbeat is not None:
            return heartbeat.run, False
    return native_run_report(report=report, actor=actor)
