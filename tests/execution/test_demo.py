"""manage.py demo: the seed 000 situation, idempotent, built through the
services; the old runtime's reports are refused before and after a rerun."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

from planning.models import Agent, Event, Plan, PlanningTask, Procedure, Project
from retries import services
from retries.executors.demo import LEGACY_EXECUTOR, TASKS, demo_stale_report
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
        "policy-protocol-index-creation-proc-0", "policy-protocol-index-creation-proc-1",
        "policy-protocol-index-creation-proc-2", "high-signal-governance-stability-sentinel-proc-1",
    }
    for slug in ("aemeath", "shorekeeper"):
        procedure = Procedure.objects.get(slug=slug)
        assert procedure.phases == ["preflight", "execute", "finalize"] and procedure.executor == "local"
    for spec in TASKS:
        task = PlanningTask.objects.get(slug=spec.slug)
        [attempt] = Attempt.objects.filter(task=task)
        # Held for the operator's rerun: the failed attempt keeps its diagnostics.
        assert task.status == "cancelled" and attempt.status == "failed"
        assert attempt.failure_kind == "executor_failed" and attempt.failure_message == spec.failure
        assert attempt.requested_assignee.name == spec.assignee  # frozen, not the project owner
        run = NativeRun.objects.get(executor=LEGACY_EXECUTOR, native_run_id=spec.native_run_id)
        assert run.binding == "bound" and run.attempt_id == attempt.id and run.status == "failed"
        assert run.claimed_attempt_id == (attempt.id if spec.stamped else None)
    assert Project.objects.get(slug="policy-protocol").owner.name == "thorny-hornet"
    assert "operator/operator" in output and "admin/admin" in output
    # Reconciliation leaves held tasks alone until an operator reruns them.
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
    relinks = NativeRun.objects.filter(native_run_id__endswith="-relink")
    assert relinks.count() == len(TASKS)
    assert set(relinks.values_list("binding", flat=True)) == {"rejected"}

    for slug in SLUGS:
        services.task_rerun(slug=slug, actor="operator", reason="fresh attempt after the runtime fix")
    demo_stale_report()
    demo_stale_report()

    assert NativeRun.objects.filter(native_run_id__endswith="-relink").count() == len(TASKS)
    for spec in TASKS:
        task = PlanningTask.objects.get(slug=spec.slug)
        fresh = Attempt.objects.get(task=task, superseded_at__isnull=True)
        assert fresh.number == 2 and fresh.native_run_id is None and fresh.status == "pending"
        assert fresh.requested_assignee.name == spec.assignee
        assert task.status == "launch_requested"
        assert not NativeRun.objects.filter(attempt=fresh).exists()
    assert Event.objects.filter(type="native_run.rejected", data__native_run_id__endswith="-relink").count() == len(TASKS)
