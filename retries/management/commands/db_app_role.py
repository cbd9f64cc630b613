"""Create or update the PostgreSQL role the application runs as.

Migrations run as the database owner; the web, worker and beat processes
connect as this role, which owns nothing and may only:

- SELECT and INSERT the ledger (``planning_event``): never UPDATE, DELETE
  or TRUNCATE it, and, not being its owner, never ALTER it or disable its
  triggers;
- SELECT, INSERT, UPDATE and DELETE every other table of the application
  (``django_migrations``: SELECT only);
- use and read the sequences.

Run it as the owner after every ``migrate`` (it is idempotent); it also sets
the owner's default privileges so that tables a later migration adds are
usable by the role before it is run again. The password, if any, is read
from an environment variable, never from the command line.

    DATABASE_URL=postgres://owner@db/mc python manage.py migrate
    MC_APP_PASSWORD=... DATABASE_URL=postgres://owner@db/mc \\
        python manage.py db_app_role mc_app --password-from-env MC_APP_PASSWORD
    # then every process: DATABASE_URL=postgres://mc_app:...@db/mc

``--print-sql`` prints the statements (without the password) instead of
running them, for a DBA to review or run by hand.
"""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from psycopg import sql

LEDGER = "planning_event"
READ_ONLY = ("django_migrations",)


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


def role_sql(role: str, *, tables: list[str], owner: str, database: str) -> list[str]:
    """The statements that make ``role`` what the module docstring says."""
    r = quote(role)
    statements = [
        f"""DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {literal(role)}) THEN
        CREATE ROLE {r} LOGIN;
    END IF;
END $$""",
        # Whatever it was before: no superuser, no owner of anything.
        f"ALTER ROLE {r} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT",
        f"GRANT CONNECT ON DATABASE {quote(database)} TO {r}",
        f"GRANT USAGE ON SCHEMA public TO {r}",
        f"REVOKE CREATE ON SCHEMA public FROM {r}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {r}",
    ]
    for table in tables:
        if table == LEDGER or table in READ_ONLY:
            privileges = "SELECT, INSERT" if table == LEDGER else "SELECT"
        else:
            privileges = "SELECT, INSERT, UPDATE, DELETE"
        statements.append(f"GRANT {privileges} ON TABLE {quote(table)} TO {r}")
    statements += [
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r}",
        # Tables and sequences a later migration creates (as the owner).
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {quote(owner)} IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {r}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {quote(owner)} IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {r}",
    ]
    return statements


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class Command(BaseCommand):
    help = "Create or update the non-superuser PostgreSQL role the application runs as (run as the owner)."

    def add_arguments(self, parser):
        parser.add_argument("role", help="name of the application's role, e.g. mc_app")
        parser.add_argument(
            "--password-from-env", metavar="VAR", help="set the role's password from this environment variable"
        )
        parser.add_argument("--print-sql", action="store_true", help="print the statements instead of running them")

    def handle(self, *args, role: str, password_from_env: str | None, print_sql: bool, **options):
        if connection.vendor != "postgresql":
            raise CommandError("db_app_role is for PostgreSQL; the embedded SQLite database has no roles.")
        if not role or len(role) > 63 or "\x00" in role:
            raise CommandError("Give a role name of 1 to 63 characters.")
        password = None
        if password_from_env:
            password = os.environ.get(password_from_env)
            if not password:
                raise CommandError(f"The environment variable {password_from_env} is empty or not set.")
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user, current_database()")
            owner, database = cursor.fetchone()
        if role == owner:
            raise CommandError("The application's role must not be the owner that runs the migrations.")
        tables = sorted(connection.introspection.table_names(include_views=False))
        statements = role_sql(role, tables=tables, owner=owner, database=database)
        if print_sql:
            for statement in statements:
                self.stdout.write(statement + ";")
            if password:
                self.stdout.write(f"ALTER ROLE {quote(role)} PASSWORD '...';  -- from ${password_from_env}")
            return
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
            if password is not None:
                # A utility statement takes no bound parameter (server-side
                # binding is on): the password goes in as a quoted literal.
                password_sql = sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
                cursor.execute(password_sql.as_string(connection.connection))
            cursor.execute(
                "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = %s", [role]
            )
            owned = cursor.fetchone()[0]
        if owned:
            self.stderr.write(f"warning: {role} owns {owned} relations; reassign them to {owner}.")
        others = [t for t in tables if t != LEDGER and t not in READ_ONLY]
        self.stdout.write(
            f"{role}: SELECT, INSERT on {LEDGER}; SELECT, INSERT, UPDATE, DELETE on {len(others)} other tables; "
            f"sequences usable. Run the application with it, the migrations with {owner}."
        )
