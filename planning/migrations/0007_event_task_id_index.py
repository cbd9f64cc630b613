"""Events of a task are read in id order and the newest one is the task
page's version: one (task, id) index serves both and the foreign key's own
lookups, so it replaces the single-column index on task_id. Created before
the old one is dropped."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('planning', '0006_task_status_counts'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='event',
            index=models.Index(fields=['task', 'id'], name='event_task_id'),
        ),
        migrations.AlterField(
            model_name='event',
            name='task',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='events', to='planning.planningtask'),
        ),
    ]
