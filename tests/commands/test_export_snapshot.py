"""``export_snapshot``: a validated, versioned projection written atomically;
a failure at any point leaves the previous file exactly as it was (rule 8)."""

import json
import os
import re
from pathlib import Path

import pytest

from retries import snapshot
from retries.snapshot import SNAPSHOT_SCHEMA, snapshot_problems
from tests.factories import TaskFactory
from tests.steps import fail_current, launch

from .helpers import run

pytestmark = pytest.mark.django_db

SCHEMA_DOC = Path(__file__).resolve().parents[2] / "docs" / "snapshot-schema.md"
OLD = b'{"an": "older snapshot"}\n'


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_export_writes_tasks_their_current_attempts_and_statuses(tmp_path):
    failed = TaskFactory(slug="a-failed")
    TaskFactory(slug="b-draft")
    attempt = fail_current(failed, native_run_id="nr-1")
    target = tmp_path / "snapshot.json"

    result = run("export_snapshot", str(target))

    assert result.code == 0, result.err
    data = target.read_bytes()
    assert snapshot_problems(data) == []
    document = json.loads(data)
    assert (document["schema"], document["version"]) == ("missioncontrol.snapshot", 1)
    assert document["counts"]["failed"] == 1 and document["counts"]["draft"] == 1
    by_slug = {t["slug"]: t for t in document["tasks"]}
    assert by_slug["b-draft"]["status"] == "draft" and by_slug["b-draft"]["current_attempt"] is None
    current = by_slug["a-failed"]["current_attempt"]
    assert by_slug["a-failed"]["status"] == "failed"
    assert (current["id"], current["number"], current["status"]) == (str(attempt.id), 1, "failed")
    assert current["native_run_id"] == "nr-1" and current["failure"]["kind"] == "executor_failed"
    assert document["ledger_position"] > 0
    assert leftovers(tmp_path) == []
    assert "2 task(s)" in result.out


def test_export_replaces_the_previous_file_and_keeps_its_mode(tmp_path):
    TaskFactory()
    target = tmp_path / "snapshot.json"
    target.write_bytes(OLD)
    target.chmod(0o640)

    assert run("export_snapshot", str(target)).code == 0

    assert target.read_bytes() != OLD and snapshot_problems(target.read_bytes()) == []
    assert oct(target.stat().st_mode & 0o777) == oct(0o640)


def test_failure_between_write_and_rename_leaves_the_old_file_intact(tmp_path, monkeypatch):
    TaskFactory()
    target = tmp_path / "snapshot.json"
    target.write_bytes(OLD)
    written = []

    def failing_replace(src, dst):
        written.append(Path(src).read_bytes())
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(snapshot.os, "replace", failing_replace)

    result = run("export_snapshot", str(target))

    assert result.code == 1 and "previous file is untouched" in result.err
    assert written and snapshot_problems(written[0]) == [], "the failure came after a complete, valid write"
    assert target.read_bytes() == OLD
    assert leftovers(tmp_path) == []


def test_a_write_that_reads_back_damaged_is_never_renamed(tmp_path, monkeypatch):
    TaskFactory()
    target = tmp_path / "snapshot.json"
    target.write_bytes(OLD)
    real_fsync = os.fsync

    def truncating_fsync(fd):
        # The disk kept only part of what was written.
        if os.path.isfile(f"/proc/self/fd/{fd}"):
            os.ftruncate(fd, 40)
        real_fsync(fd)

    monkeypatch.setattr(snapshot.os, "fsync", truncating_fsync)

    result = run("export_snapshot", str(target))

    assert result.code == 1
    assert "the file read back differs from what was written" in result.err
    assert "not valid JSON" in result.err
    assert target.read_bytes() == OLD
    assert leftovers(tmp_path) == []


def test_a_snapshot_that_fails_its_schema_is_not_written(tmp_path, monkeypatch):
    TaskFactory()
    target = tmp_path / "snapshot.json"
    target.write_bytes(OLD)
    real_build = snapshot.snapshot_build

    def bad_build():
        document = real_build()
        document["tasks"][0]["status"] = "exploded"
        return document

    monkeypatch.setattr(snapshot, "snapshot_build", bad_build)

    result = run("export_snapshot", str(target))

    assert result.code == 1 and "tasks/0/status: 'exploded' is not one of" in result.err
    assert target.read_bytes() == OLD and leftovers(tmp_path) == []


def test_a_missing_folder_is_a_clear_error(tmp_path):
    result = run("export_snapshot", str(tmp_path / "absent" / "snapshot.json"))
    assert result.code == 1 and "does not exist" in result.err


def test_validation_catches_damaged_snapshots():
    TaskFactory()
    document = snapshot.snapshot_build()
    assert snapshot_problems(json.dumps(document).encode()) == []

    wrong_count = json.loads(json.dumps(document))
    wrong_count["counts"]["draft"] += 1
    assert snapshot_problems(json.dumps(wrong_count).encode()) == ["counts: do not match the tasks listed"]
    wrong_version = dict(document, version=2)
    assert any(p.startswith("version:") for p in snapshot_problems(json.dumps(wrong_version).encode()))
    naive_time = json.loads(json.dumps(document))
    naive_time["generated_at"] = "2026-11-02T09:14:00"
    assert any(p.startswith("generated_at:") for p in snapshot_problems(json.dumps(naive_time).encode()))
    assert snapshot_problems(b'{"truncated": ')[0].startswith("not valid JSON")


def test_the_documented_schema_is_the_one_enforced():
    text = SCHEMA_DOC.read_text()
    block = re.search(r"```json\n(.*?)\n```", text, re.S)
    assert block, "docs/snapshot-schema.md must contain the schema as a json block"
    assert json.loads(block.group(1)) == json.loads(json.dumps(SNAPSHOT_SCHEMA))


@pytest.mark.django_db(transaction=True)
def test_export_outside_a_transaction_reads_one_consistent_snapshot(tmp_path):
    task = TaskFactory()
    launch(task)
    target = tmp_path / "snapshot.json"

    assert run("export_snapshot", str(target)).code == 0

    document = json.loads(target.read_text())
    assert document["tasks"][0]["current_attempt"]["status"] == "pending"
    assert document["counts"]["launch_requested"] == 1
