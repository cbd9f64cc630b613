"""manage.py demo: the seed 000 situation, idempotent, built through the
services; the old runtime's reports are refused before and after a rerun."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

from planning.models import Agent, Event, Plan, PlanningTask, Procedure, Project
from retries import services
from retries.demo.load import TASKS, history_entries
from retries.demo.stale import LEGACY_EXECUTOR, demo_stale_report
from retries.models import Attempt, NativeRun

pytestmark = pytest.mark.django_db

SLUGS = [spec.slug for spec in TASKS]


def run_demo() -> str:
    out = io.StringIO()
    call_command("demo", stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Agent, Project, Procedure, Plan, PlanningTask, Attempt, NativeRun, Event, get_user_model())
    }


def test_demo_loads_the_seed_000_situation():
    output = run_demo()

    assert sorted(PlanningTask.objects.values_list("slug", flat=True)) == sorted(SLUGS)
    assert set(SLUGS) == {
        "policy-protocol-index-creation-proc-0",
        "policy-protocol-index-creation-proc-1",
        "policy-protocol-index-creation-proc-2",
        "high-signal-governance-stability-sentinel-proc-1",
    }
    for slug in ("aemeath", "shorekeeper"):
        procedure = Procedure.objects.get(slug=slug)
        assert procedure.phases == ["preflight", "execute", "finalize"] and procedure.executor == "local"
    entries = {e["planningTaskId"]: e for e in history_entries()}
    for spec in TASKS:
        task = PlanningTask.objects.get(slug=spec.slug)
        [attempt] = Attempt.objects.filter(task=task)
        entry = entries[spec.slug]
        # The preserved history, imported: failed, superseded, never current.
        assert task.status == "failed" and attempt.status == "failed"
        assert attempt.imported and attempt.superseded_at is not None and attempt.number == 1
        assert attempt.native_task_id == entry["nativeTaskId"] and attempt.native_run_id == entry["nativeRunId"]
        assert attempt.requested_assignee.name == spec.assignee  # frozen, not the project owner
        if entry["attemptId"]:
            assert str(attempt.id) == entry["attemptId"]
    assert Project.objects.get(slug="policy-protocol").owner.name == "thorny-hornet"
    assert "operator/operator" in output and "admin/admin" in output
    # Reconciliation leaves the tasks alone until an operator reruns them.
    from retries.reconcile import reconcile_pass

    assert reconcile_pass().retried == 0
    assert Attempt.objects.count() == len(TASKS)


def test_demo_users_can_log_in_with_their_roles():
    run_demo()
    operator = authenticate(username="operator", password="operator")
    viewer = authenticate(username="viewer", password="viewer")
    admin = authenticate(username="admin", password="admin")
    assert list(operator.groups.values_list("name", flat=True)) == ["operator"]
    assert list(viewer.groups.values_list("name", flat=True)) == ["viewer"]
    assert admin.is_superuser and admin.is_staff


def test_demo_twice_duplicates_nothing():
    run_demo()
    before = counts()
    output = run_demo()
    assert counts() == before
    assert "0 created" in output


def test_the_old_runtime_keeps_reporting_and_is_refused_before_and_after_a_rerun():
    run_demo()
    assert demo_stale_report() == len(TASKS)
    stale = NativeRun.objects.filter(executor=LEGACY_EXECUTOR)
    assert stale.count() == len(TASKS)
    assert set(stale.values_list("binding", flat=True)) == {"rejected"}
    # Stamped with the old attempt id: superseded; without one: its ids are retired.
    assert set(stale.values_list("binding_reason", flat=True)) == {"superseded", "retired_native_id"}

    for slug in SLUGS:
        services.task_rerun(slug=slug, actor="operator", reason="fresh attempt after the runtime fix")
    demo_stale_report()
    demo_stale_report()

    assert NativeRun.objects.filter(executor=LEGACY_EXECUTOR).count() == len(TASKS)
    for spec in TASKS:
        task = PlanningTask.objects.get(slug=spec.slug)
        fresh = Attempt.objects.get(task=task, superseded_at__isnull=True)
        assert fresh.number == 2 and fresh.native_run_id is None and fresh.status == "pending"
        assert fresh.requested_assignee.name == spec.assignee
        assert task.status == "launch_requested"
        assert not NativeRun.objects.filter(attempt=fresh).exists()
    assert not NativeRun.objects.filter(executor=LEGACY_EXECUTOR, binding="bound").exists()
    assert Event.objects.filter(type="native_run.rejected", data__executor=LEGACY_EXECUTOR).count() == len(TASKS)
