"""``repair_tasks`` (rule 9) and ``verify_integrity`` marking (rule 7),
including the repair of the four seed-000 tasks from their broken state."""

import json
from pathlib import Path

import pytest
from django.db import connection

from planning.models import Event, PlanningTask
from retries import services
from retries.integrity import integrity_problems
from retries.models import Attempt, NativeRun, RetiredNativeId
from tests.factories import AgentFactory, ProcedureFactory, ProjectFactory, TaskFactory
from tests.steps import ago, current, fail_current, launch, report

from .helpers import db_state, run

pytestmark = pytest.mark.django_db

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


def test_repairs_each_task_and_prints_what_it_did():
    chosen = AgentFactory(name="chosen")
    first, second = TaskFactory(), TaskFactory()
    fail_current(first, native_run_id="nr-first")
    services.task_rerun(slug=first.slug, actor="op", reason="again", assignee=chosen.name)
    fail_current(first, native_run_id="nr-first-2")
    fail_current(second, native_run_id="nr-second")

    result = run("repair_tasks", first.slug, second.slug, "--reason", "relinked to old runs")

    assert result.code == 0, result.err
    a, b = current(first), current(second)
    assert (a.number, a.kind, a.requested_assignee) == (3, "repair", chosen), "the frozen assignee is kept"
    assert (b.number, b.kind) == (2, "repair")
    assert Attempt.objects.filter(task=first, superseded_at__isnull=False).count() == 2
    assert set(RetiredNativeId.objects.filter(task=first).values_list("value", flat=True)) == {
        "nr-first", "nt-nr-first", "nr-first-2", "nt-nr-first-2"
    }
    assert f"{first.slug}: repaired: status failed; supersede current attempt #2; keep earlier attempts #1 superseded; " \
           "retire native ids nr-first-2, nt-nr-first-2" in result.out
    assert f"-> attempt #3 {a.id} for chosen" in result.out
    assert Event.objects.filter(task=first, type="repair.started", data__reason="relinked to old runs").exists()


def test_given_assignee_replaces_the_frozen_one():
    task = TaskFactory()
    fail_current(task)
    other = AgentFactory(name="other-agent")

    result = run("repair_tasks", task.slug, "--reason", "reassign", "--assignee", other.name)

    assert result.code == 0 and current(task).requested_assignee == other
    assert "for other-agent (given)" in result.out


def test_dry_run_prints_the_plan_and_changes_nothing():
    task = TaskFactory()
    fail_current(task, native_run_id="nr-1")
    before = db_state()

    result = run("repair_tasks", task.slug, "--reason", "check", "--dry-run")

    assert result.code == 0
    assert f"{task.slug}: would status failed; supersede current attempt #1; retire native ids nr-1, nt-nr-1; " \
           f"start repair attempt #2 for {task.project.owner.name} (frozen on attempt #1)" in result.out
    assert "Dry run: nothing was changed." in result.out
    assert db_state() == before


def test_unknown_slug_refuses_everything_unless_told_to_keep_going():
    task = TaskFactory()
    fail_current(task)
    draft = TaskFactory()
    before = db_state()

    refused = run("repair_tasks", task.slug, "no-such-task", draft.slug, "--reason", "fix")

    assert refused.code == 1
    assert "no-such-task: refused: unknown task" in refused.err
    assert f"{draft.slug}: refused: never launched" in refused.err
    assert "nothing was changed" in refused.err
    assert db_state() == before

    kept_going = run("repair_tasks", task.slug, "no-such-task", "--reason", "fix", "--keep-going")

    assert kept_going.code == 1, "a refused slug still makes the command fail"
    assert current(task).kind == "repair"
    assert f"{task.slug}: repaired" in kept_going.out


def test_bad_reason_or_assignee_is_refused_before_anything():
    task = TaskFactory()
    fail_current(task)
    before = db_state()
    assert run("repair_tasks", task.slug, "--reason", "  ").code == 1
    inactive = AgentFactory(name="gone", active=False)
    result = run("repair_tasks", task.slug, "--reason", "x", "--assignee", inactive.name)
    assert result.code == 1 and "Agent 'gone' is not active." in result.err
    assert run("repair_tasks", task.slug, "--reason", "x", "--assignee", "nobody-here").code == 1
    assert db_state() == before


def test_repair_works_on_a_task_with_imported_history_only():
    task = TaskFactory(slug=SEED_000[0])
    for slug in SEED_000[1:]:
        TaskFactory(slug=slug)
    assert run("import_retry_history", str(DEMO_FILE)).code == 0

    result = run("repair_tasks", task.slug, "--reason", "restart after migration")

    assert result.code == 0, result.err
    attempt = current(task)
    assert attempt.number == 2 and attempt.kind == "repair"
    task.refresh_from_db()
    assert task.status == "launch_requested" and task.attempt_count == 2


# --- verify_integrity marks; repair clears -------------------------------------------


@pytest.mark.damages_rows
def test_verify_integrity_marks_a_damaged_task_until_a_repair_clears_it():
    task = TaskFactory()
    attempt = fail_current(task)
    sql("UPDATE retries_attempt SET status = 'running' WHERE id = %s", attempt.id)

    first = run("verify_integrity")

    assert first.code == 1 and f"{task.slug}: attempt #1 status is running but the ledger says failed" in first.out
    task.refresh_from_db()
    assert task.inconsistent_since is not None
    # Marked: reconciliation does not retry it.
    assert services.task_retry_or_block(task_id=task.id) is None

    assert run("repair_tasks", task.slug, "--reason", "attempt row edited by hand").code == 0

    task.refresh_from_db()
    assert task.inconsistent_since is None and task.inconsistency == ""
    assert run("verify_integrity").code == 0
    assert integrity_problems() == []


@pytest.mark.damages_rows
def test_repair_of_the_four_seed_000_tasks_from_their_broken_state(tmp_path):
    """The support thread of seed 000: stale links cleaned by hand, tasks set
    back to launch_requested, reconciliation relinking old failed native runs,
    the assignee drifting to the project owner."""
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

    # proc-0: failed; the operator cleared nativeTaskId/nativeRunId and set the task
    # back to launch_requested by hand.
    old0 = fail_current(proc0, native_run_id="nr-p0-1")
    sql("UPDATE retries_attempt SET native_task_id = NULL, native_run_id = NULL, status = 'pending' WHERE id = %s", old0.id)
    sql("UPDATE planning_planningtask SET status = 'launch_requested' WHERE id = %s", proc0.id)

    # proc-1: rerun with an explicit assignee, then the new attempt was relinked
    # to the old failed run and the task marked failed again.
    old1 = fail_current(proc1, native_run_id="nr-p1-1")
    rerun1 = services.task_rerun(slug=proc1.slug, actor="op", reason="again", assignee=aemeath.name).attempt
    sql("UPDATE retries_attempt SET native_task_id = %s, native_run_id = %s, status = 'failed' WHERE id = %s",
        old1.native_task_id, old1.native_run_id, rerun1.id)
    sql("UPDATE planning_planningtask SET status = 'failed' WHERE id = %s", proc1.id)

    # proc-2: failed twice; the counter and status were edited and the assignee drifted.
    fail_current(proc2, native_run_id="nr-p2-1")
    services.task_rerun(slug=proc2.slug, actor="op", reason="again", assignee=shorekeeper.name)
    fail_current(proc2, native_run_id="nr-p2-2")
    sql("UPDATE planning_planningtask SET status = 'succeeded', attempt_count = 7, assignee_id = %s WHERE id = %s",
        owner.id, proc2.id)

    # sentinel: imported failed history, rerun, and relinked to the legacy run.
    rerun_s = services.task_rerun(slug=sentinel.slug, actor="op", reason="after migration", assignee=shorekeeper.name).attempt
    sql("UPDATE retries_attempt SET native_task_id = 'nt-9120', native_run_id = 'nr-9120-1', status = 'running' "
        "WHERE id = %s", rerun_s.id)
    sql("UPDATE planning_planningtask SET status = 'running' WHERE id = %s", sentinel.id)

    found = run("verify_integrity")
    assert found.code == 1
    for slug in SEED_000:
        assert slug in found.out
        assert PlanningTask.objects.get(slug=slug).inconsistent_since is not None
    # Marked tasks are not scheduled and cannot be rerun: only repaired.
    for slug in SEED_000:
        with pytest.raises(services.ServiceError):
            services.task_rerun(slug=slug, actor="op", reason="x", supersede_active=True, override_budget=True)

    result = run("repair_tasks", *SEED_000, "--reason", "seed 000: stale links and relinked runs")

    assert result.code == 0, result.err
    assert run("verify_integrity").code == 0
    assert integrity_problems() == []
    frozen = {proc0.slug: owner, proc1.slug: aemeath, proc2.slug: shorekeeper, sentinel.slug: shorekeeper}
    for slug, task in tasks.items():
        task.refresh_from_db()
        attempt = current(task)
        assert attempt.kind == "repair" and attempt.status == "pending" and attempt.native_run_id is None
        assert task.status == "launch_requested" and task.inconsistent_since is None
        assert task.attempt_count == attempt.number == Attempt.objects.filter(task=task).count()
        assert not Attempt.objects.filter(task=task, superseded_at__isnull=True).exclude(id=attempt.id).exists()
        assert attempt.requested_assignee == frozen[slug], f"{slug}: the frozen assignee is kept, not the owner"
    # Every old native id is retired: the old failed runs never bind again,
    # while a run of the fresh attempt does.
    for task, run_id, task_id in (
        (proc0, "nr-p0-1", "nt-nr-p0-1"),
        (proc1, "nr-p1-1", "nt-nr-p1-1"),
        (proc2, "nr-p2-2", "nt-nr-p2-2"),
        (sentinel, "nr-9120-1", "nt-9120"),
    ):
        again, _ = report(task, status="running", native_run_id=run_id + "-again", native_task_id=task_id,
                          created_at=ago(-5))
        assert again.binding == NativeRun.Binding.REJECTED, task.slug
        fresh, _ = report(task, status="running", native_run_id=f"nr-fresh-{task.id}", attempt=current(task))
        assert fresh.binding == NativeRun.Binding.BOUND, task.slug
    assert integrity_problems() == []
