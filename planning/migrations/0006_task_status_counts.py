"""Per-status task counts for the board, kept by the database (see
``TaskStatusCount``). Every INSERT, UPDATE and DELETE of task rows, whoever
sends it, appends the statuses it changed as delta rows; the table starts
from the tasks that exist.

PostgreSQL: statement-level AFTER triggers with transition tables, so a
set-based UPDATE of a thousand tasks appends one row per status it changed,
not one per task. (PostgreSQL refuses a column list — ``UPDATE OF status`` —
on a trigger with transition tables, so the UPDATE trigger fires for every
UPDATE and writes nothing when no status changed.) SQLite (``make run``) has
no transition tables: row-level triggers, only on a real status change.
The triggers are created before the table is filled, in the same
transaction: CREATE TRIGGER holds a lock that keeps writers out until the
migration commits, so no change falls between the count and the triggers."""

from django.db import migrations, models

PG_CREATE = """
CREATE FUNCTION planning_task_status_count_insert() RETURNS trigger AS $$
BEGIN
    INSERT INTO planning_taskstatuscount (status, n)
        SELECT status, count(*) FROM new_rows GROUP BY status;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION planning_task_status_count_update() RETURNS trigger AS $$
BEGIN
    INSERT INTO planning_taskstatuscount (status, n)
        SELECT status, sum(d) FROM (
            SELECT status, 1 AS d FROM new_rows
            UNION ALL
            SELECT status, -1 AS d FROM old_rows
        ) AS changes
        GROUP BY status
        HAVING sum(d) <> 0;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION planning_task_status_count_delete() RETURNS trigger AS $$
BEGIN
    INSERT INTO planning_taskstatuscount (status, n)
        SELECT status, -count(*) FROM old_rows GROUP BY status;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER planning_task_status_count_insert
    AFTER INSERT ON planning_planningtask
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION planning_task_status_count_insert();

CREATE TRIGGER planning_task_status_count_update
    AFTER UPDATE ON planning_planningtask
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION planning_task_status_count_update();

CREATE TRIGGER planning_task_status_count_delete
    AFTER DELETE ON planning_planningtask
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION planning_task_status_count_delete();
"""

PG_DROP = """
DROP TRIGGER IF EXISTS planning_task_status_count_insert ON planning_planningtask;
DROP TRIGGER IF EXISTS planning_task_status_count_update ON planning_planningtask;
DROP TRIGGER IF EXISTS planning_task_status_count_delete ON planning_planningtask;
DROP FUNCTION IF EXISTS planning_task_status_count_insert();
DROP FUNCTION IF EXISTS planning_task_status_count_update();
DROP FUNCTION IF EXISTS planning_task_status_count_delete();
"""

SQLITE_CREATE = [
    """
    CREATE TRIGGER planning_task_status_count_insert
    AFTER INSERT ON planning_planningtask
    BEGIN
        INSERT INTO planning_taskstatuscount (status, n) VALUES (NEW.status, 1);
    END
    """,
    """
    CREATE TRIGGER planning_task_status_count_update
    AFTER UPDATE OF status ON planning_planningtask
    WHEN OLD.status IS NOT NEW.status
    BEGIN
        INSERT INTO planning_taskstatuscount (status, n) VALUES (OLD.status, -1);
        INSERT INTO planning_taskstatuscount (status, n) VALUES (NEW.status, 1);
    END
    """,
    """
    CREATE TRIGGER planning_task_status_count_delete
    AFTER DELETE ON planning_planningtask
    BEGIN
        INSERT INTO planning_taskstatuscount (status, n) VALUES (OLD.status, -1);
    END
    """,
]

SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS planning_task_status_count_insert",
    "DROP TRIGGER IF EXISTS planning_task_status_count_update",
    "DROP TRIGGER IF EXISTS planning_task_status_count_delete",
]

FILL = """
INSERT INTO planning_taskstatuscount (status, n)
    SELECT status, count(*) FROM planning_planningtask GROUP BY status
"""


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_CREATE, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_CREATE:
            schema_editor.execute(statement, params=None)
    else:
        raise NotImplementedError(f"task status count triggers for {vendor}")
    schema_editor.execute(FILL, params=None)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_DROP, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_DROP:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('planning', '0005_board_order_index'),
    ]

    operations = [
        migrations.CreateModel(
            name='TaskStatusCount',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('status', models.CharField(max_length=20)),
                ('n', models.IntegerField()),
            ],
        ),
        migrations.RunPython(forwards, backwards),
    ]
