"""The locks of a new attempt (launch, rerun, retry) in two statements
written once: the tasks, joinless, in id order; then their current
attempts, locked next (task -> attempt), in one read with what a decision
needs beside them (each task's procedure, project and its owner, plan and
assignee; the attempt's requested assignee; every native id linked to the
attempt). The ORM built the same reads as three statements, one a locking
six-table join, and compiling them cost a rerun more Python than the rest
of it (docs/performance.md)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cache

from django.db import connection

from missioncontrol.db import Columns, key_param, match
from planning.models import Agent, Plan, PlanningTask, Procedure, Project

from ..models import Attempt, NativeRun
from .facts import linked_native_ids, native_id_pairs


@dataclass
class Currents:
    """The locked current attempt of each task (by task id) and the native
    ids linked to each (by attempt id), as ``linked_native_ids`` answers."""

    attempts: dict[int, Attempt]
    native: dict[uuid.UUID, tuple[tuple[str, str], ...]]


class _Sql:
    """The statements, built on first use (table and column names come
    from the models, quoting from the backend)."""

    def __init__(self) -> None:
        q = connection.ops.quote_name
        self.task = Columns(PlanningTask, "t")
        self.procedure = Columns(Procedure, "p")
        self.project = Columns(Project, "pr")
        self.owner = Columns(Agent, "o")
        self.plan = Columns(Plan, "pl")
        self.assignee = Columns(Agent, "g")
        self.attempt = Columns(Attempt, "a")
        self.requested = Columns(Agent, "ra")
        tasks, attempts = q(PlanningTask._meta.db_table), q(Attempt._meta.db_table)
        agents, runs = q(Agent._meta.db_table), q(NativeRun._meta.db_table)
        lock = f"SELECT {self.task.sql()} FROM {tasks} t WHERE t.{{key}} {{match}} ORDER BY t.id FOR UPDATE"
        # Each in two forms, for one key and for many (``missioncontrol.db.match``).
        self.by_slug = {one: lock.format(key="slug", match=match("varchar", one)) for one in (True, False)}
        self.by_id = {one: lock.format(key="id", match=match("bigint", one)) for one in (True, False)}
        parts = (self.procedure, self.project, self.owner, self.plan, self.assignee, self.attempt, self.requested)
        # The attempts are locked in a CTE of their own (MATERIALIZED: it runs
        # once, as written, whatever the outer join order); the rest is read.
        self.currents = {
            one: f"WITH a AS MATERIALIZED (SELECT {self.attempt.names()} FROM {attempts}"
            f" WHERE task_id {match('bigint', one)} AND superseded_at IS NULL ORDER BY task_id FOR UPDATE)"
            f" SELECT t.id, {', '.join(part.sql() for part in parts)}, n.task_ids, n.run_ids"
            f" FROM {tasks} t"
            f" JOIN {q(Procedure._meta.db_table)} p ON p.id = t.procedure_id"
            f" JOIN {q(Project._meta.db_table)} pr ON pr.id = t.project_id"
            f" JOIN {agents} o ON o.id = pr.owner_id"
            f" LEFT JOIN {q(Plan._meta.db_table)} pl ON pl.id = t.plan_id"
            f" LEFT JOIN {agents} g ON g.id = t.assignee_id"
            " LEFT JOIN a ON a.task_id = t.id"
            f" LEFT JOIN {agents} ra ON ra.id = a.requested_assignee_id"
            " LEFT JOIN LATERAL (SELECT array_agg(r.native_task_id ORDER BY r.id) AS task_ids,"
            f" array_agg(r.native_run_id ORDER BY r.id) AS run_ids FROM {runs} r"
            " WHERE r.attempt_id = a.id OR r.claimed_attempt_id = a.id) n ON TRUE"
            f" WHERE t.id {match('bigint', one)}"
            for one in (True, False)
        }
        self.parts = parts


@cache
def _sql() -> _Sql:
    return _Sql()


def lock_tasks(*, slugs: list[str] | None = None, ids: list[int] | None = None) -> list[PlanningTask]:
    """Tasks by slug or by id, locked in id order in one statement with no
    join (two sets locked at once then wait for each other instead of
    deadlocking). Their relations are loaded by ``lock_current_attempts``;
    read nothing of them before."""
    sql = _sql()
    if connection.vendor != "postgresql":
        lookup = {"slug__in": slugs} if slugs is not None else {"id__in": ids}
        return list(PlanningTask.objects.select_for_update(of=("self",)).filter(**lookup).order_by("id"))
    with connection.cursor() as cursor:
        keys = slugs if slugs is not None else ids
        if not keys:
            return []
        statements = sql.by_slug if slugs is not None else sql.by_id
        cursor.execute(statements[len(keys) == 1], [key_param(keys)])
        rows = cursor.fetchall()
    return [sql.task.build(row) for row in rows]  # type: ignore[misc]  # a locked row has its key


def lock_current_attempts(tasks: list[PlanningTask]) -> Currents:
    """The current attempts of locked tasks, locked next (task -> attempt),
    with every native id linked to each; and each task's procedure,
    project (and its owner), plan and assignee, loaded on the task as
    ``select_related`` would. One statement."""
    if not tasks:
        return Currents({}, {})
    if connection.vendor != "postgresql":
        return _elsewhere(tasks)
    sql = _sql()
    by_id = {t.id: t for t in tasks}
    ids = list(by_id)
    with connection.cursor() as cursor:
        cursor.execute(sql.currents[len(ids) == 1], [key_param(ids), key_param(ids)])
        rows = cursor.fetchall()
    attempts: dict[int, Attempt] = {}
    native: dict[uuid.UUID, tuple[tuple[str, str], ...]] = {}
    for row in rows:
        task = by_id[row[0]]
        start = 1
        built = []
        for part in sql.parts:
            built.append(part.build(row[start : start + len(part)]))
            start += len(part)
        procedure, project, owner, plan, assignee, attempt, requested = built
        _cache(project, "owner", owner)
        for name, value in (("procedure", procedure), ("project", project), ("plan", plan), ("assignee", assignee)):
            _cache(task, name, value)
        if attempt is None:
            continue
        assert isinstance(attempt, Attempt)
        _cache(attempt, "requested_assignee", requested)
        attempts[task.id] = attempt
        pairs = native_id_pairs(attempt, zip(row[start] or (), row[start + 1] or (), strict=True))
        if pairs:
            native[attempt.id] = pairs
    return Currents(attempts, native)


def _cache(instance, name: str, value) -> None:
    instance._meta.get_field(name).set_cached_value(instance, value)


def _elsewhere(tasks: list[PlanningTask]) -> Currents:
    """The same answer through the ORM, for the embedded SQLite default."""
    relations = {
        t.id: t
        for t in PlanningTask.objects.select_related("procedure", "project__owner", "plan", "assignee").filter(
            id__in=[t.id for t in tasks]
        )
    }
    for task in tasks:
        loaded = relations[task.id]
        for name in ("procedure", "project", "plan", "assignee"):
            _cache(task, name, getattr(loaded, name))
    attempts = {
        a.task_id: a
        for a in Attempt.objects.select_for_update(of=("self",))
        .select_related("requested_assignee")
        .filter(task_id__in=[t.id for t in tasks], superseded_at__isnull=True)
        .order_by("task_id")
    }
    return Currents(attempts, linked_native_ids(list(attempts.values())))
