"""Least privilege in the database: the application runs as a role that
``manage.py db_app_role`` made, and that suffices for the real services and
API requests; the ledger refuses TRUNCATE, UPDATE, DELETE and disabling its
triggers to that role, and TRUNCATE even to its owner.

Everything happens inside the test's transaction (``SET ROLE`` on the same
connection), so the role, its grants and the rows vanish with the rollback."""

from __future__ import annotations

import io
import uuid
from contextlib import contextmanager

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from rest_framework.test import APIClient

from missioncontrol.api.services import api_token_create
from planning.models import Event, PlanningTask
from retries.models import Attempt, NativeRun
from tests.factories import TEST_EXECUTORS, AgentFactory, ProcedureFactory, ProjectFactory, TaskFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def app_role(db):
    role = f"mc_app_{uuid.uuid4().hex[:12]}"
    call_command("db_app_role", role, stdout=io.StringIO())
    return role


@contextmanager
def as_role(role: str):
    with connection.cursor() as cursor:
        cursor.execute(f"SET ROLE {connection.ops.quote_name(role)}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")


def refused(sql: str, params=None) -> str:
    """Runs ``sql`` in a savepoint; returns the error PostgreSQL raised."""
    with pytest.raises(DatabaseError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return str(caught.value)


def test_the_role_is_no_superuser_and_owns_nothing(app_role):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls FROM pg_roles WHERE rolname = %s", [app_role]
        )
        assert cursor.fetchone() == (False, False, False, False)
        cursor.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = %s", [app_role]
        )
        assert cursor.fetchone()[0] == 0
        for privilege, expected in [
            ("SELECT", True),
            ("INSERT", True),
            ("UPDATE", False),
            ("DELETE", False),
            ("TRUNCATE", False),
            ("TRIGGER", False),
        ]:
            cursor.execute("SELECT has_table_privilege(%s, 'planning_event', %s)", [app_role, privilege])
            assert cursor.fetchone()[0] is expected, privilege


def test_the_application_runs_as_the_role(app_role):
    """Create, launch and report through the real API, and a reconciliation
    pass, all as the application's role."""
    owner = AgentFactory(name="owner-bot")
    ProjectFactory(slug="policy", owner=owner)
    ProcedureFactory(slug="aemeath", phases=["preflight", "execute"])
    operator_key = api_token_create(username="op-role", role="operator").key
    executor_key = api_token_create(username="exec-role", role="executor", executors=TEST_EXECUTORS).key
    operator, executor = APIClient(), APIClient()
    operator.credentials(HTTP_AUTHORIZATION=f"Token {operator_key}")
    executor.credentials(HTTP_AUTHORIZATION=f"Token {executor_key}")
    events_before = Event.objects.count()
    with as_role(app_role):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == app_role
        created = operator.post(
            "/api/v1/tasks/",
            {"slug": "role-task", "title": "As the role", "project": "policy", "procedure": "aemeath"},
            format="json",
        )
        assert created.status_code == 201, created.content
        launched = operator.post("/api/v1/tasks/role-task/launch/", format="json")
        assert launched.status_code == 201, launched.content
        attempt_id = launched.json()["id"]
        report = {
            "executor": "ext",
            "native_task_id": "nt-r",
            "native_run_id": "nr-r",
            "task": "role-task",
            "attempt_id": attempt_id,
            "status": "running",
        }
        assert executor.post("/api/v1/native-runs/", report, format="json").status_code == 201
        phase = executor.post(
            f"/api/v1/attempts/{attempt_id}/phases/", {"phase": "preflight", "outcome": "passed"}, format="json"
        )
        assert phase.status_code == 201, phase.content
        batch = executor.post(
            "/api/v1/native-runs/batch/", {"reports": [{**report, "status": "succeeded"}]}, format="json"
        )
        assert batch.status_code == 200, batch.content
        assert operator.get("/api/v1/tasks/role-task/").json()["status"] == "succeeded"
        call_command("reconcile", stdout=io.StringIO())
        call_command("verify_integrity", "--no-mark", stdout=io.StringIO())
    task = PlanningTask.objects.get(slug="role-task")
    assert task.status == "succeeded"
    assert Attempt.objects.filter(task=task).count() == 1 and NativeRun.objects.filter(native_run_id="nr-r").exists()
    assert Event.objects.count() > events_before


def test_the_role_cannot_empty_change_or_unprotect_the_ledger(app_role):
    ProjectFactory(slug="policy")
    with as_role(app_role):
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO planning_event (at, type, actor, data) VALUES (now(), 'probe', 'test', '{}')")
        before = Event.objects.count()
        for sql in [
            "TRUNCATE planning_event",
            "TRUNCATE planning_event CASCADE",
            "UPDATE planning_event SET actor = 'forged'",
            "DELETE FROM planning_event",
            "ALTER TABLE planning_event DISABLE TRIGGER ALL",
            "ALTER TABLE planning_event DISABLE TRIGGER planning_event_no_update_delete",
            "DROP TRIGGER planning_event_no_truncate ON planning_event",
            "DROP TABLE planning_event",
            "CREATE TABLE public.planted (id int)",
            "SET session_replication_role = replica",
        ]:
            message = refused(sql)
            assert "permission denied" in message or "must be owner" in message, (sql, message)
        # The escape hatch of the test databases does not help it either.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL missioncontrol.allow_ledger_truncate = 'on'")
        assert "permission denied" in refused("TRUNCATE planning_event")
        assert Event.objects.count() == before


def test_the_ledger_refuses_truncate_even_to_its_owner(db):
    TaskFactory(slug="ledger-probe")
    before = Event.objects.count()
    assert before > 0
    with connection.cursor() as cursor:
        # The test database allows it for the flush between tests; this
        # transaction does not.
        cursor.execute("SET LOCAL missioncontrol.allow_ledger_truncate = 'off'")
        # Checks deferred to the commit would make PostgreSQL refuse first.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert "append-only: TRUNCATE refused" in refused("TRUNCATE planning_event CASCADE")
    assert "append-only: UPDATE refused" in refused("UPDATE planning_event SET actor = 'x'")
    assert "append-only: DELETE refused" in refused("DELETE FROM planning_event")
    assert Event.objects.count() == before


def test_print_sql_shows_the_grants_without_running_them(db, capsys):
    role = f"mc_app_{uuid.uuid4().hex[:12]}"
    call_command("db_app_role", role, "--print-sql")
    out = capsys.readouterr().out
    assert f'GRANT SELECT, INSERT ON TABLE "planning_event" TO "{role}"' in out
    assert "TRUNCATE" not in out.replace("NO", "")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [role])
        assert cursor.fetchone()[0] == 0


def test_the_password_comes_from_the_environment(db, monkeypatch):
    from django.core.management.base import CommandError

    role = f"mc_app_{uuid.uuid4().hex[:12]}"
    with pytest.raises(CommandError):
        call_command("db_app_role", role, "--password-from-env", "MC_NO_SUCH_VAR")
    monkeypatch.setenv("MC_TEST_APP_PASSWORD", "s3cret-'quoted")
    call_command("db_app_role", role, "--password-from-env", "MC_TEST_APP_PASSWORD", stdout=io.StringIO())
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = %s", [role])
        assert cursor.fetchone()[0] is True
