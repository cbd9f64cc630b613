"""The reads of a report batch (``reports._report_batch_locked``), as raw
statements built once per process.

Each of them is a lock or a read by key that PostgreSQL answers in tens of
microseconds, while compiling the same ORM query (filters, ``ORDER BY``,
``FOR UPDATE OF``) and building its instances cost the single report path
more Python than anything else it did (docs/performance.md, issue 14). The
keys go in as arrays, so the statement's text is the same for one report
or five hundred: one prepared statement each, whatever the batch size.
Elsewhere than on PostgreSQL the ORM runs the same reads.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q

from missioncontrol.db import Columns, column_name, key_param, match
from planning.models import PlanningTask

from ..decisions import ClaimedAttempt, RetiredId
from ..models import Attempt, NativeRun, RetiredNativeId
from . import locks


@dataclass(frozen=True)
class _Statements:
    currents: dict[bool, str]
    attempt: Columns
    runs: dict[bool, str]
    run: Columns
    known: dict[bool, str]


@functools.cache
def _statements() -> _Statements:
    q = connection.ops.quote_name
    attempts_t = q(Attempt._meta.db_table)
    runs_t, retired_t = q(NativeRun._meta.db_table), q(RetiredNativeId._meta.db_table)

    def col(model, name: str) -> str:
        return q(column_name(model._meta.get_field(name)))

    attempt, run = Columns(Attempt, "a"), Columns(NativeRun, "r")
    task_id_type = PlanningTask._meta.pk.db_type(connection) or "bigint"
    # Every lock in the order the batch's docstring gives: tasks by id,
    # current attempts by task id, runs by (executor, native_run_id).
    return _Statements(
        currents={
            one: f"SELECT {attempt.sql()} FROM {attempts_t} a"
            f" WHERE a.{col(Attempt, 'task')} {match(task_id_type, one)} AND a.{col(Attempt, 'superseded_at')} IS NULL"
            f" ORDER BY a.{col(Attempt, 'task')} FOR UPDATE"
            for one in (True, False)
        },
        attempt=attempt,
        runs={
            True: f"SELECT {run.sql()} FROM {runs_t} r"
            f" WHERE r.{col(NativeRun, 'executor')} = %s::text AND r.{col(NativeRun, 'native_run_id')} = %s::text"
            " FOR UPDATE",
            False: f"SELECT {run.sql()} FROM {runs_t} r"
            f" JOIN unnest(%s::text[], %s::text[]) AS k(executor, run_id)"
            f" ON r.{col(NativeRun, 'executor')} = k.executor AND r.{col(NativeRun, 'native_run_id')} = k.run_id"
            f" ORDER BY r.{col(NativeRun, 'executor')}, r.{col(NativeRun, 'native_run_id')} FOR UPDATE OF r",
        },
        run=run,
        known={one: _known_sql(col, attempts_t, retired_t, one) for one in (True, False)},
    )


def _known_sql(col, attempts_t: str, retired_t: str, one: bool) -> str:
    """The attempts reports claim, with who superseded them, and the
    retired ids among the native ids: one round trip, the first column
    telling the rows apart (a retired id's kind, or "claimed")."""
    return (
        f"SELECT 'claimed', a.{col(Attempt, 'id')}::text, a.{col(Attempt, 'task')}, a.{col(Attempt, 'number')},"
        f" a.{col(Attempt, 'superseded_at')}, s.{col(Attempt, 'number')}, s.{col(Attempt, 'requested_by')}::text"
        f" FROM {attempts_t} a LEFT JOIN {attempts_t} s ON s.{col(Attempt, 'id')} = a.{col(Attempt, 'superseded_by')}"
        f" WHERE a.{col(Attempt, 'id')} {match('uuid', one)}"
        f" UNION ALL"
        f" SELECT x.{col(RetiredNativeId, 'kind')}::text, x.{col(RetiredNativeId, 'value')}::text, NULL,"
        f" a.{col(Attempt, 'number')}, x.{col(RetiredNativeId, 'retired_at')}, NULL, NULL"
        f" FROM {retired_t} x JOIN {attempts_t} a ON a.{col(Attempt, 'id')} = x.{col(RetiredNativeId, 'attempt')}"
        f" WHERE (x.{col(RetiredNativeId, 'kind')} = %s::text AND x.{col(RetiredNativeId, 'value')} {match('text', one)})"
        f" OR (x.{col(RetiredNativeId, 'kind')} = %s::text AND x.{col(RetiredNativeId, 'value')} {match('text', one)})"
    )


def _fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def lock_tasks(slugs: list[str]) -> dict[int, PlanningTask]:
    """The tasks named by ``slugs``, locked in id order, by id."""
    if not slugs:
        return {}
    return {t.id: t for t in locks.lock_tasks(slugs=slugs)}


def lock_currents(task_ids: list[int]) -> dict[int, Attempt]:
    """The current attempts of ``task_ids``, locked in task order, by task id."""
    if not task_ids:
        return {}
    if connection.vendor != "postgresql":
        qs = (
            Attempt.objects.select_for_update(of=("self",))
            .filter(task_id__in=task_ids, superseded_at__isnull=True)
            .order_by("task_id")
        )
        return {a.task_id: a for a in qs}
    s = _statements()
    built = (s.attempt.build(row) for row in _fetch(s.currents[len(task_ids) == 1], [key_param(task_ids)]))
    return {a.task_id: a for a in built if isinstance(a, Attempt)}


def lock_runs(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], NativeRun]:
    """The native runs of these (executor, native_run_id) keys that exist,
    locked in key order, by key."""
    ordered = sorted(set(keys))
    if not ordered:
        return {}
    if connection.vendor != "postgresql":
        runs_q = Q()
        for executor, run_id in ordered:
            runs_q |= Q(executor=executor, native_run_id=run_id)
        qs = NativeRun.objects.select_for_update(of=("self",)).filter(runs_q).order_by("executor", "native_run_id")
        return {(r.executor, r.native_run_id): r for r in qs}
    s = _statements()
    if len(ordered) == 1:
        rows = _fetch(s.runs[True], list(ordered[0]))
    else:
        rows = _fetch(s.runs[False], [[e for e, _ in ordered], [r for _, r in ordered]])
    built = (s.run.build(row) for row in rows)
    return {(r.executor, r.native_run_id): r for r in built if isinstance(r, NativeRun)}


def read_known(
    claimed_ids: set[uuid.UUID], native_task_ids: set[str], native_run_ids: set[str]
) -> tuple[dict[uuid.UUID, ClaimedAttempt], dict[tuple[str, str], RetiredId]]:
    """The attempts that reports claim, with who superseded them, and the
    retired ids among these native task and run ids."""
    task_kind, run_kind = str(RetiredNativeId.Kind.TASK), str(RetiredNativeId.Kind.RUN)
    claimed: dict[uuid.UUID, ClaimedAttempt] = {}
    retired: dict[tuple[str, str], RetiredId] = {}
    if connection.vendor != "postgresql":
        rows: list[tuple] = [
            ("claimed", *row)
            for row in Attempt.objects.filter(id__in=claimed_ids).values_list(
                "id", "task_id", "number", "superseded_at", "superseded_by__number", "superseded_by__requested_by"
            )
        ]
        rows += [
            (kind, value, None, number, at, None, None)
            for kind, value, number, at in RetiredNativeId.objects.filter(
                Q(kind=task_kind, value__in=native_task_ids) | Q(kind=run_kind, value__in=native_run_ids)
            ).values_list("kind", "value", "attempt__number", "retired_at")
        ]
    else:
        keys: list[list] = [sorted(claimed_ids), sorted(native_task_ids), sorted(native_run_ids)]
        # One of each (a single report that names its attempt) takes the
        # one-key form; anything else the arrays.
        one = all(len(k) == 1 for k in keys)
        claimed_key, task_key, run_key = (key_param(k) if one else k for k in keys)
        rows = _fetch(_statements().known[one], [claimed_key, task_kind, task_key, run_kind, run_key])
    for kind, key, task_id, number, at, by_number, by_actor in rows:
        if kind == "claimed":
            attempt_id = key if isinstance(key, uuid.UUID) else uuid.UUID(key)
            claimed[attempt_id] = ClaimedAttempt(
                id=attempt_id,
                task_id=task_id,
                number=number,
                superseded_at=at,
                superseded_by_number=by_number,
                superseded_by_actor=by_actor,
            )
        else:
            retired[(kind, key)] = RetiredId(kind, key, number, at)
    return claimed, retired
