"""``repair_tasks`` (rule 9) and ``verify_integrity`` marking (rule 7),
including the repair of the four seed-000 tasks from their broken state."""

import pytest

from missioncontrol.errors import ServiceError
from planning.models import Event
from retries import services
from retries.integrity import integrity_problems
from retries.models import Attempt, RetiredNativeId
from tests.factories import AgentFactory, TaskFactory
from tests.steps import current, fail_current

from .helpers import db_state, run
from .seed000 import DEMO_FILE, SEED_000, assert_all_marked_inconsistent, assert_repaired, break_seed_000_tasks, sql

pytestmark = pytest.mark.django_db


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
        "nr-first",
        "nt-nr-first",
        "nr-first-2",
        "nt-nr-first-2",
    }
    assert (
        f"{first.slug}: repaired: start repair attempt #3 for chosen (previous attempt #2); supersede attempt #2; "
        "start from the first phase; retire native ids nr-first, nr-first-2, nt-nr-first, nt-nr-first-2" in result.out
    )
    assert f"-> attempt #3 {a.id} for chosen" in result.out
    assert Event.objects.filter(task=first, type="repair.started", data__reason="relinked to old runs").exists()


def test_given_assignee_replaces_the_frozen_one():
    task = TaskFactory()
    fail_current(task)
    other = AgentFactory(name="other-agent")

    result = run("repair_tasks", task.slug, "--reason", "reassign", "--assignee", other.name)

    assert result.code == 0 and current(task).requested_assignee == other
    assert "for other-agent (explicit)" in result.out


def test_dry_run_prints_the_plan_and_changes_nothing():
    task = TaskFactory()
    fail_current(task, native_run_id="nr-1")
    before = db_state()

    result = run("repair_tasks", task.slug, "--reason", "check", "--dry-run")

    assert result.code == 0
    assert (
        f"{task.slug}: would start repair attempt #2 for {task.project.owner.name} (previous attempt #1); "
        "supersede attempt #1; start from the first phase; retire native ids nr-1, nt-nr-1" in result.out
    )
    assert "Dry run: nothing was changed." in result.out
    assert db_state() == before


def test_unknown_slug_refuses_everything_unless_told_to_keep_going():
    task = TaskFactory()
    fail_current(task)
    draft = TaskFactory()
    before = db_state()

    refused = run("repair_tasks", task.slug, "no-such-task", draft.slug, "--reason", "fix")

    assert refused.code == 1
    assert "no-such-task: refused: No task named 'no-such-task'." in refused.err
    assert f"{draft.slug}: refused: Task {draft.slug} was never launched" in refused.err
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
    AgentFactory(name="aemeath"), AgentFactory(name="shorekeeper")
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
    seed = break_seed_000_tasks(tmp_path)
    assert_all_marked_inconsistent()
    # Marked tasks are not scheduled and cannot be rerun: only repaired.
    for slug, task in seed.tasks.items():
        assert services.task_retry_or_block(task_id=task.id) is None
        with pytest.raises(ServiceError) as refused:
            services.task_rerun(slug=slug, actor="op", reason="x", supersede_active=True, override_budget=True)
        assert refused.value.code in ("inconsistent", "use_repair")

    result = run("repair_tasks", *SEED_000, "--reason", "seed 000: stale links and relinked runs")

    assert result.code == 0, result.err
    for slug in SEED_000:
        assert f"{slug}: repaired" in result.out
    assert_repaired(seed)
