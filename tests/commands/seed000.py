"""The four seed-000 tasks in the broken state of the support thread, made
through the real services and then damaged with raw SQL the way manual
fixes and the old relinking did; and the checks that a repair cleaned them."""

import json
from dataclasses import dataclass
from pathlib import Path

from django.db import connection

from planning.models import PlanningTask
from retries import services
from retries.integrity import integrity_problems
from retries.models import Attempt, NativeRun
from tests.factories import AgentFactory, ProcedureFactory, ProjectFactory, TaskFactory
from tests.steps import ago, current, fail_current, report

from .helpers import run

DEMO_FILE = Path(__file__).resolve().parents[2] / "retries" / "demo_data" / "planning-retry-history.json"
SEED_000 = (
    "policy-protocol-index-creation-proc-0",
    "policy-protocol-index-creation-proc-1",
    "policy-protocol-index-creation-proc-2",
    "high-signal-governance-stability-sentinel-proc-1",
)


def sql(statement, *params):
    with connection.cursor() as cursor:
        cursor.execute(statement, list(params))


@dataclass
class BrokenSeed:
    tasks: dict[str, PlanningTask]
    # The assignee each task's repair attempt must carry (never the drifted owner).
    frozen: dict
    # (task, a native run id and a native task id of an old failed run)
    old_runs: list


def break_seed_000_tasks(tmp_path) -> BrokenSeed:
    owner = AgentFactory(name="project-owner")
    aemeath, shorekeeper = AgentFactory(name="aemeath"), AgentFactory(name="shorekeeper")
    project = ProjectFactory(owner=owner)
    tasks = {
        slug: TaskFactory(
            slug=slug,
            project=project,
            procedure=ProcedureFactory(slug="shorekeeper" if "sentinel" in slug else "aemeath"),
            max_attempts=5,
        )
        for slug in SEED_000
    }
    proc0, proc1, proc2, sentinel = (tasks[s] for s in SEED_000)
    # The sentinel came over from the old system with its history.
    history = json.loads(DEMO_FILE.read_text())
    history["entries"] = [e for e in history["entries"] if e["planningTaskId"] == sentinel.slug]
    (tmp_path / "sentinel.json").write_text(json.dumps(history))
    assert run("import_retry_history", str(tmp_path / "sentinel.json")).code == 0

    # proc-0: failed; the operator cleared nativeTaskId/nativeRunId and set the
    # task back to launch_requested by hand.
    old0 = fail_current(proc0, native_run_id="nr-p0-1")
    sql(
        "UPDATE retries_attempt SET native_task_id = NULL, native_run_id = NULL, status = 'pending' WHERE id = %s",
        old0.id,
    )
    sql("UPDATE planning_planningtask SET status = 'launch_requested' WHERE id = %s", proc0.id)

    # proc-1: rerun with an explicit assignee, then the new attempt was relinked
    # to the old failed run and the task marked failed again.
    old1 = fail_current(proc1, native_run_id="nr-p1-1")
    rerun1 = services.task_rerun(slug=proc1.slug, actor="op", reason="again", assignee=aemeath.name).attempt
    sql(
        "UPDATE retries_attempt SET native_task_id = %s, native_run_id = %s, status = 'failed' WHERE id = %s",
        old1.native_task_id,
        old1.native_run_id,
        rerun1.id,
    )
    sql("UPDATE planning_planningtask SET status = 'failed' WHERE id = %s", proc1.id)

    # proc-2: failed twice; counter and status edited, assignee drifted to the owner.
    fail_current(proc2, native_run_id="nr-p2-1")
    services.task_rerun(slug=proc2.slug, actor="op", reason="again", assignee=shorekeeper.name)
    fail_current(proc2, native_run_id="nr-p2-2")
    sql(
        "UPDATE planning_planningtask SET status = 'succeeded', attempt_count = 7, assignee_id = %s WHERE id = %s",
        owner.id,
        proc2.id,
    )

    # sentinel: imported failed history, rerun, and relinked to the legacy run.
    rerun_s = services.task_rerun(
        slug=sentinel.slug, actor="op", reason="after migration", assignee=shorekeeper.name
    ).attempt
    sql(
        "UPDATE retries_attempt SET native_task_id = 'nt-9120', native_run_id = 'nr-9120-1', status = 'running' "
        "WHERE id = %s",
        rerun_s.id,
    )
    sql("UPDATE planning_planningtask SET status = 'running' WHERE id = %s", sentinel.id)

    return BrokenSeed(
        tasks=tasks,
        frozen={proc0.slug: owner, proc1.slug: aemeath, proc2.slug: shorekeeper, sentinel.slug: shorekeeper},
        old_runs=[
            (proc0, "nr-p0-1", "nt-nr-p0-1"),
            (proc1, "nr-p1-1", "nt-nr-p1-1"),
            (proc2, "nr-p2-2", "nt-nr-p2-2"),
            (sentinel, "nr-9120-1", "nt-9120"),
        ],
    )


def assert_all_marked_inconsistent() -> None:
    found = run("verify_integrity")
    assert found.code == 1
    for slug in SEED_000:
        assert slug in found.out
        assert PlanningTask.objects.get(slug=slug).inconsistent_since is not None


def assert_repaired(seed: BrokenSeed) -> None:
    assert run("verify_integrity").code == 0
    assert integrity_problems() == []
    for slug, task in seed.tasks.items():
        task.refresh_from_db()
        attempt = current(task)
        assert attempt.kind == "repair" and attempt.status == "pending" and attempt.native_run_id is None
        assert task.status == "launch_requested" and task.inconsistent_since is None
        assert task.attempt_count == attempt.number == Attempt.objects.filter(task=task).count()
        assert attempt.requested_assignee == seed.frozen[slug], f"{slug}: the frozen assignee is kept, not the owner"
    # Every old native id is retired: the old failed runs never bind again,
    # while a run of the fresh attempt does.
    for task, run_id, native_task_id in seed.old_runs:
        again, _ = report(
            task, status="running", native_run_id=run_id + "-again", native_task_id=native_task_id, created_at=ago(-5)
        )
        assert again.binding == NativeRun.Binding.REJECTED, task.slug
        fresh, _ = report(task, status="running", native_run_id=f"nr-fresh-{task.id}", attempt=current(task))
        assert fresh.binding == NativeRun.Binding.BOUND, task.slug
    assert integrity_problems() == []
