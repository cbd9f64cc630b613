"""The ledger survives TRUNCATE too. 0002's row triggers refuse UPDATE and
DELETE, but TRUNCATE fires no row trigger: a statement trigger refuses it,
whoever sends it, the table's owner included (PostgreSQL only).

The one way through is deliberate: a session (or a database, with ALTER
DATABASE ... SET) that sets ``missioncontrol.allow_ledger_truncate`` to
``on``. The test suite sets it on its throw-away databases, whose flush
between transactional tests truncates every table; a production database
never does. The application's own role (``manage.py db_app_role``) has no
TRUNCATE privilege at all, so the setting does not help it."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION planning_event_no_truncate() RETURNS trigger AS $$
BEGIN
    IF current_setting('missioncontrol.allow_ledger_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'planning_event is append-only: TRUNCATE refused'
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER planning_event_no_truncate
    BEFORE TRUNCATE ON planning_event
    FOR EACH STATEMENT EXECUTE FUNCTION planning_event_no_truncate();
"""

DROP = """
DROP TRIGGER IF EXISTS planning_event_no_truncate ON planning_event;
DROP FUNCTION IF EXISTS planning_event_no_truncate();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("planning", "0007_event_task_id_index")]

    operations = [migrations.RunPython(forwards, backwards)]
