"""The ``metrics`` role (missioncontrol/roles.py): a group whose tokens may
read GET /metrics and nothing else."""

from django.db import migrations


def create_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name="metrics")


class Migration(migrations.Migration):
    dependencies = [("planning", "0008_event_no_truncate"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(create_group, migrations.RunPython.noop)]
