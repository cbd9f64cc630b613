"""Run as a script by ``test_sqlite.py``, in a process of its own on the
embedded default (SQLite, no DATABASE_URL): the set-based services each
write through their own code path there (none of PostgreSQL's statements),
so each is called directly, not through a caller that would fall back to
the per-task path.
Prints one JSON line with what it found."""

import json

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

call_command("migrate", verbosity=0)

from planning.models import PlanningTask  # noqa: E402
from retries import services  # noqa: E402
from retries.integrity import integrity_problems  # noqa: E402
from retries.models import Attempt, RetiredNativeId  # noqa: E402
from tests.factories import ProcedureFactory, ProjectFactory, TaskFactory  # noqa: E402
from tests.steps import current, fail_current, launch  # noqa: E402

project, procedure = ProjectFactory(), ProcedureFactory(max_attempts=2)
tasks = [TaskFactory(project=project, procedure=procedure, max_attempts=2) for _ in range(3)]
for task in tasks:
    fail_current(task)

# Automatic retries, set-based (the reconcile pass's path).
retried = services.task_retry_or_block_many(task_ids=[t.id for t in tasks])
for task in tasks:
    fail_current(task)
# Past the budget now: blocked, set-based too.
started_when_spent = services.task_retry_or_block_many(task_ids=[t.id for t in tasks])
after_block = sorted(PlanningTask.objects.filter(id__in=[t.id for t in tasks]).values_list("status", flat=True))

# An operator's bulk rerun past the budget, then a batch of reports.
reruns = services.task_rerun_many(
    slugs=[t.slug for t in tasks], actor="operator", reason="embedded default", override_budget=True
)
fresh = TaskFactory(project=project, procedure=procedure)
launch(fresh)
batch = services.native_run_report_batch(
    reports=[
        services.RunReport(
            executor="ext",
            native_task_id=f"nt-{t.slug}",
            native_run_id=f"nr-{t.slug}",
            task=t.slug,
            status="running",
            attempt_id=current(t).id,
        )
        for t in (*tasks, fresh)
    ],
    actor="executor",
)

print(
    json.dumps(
        {
            "vendor": connection.vendor,
            "retried": len(retried),
            "started_when_spent": len(started_when_spent),
            "after_block": after_block,
            "reruns": [r.attempt.number for r in reruns],
            "bound": sorted(run.binding for run, _created in batch),
            "superseded": Attempt.objects.filter(superseded_at__isnull=False).count(),
            "retired": RetiredNativeId.objects.count(),
            "statuses": sorted(PlanningTask.objects.values_list("status", flat=True)),
            "problems": [str(p) for p in integrity_problems()],
        }
    )
)
