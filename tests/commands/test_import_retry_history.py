"""``import_retry_history``: validated completely, all-or-nothing,
idempotent, imported native ids retired for good (rule 8, rule 2)."""

import json
from pathlib import Path

import pytest

from planning.models import Event, PlanningTask
from retries import services
from retries.history import retry_history_import
from retries.models import Attempt, NativeRun, RetiredNativeId
from tests.factories import AgentFactory, PlanFactory, TaskFactory
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

A1 = "0b6f4c1e-2b1a-4a53-9d43-5c1d2f7e9a10"
A2 = "7c1d9e2a-4b3f-4e8d-a1c2-9f0e8d7c6b5a"


def entry(task, **overrides):
    value = {
        "planningTaskId": task if isinstance(task, str) else task.slug,
        "attemptId": A1,
        "attemptNumber": 1,
        "requestedAt": "2026-11-02T09:14:00Z",
        "requestedAssigneeId": None,
        "nativeTaskId": "nt-8812",
        "nativeRunId": "nr-8812-1",
        "status": "failed",
        "supersededAt": None,
        "supersededByAttemptId": None,
    }
    value.update(overrides)
    return value


def write(tmp_path, entries, *, version=1, name="history.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"version": version, "entries": entries}))
    return path


def two_attempt_history(task, tmp_path):
    return write(
        tmp_path,
        [
            entry(task, supersededByAttemptId=A2, supersededAt="2026-11-02T10:00:00+00:00"),
            entry(
                task,
                attemptId=A2,
                attemptNumber=2,
                requestedAt="2026-11-02T10:00:00Z",
                nativeTaskId="nt-8812",
                nativeRunId="nr-8812-2",
                requestedAssigneeId="aemeath",
            ),
        ],
    )


# --- A good file -------------------------------------------------------------------


def test_good_file_creates_superseded_historical_attempts_and_retires_their_ids(tmp_path):
    AgentFactory(name="aemeath")
    task = TaskFactory()
    path = two_attempt_history(task, tmp_path)

    result = run("import_retry_history", str(path))

    assert result.code == 0, result.err
    assert "2 of 2 entries imported" in result.out
    task.refresh_from_db()
    attempts = list(Attempt.objects.filter(task=task).order_by("number"))
    assert [(a.number, a.status, a.imported) for a in attempts] == [(1, "failed", True), (2, "failed", True)]
    assert all(a.superseded_at is not None for a in attempts), "an import never creates a current attempt"
    assert str(attempts[0].id) == A1 and attempts[0].superseded_by_id == attempts[1].id
    assert attempts[1].requested_assignee.name == "aemeath"
    assert task.attempt_count == 2
    # A draft task takes the status of its newest imported attempt, as a ledger fact.
    assert task.status == "failed"
    assert Event.objects.filter(task=task, type="task.status_changed", data__status="failed").exists()
    imported = Event.objects.filter(task=task, type="attempt.imported").order_by("id")
    assert [(e.attempt_id, e.data["status"]) for e in imported] == [(a.id, "failed") for a in attempts]
    assert set(RetiredNativeId.objects.filter(task=task).values_list("kind", "value")) == {
        ("task", "nt-8812"),
        ("run", "nr-8812-1"),
        ("run", "nr-8812-2"),
    }
    assert run("verify_integrity").code == 0


def test_import_leaves_a_task_that_is_not_draft_in_its_status(tmp_path):
    task = TaskFactory()
    plan = PlanFactory()
    plan_task = TaskFactory(plan=plan, project=plan.project)
    services.task_cancel(slug=task.slug, actor="op", reason="x")  # no attempts, cancelled
    path = write(tmp_path, [entry(task), entry(plan_task, attemptId=None, nativeTaskId="nt-2", nativeRunId="nr-2")])

    assert run("import_retry_history", str(path)).code == 0

    task.refresh_from_db()
    plan_task.refresh_from_db()
    plan_task.plan.refresh_from_db()
    assert task.status == "cancelled" and task.attempt_count == 1
    assert plan_task.status == "failed"
    assert plan_task.plan.status == "failed", "the plan's projection follows its task"


def test_imported_task_is_rerun_with_a_fresh_attempt_and_old_runs_never_bind(tmp_path):
    task = TaskFactory()
    path = two_attempt_history(task, tmp_path)
    AgentFactory(name="aemeath")
    assert run("import_retry_history", str(path)).code == 0

    rerun = services.task_rerun(slug=task.slug, actor="op", reason="after migration", override_budget=True).attempt

    assert rerun.number == 3 and rerun.kind == "rerun" and current(task) == rerun
    # The old system's runs report again (legacy, no attempt id, "new" created_at): never bound.
    for native_task_id, native_run_id in (("nt-8812", "nr-8812-9"), ("nt-other", "nr-8812-2")):
        run_row, _ = report(
            task, status="failed", native_run_id=native_run_id, native_task_id=native_task_id, created_at=ago(-5)
        )
        assert run_row.binding == NativeRun.Binding.REJECTED and run_row.binding_reason == "retired_native_id"
    # A run of the fresh attempt binds.
    fresh, _ = report(task, status="running", native_run_id="nr-new", attempt=rerun)
    assert fresh.binding == NativeRun.Binding.BOUND
    task.refresh_from_db()
    assert task.status == "running"


def test_an_unbound_run_already_reported_with_an_imported_id_is_rejected_later(tmp_path):
    task = TaskFactory()
    early, _ = report(task, status="failed", native_run_id="nr-8812-1", native_task_id="nt-8812", created_at=ago(60))
    assert early.binding == NativeRun.Binding.UNBOUND
    assert run("import_retry_history", str(write(tmp_path, [entry(task)]))).code == 0
    launch_ok = services.task_rerun(slug=task.slug, actor="op", reason="go").attempt
    assert launch_ok.number == 2

    assert services.native_run_try_bind(run_id=early.id) == NativeRun.Binding.REJECTED


# --- Idempotent ----------------------------------------------------------------------


def test_the_same_file_again_changes_nothing(tmp_path):
    AgentFactory(name="aemeath")
    task = TaskFactory()
    other = TaskFactory()
    path = two_attempt_history(task, tmp_path)
    content = json.loads(path.read_text())
    content["entries"].append(entry(other, attemptId=None, nativeTaskId="nt-x", nativeRunId="nr-x"))
    path.write_text(json.dumps(content))
    assert run("import_retry_history", str(path)).code == 0
    before = db_state()

    again = run("import_retry_history", str(path))

    assert again.code == 0, again.err
    assert "0 of 3 entries imported, 3 already imported" in again.out
    assert db_state() == before


def test_a_file_with_one_more_entry_imports_only_that_one(tmp_path):
    task = TaskFactory()
    assert run("import_retry_history", str(write(tmp_path, [entry(task)]))).code == 0
    second = entry(
        task,
        attemptId=None,
        attemptNumber=2,
        nativeTaskId="nt-2",
        nativeRunId="nr-2",
        requestedAt="2026-11-03T00:00:00Z",
        status="cancelled",
    )

    result = run("import_retry_history", str(write(tmp_path, [entry(task), second])))

    assert result.code == 0 and "1 of 2 entries imported, 1 already imported" in result.out
    task.refresh_from_db()
    assert task.attempt_count == 2
    assert task.status == "failed", "only a draft task takes its history's status"


# --- Bad files: every problem listed, nothing written ---------------------------------


def assert_refused(path, *expected):
    before = db_state()
    result = run("import_retry_history", str(path))
    assert result.code == 1, result.out
    for text in expected:
        assert text in result.err, f"{text!r} not in:\n{result.err}"
    assert "nothing was imported" in result.err
    assert db_state() == before
    return result


def test_truncated_file_is_refused(tmp_path):
    task = TaskFactory()
    good = write(tmp_path, [entry(task)]).read_text()
    path = tmp_path / "truncated.json"
    path.write_text(good[: len(good) // 2])

    assert_refused(path, "file, field file: Not valid JSON (truncated or damaged?)")
    assert not Attempt.objects.exists()


def test_wrong_types_are_all_listed_with_index_and_field(tmp_path):
    task = TaskFactory()
    path = write(
        tmp_path,
        [
            entry(task),
            entry(task, attemptId="not-a-uuid", attemptNumber="2", requestedAt=5, status="exploded"),
            entry(
                task,
                attemptId=None,
                attemptNumber=True,
                requestedAt="2026-11-02T09:14:00",
                nativeRunId=17,
                supersededAt="yesterday",
            ),
            "not an object",
        ],
    )

    result = assert_refused(
        path,
        "entry 1, field attemptId: 'not-a-uuid' is not a UUID.",
        "entry 1, field attemptNumber: Give a whole number of at least 1.",
        "entry 1, field requestedAt: Give an ISO 8601 time string with a zone.",
        "entry 1, field status: Use one of: pending, launching, running, succeeded, failed, cancelled.",
        "entry 2, field attemptNumber: Give a whole number",
        "entry 2, field requestedAt: '2026-11-02T09:14:00' has no time zone.",
        "entry 2, field nativeRunId: Give a non-empty string or null.",
        "entry 2, field supersededAt: 'yesterday' is not an ISO 8601 time.",
        "entry 3, field entry: Each entry must be a JSON object.",
    )
    assert "entry 0" not in result.err, "the good entry has no problem"
    assert not Attempt.objects.exists()


def test_missing_and_unknown_fields_and_wrong_version(tmp_path):
    task = TaskFactory()
    incomplete = entry(task)
    del incomplete["status"], incomplete["supersededAt"]
    incomplete["attemptID"] = A2
    path = write(tmp_path, [incomplete], version=2)

    assert_refused(
        path,
        "file, field version: Only version 1 is understood; got 2.",
        "entry 0, field status: This field is required.",
        "entry 0, field supersededAt: This field is required (it may be null).",
        "entry 0, field attemptID: Unknown field.",
    )


def test_not_an_object_or_no_entries(tmp_path):
    (tmp_path / "list.json").write_text("[1, 2]")
    assert_refused(tmp_path / "list.json", "The file must be a JSON object")
    (tmp_path / "none.json").write_text('{"version": 1}')
    assert_refused(tmp_path / "none.json", "file, field entries: Give a list of entries.")


def test_unknown_task_is_refused_and_the_known_ones_are_not_imported_either(tmp_path):
    task = TaskFactory()
    path = write(tmp_path, [entry(task), entry("no-such-task", attemptId=A2, nativeTaskId="nt-9", nativeRunId="nr-9")])

    assert_refused(path, "entry 1, field planningTaskId: No task named 'no-such-task'.")
    task.refresh_from_db()
    assert task.status == "draft" and task.attempt_count == 0
    assert not RetiredNativeId.objects.exists()


def test_unknown_assignee_is_refused(tmp_path):
    task = TaskFactory()
    assert_refused(
        write(tmp_path, [entry(task, requestedAssigneeId="ghost")]),
        "entry 0, field requestedAssigneeId: No agent named 'ghost'.",
    )


def test_duplicate_entries_are_refused(tmp_path):
    task = TaskFactory()
    path = write(
        tmp_path,
        [
            entry(task),
            entry(task),
            entry(task, attemptId=None, nativeTaskId="nt-3", nativeRunId="nr-3"),
            entry(task, attemptId=A2, attemptNumber=2, nativeRunId="nr-8812-1"),
        ],
    )

    assert_refused(
        path,
        "entry 1, field attemptId: Duplicate of entry 0.",
        "entry 1, field attemptNumber: Entry 0 has the same task and attempt number.",
        "entry 2, field attemptNumber: Entry 0 has the same task and attempt number.",
        "entry 3, field nativeRunId: Entry 0 has the same native run id.",
    )


def test_entry_superseded_by_an_unknown_attempt_is_refused(tmp_path):
    task = TaskFactory()
    path = write(tmp_path, [entry(task, supersededByAttemptId=A2)])

    assert_refused(path, f"entry 0, field supersededByAttemptId: No attempt {A2} in this file or in the database.")


def test_entry_superseded_by_an_attempt_of_another_task_is_refused(tmp_path):
    task, other = TaskFactory(), TaskFactory()
    other_attempt = launch(other)
    path = write(tmp_path, [entry(task, supersededByAttemptId=str(other_attempt.id))])

    assert_refused(
        path, f"entry 0, field supersededByAttemptId: Attempt {other_attempt.id} belongs to task {other.slug}."
    )


def test_entry_superseded_by_an_attempt_in_the_database_is_linked(tmp_path):
    task = TaskFactory()
    assert run("import_retry_history", str(write(tmp_path, [entry(task)]))).code == 0
    later = entry(task, attemptId=A2, attemptNumber=2, nativeTaskId="nt-2", nativeRunId="nr-2")
    earlier_link = entry(
        task, attemptId=None, attemptNumber=3, nativeTaskId="nt-3", nativeRunId="nr-3", supersededByAttemptId=A1
    )

    assert run("import_retry_history", str(write(tmp_path, [later, earlier_link], name="b.json"))).code == 0
    assert Attempt.objects.get(task=task, number=3).superseded_by_id == Attempt.objects.get(number=1, task=task).id


def test_number_collision_with_an_attempt_made_here_is_refused(tmp_path):
    task = TaskFactory()
    made_here = fail_current(task)

    assert_refused(
        write(tmp_path, [entry(task)]),
        f"entry 0, field attemptNumber: Task {task.slug} already has an attempt #1 ({made_here.id}) that is not this entry.",
    )


def test_history_after_attempts_made_here_is_refused(tmp_path):
    task = TaskFactory()
    fail_current(task)

    assert_refused(
        write(tmp_path, [entry(task, attemptNumber=2)]),
        "entry 0, field attemptNumber: Task " + task.slug + " has attempts made here from #1 on",
    )


def test_same_attempt_id_with_different_content_is_refused(tmp_path):
    task = TaskFactory()
    assert run("import_retry_history", str(write(tmp_path, [entry(task)]))).code == 0

    assert_refused(
        write(tmp_path, [entry(task, status="succeeded")]),
        f"entry 0, field attemptId: Attempt {A1} already exists (#1 of task {task.slug}) and is not this entry.",
    )


def test_gaps_in_numbers_are_refused(tmp_path):
    task = TaskFactory()
    assert_refused(
        write(tmp_path, [entry(task, attemptNumber=2)]),
        f"entry 0, field attemptNumber: Task {task.slug} would have attempts [2]: numbers must run 1..n",
    )


def test_a_live_native_id_cannot_be_retired(tmp_path):
    live_task, task = TaskFactory(), TaskFactory()
    attempt = launch(live_task)
    report(live_task, status="running", native_run_id="nr-8812-1", native_task_id="nt-8812", attempt=attempt)

    assert_refused(
        write(tmp_path, [entry(task)]),
        f"entry 0, field nativeRunId: 'nr-8812-1' belongs to the current attempt #1 of task {live_task.slug}",
        "entry 0, field nativeTaskId: 'nt-8812' belongs to the current attempt #1",
    )


def test_an_inconsistent_task_must_be_repaired_first(tmp_path):
    task = TaskFactory()
    from planning.services import task_mark_inconsistent

    task_mark_inconsistent(task_id=task.id, problems=["test"], actor="tests")
    assert_refused(
        write(tmp_path, [entry(task)]),
        f"entry 0, field planningTaskId: Task {task.slug} disagrees with its ledger; repair it first.",
    )


def test_missing_file_is_a_clear_error(tmp_path):
    result = run("import_retry_history", str(tmp_path / "absent.json"))
    assert result.code == 2 and "Cannot read" in result.err


def test_dry_run_writes_nothing_and_says_what_would_happen(tmp_path):
    task = TaskFactory()
    before = db_state()

    result = run("import_retry_history", str(write(tmp_path, [entry(task)])), "--dry-run")

    assert result.code == 0
    assert f"entry 0: would import {task.slug} attempt #1 (failed)" in result.out
    assert f"task {task.slug}: would move from draft to failed" in result.out
    assert db_state() == before


def test_service_reports_problems_in_the_one_error_shape():
    from retries.history import HistoryImportError

    with pytest.raises(HistoryImportError) as exc:
        retry_history_import(data=b'{"version": 1, "entries": [{}]}', actor="tests")
    body = exc.value.as_dict()
    assert body["code"] == "invalid_history"
    assert body["errors"]["entries[0].planningTaskId"] == ["This field is required."]


# --- The shipped example ----------------------------------------------------------------


def test_the_example_file_imports_onto_the_seed_000_tasks_as_drafts():
    # The demo's agents: the example keeps each attempt's frozen assignee.
    aemeath, shorekeeper = AgentFactory(name="aemeath"), AgentFactory(name="shorekeeper")
    for slug in SEED_000:
        TaskFactory(slug=slug)

    result = run("import_retry_history", str(DEMO_FILE))

    assert result.code == 0, result.err
    assert "4 of 4 entries imported" in result.out
    for task in PlanningTask.objects.filter(slug__in=SEED_000):
        assert task.status == "failed" and task.attempt_count == 1
        assert not task.attempts.filter(superseded_at__isnull=True).exists()
        frozen = task.attempts.get().requested_assignee
        assert frozen == (shorekeeper if "sentinel" in task.slug else aemeath)
    assert RetiredNativeId.objects.count() == 8
    assert run("import_retry_history", str(DEMO_FILE)).out.count("was imported already") == 4
    assert run("verify_integrity").code == 0
