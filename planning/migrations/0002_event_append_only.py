"""The ledger is append-only, enforced by the database itself on PostgreSQL:
a trigger refuses every UPDATE and DELETE of an event row, whoever sends it."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION planning_event_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'planning_event is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER planning_event_no_update_delete
    BEFORE UPDATE OR DELETE ON planning_event
    FOR EACH ROW EXECUTE FUNCTION planning_event_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS planning_event_no_update_delete ON planning_event;
DROP FUNCTION IF EXISTS planning_event_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("planning", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
