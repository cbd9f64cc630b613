"""The plans page (counts, on_error, failed tasks' diagnostics) and the
native-runs triage page (unbound and rejected runs with their reasons)."""

import re

import pytest
from django.urls import reverse

from planning.models import Plan
from retries import services
from retries.models import NativeRun
from tests.factories import PlanFactory, ProjectFactory, TaskFactory
from tests.steps import ago, fail_current, report
from tests.web.conftest import hx
from tests.web.scenes import phase_failed_task, rerun, snapshot, succeeded_task

pytestmark = pytest.mark.django_db


def plan_card(html: str, plan: Plan) -> str:
    match = re.search(rf'<article class="card plan" id="plan-{plan.id}">.*?</article>', html, re.S)
    assert match
    return match.group(0)


def test_plans_show_counts_on_error_and_failed_diagnostics(viewer_client):
    project = ProjectFactory()
    plan = PlanFactory(project=project, name="nightly", on_error=Plan.OnError.PAUSE)
    other = PlanFactory(project=project, name="calm")
    succeeded_task(project=project, plan=plan)
    failing = phase_failed_task(project=project, plan=plan, slug="breaks")  # pauses the plan
    TaskFactory(project=project, plan=plan)
    TaskFactory(project=project, plan=other)

    html = viewer_client.get(reverse("plans")).content.decode()

    card = plan_card(html, plan)
    assert "on error: pause" in card and "paused since" in card
    for status, n in (("failed", 1), ("succeeded", 1), ("draft", 1), ("running", 0)):
        assert re.search(rf'status={status}"><span class="n">{n}</span>', card), status
    assert f'href="/tasks/{failing.slug}/"' in card
    assert "execute" in card and "disk full on worker-3" in card and "1 of 3" in card
    calm = plan_card(html, other)
    assert "No failed task." in calm and "on error: continue" in calm


def test_operator_resumes_a_paused_plan_viewer_cannot(operator_client, viewer_client):
    project = ProjectFactory()
    plan = PlanFactory(project=project, on_error=Plan.OnError.PAUSE)
    fail_current(TaskFactory(project=project, plan=plan))
    plan.refresh_from_db()
    assert plan.paused_at is not None
    url = reverse("plan_resume", args=[plan.id])
    assert "Resume plan" not in viewer_client.get(reverse("plans")).content.decode()

    assert viewer_client.post(url).status_code == 403
    plan.refresh_from_db()
    assert plan.paused_at is not None

    response = operator_client.post(url)
    assert response.status_code == 302
    plan.refresh_from_db()
    assert plan.paused_at is None
    assert "resumed" in operator_client.get(response["Location"]).content.decode()


def test_plans_fragment_and_full_page(viewer_client):
    PlanFactory(name="p1")
    full = viewer_client.get(reverse("plans")).content.decode()
    fragment = viewer_client.get(reverse("plans"), **hx("plans-live")).content.decode()
    assert full.startswith("<!doctype html>") and "p1" in full
    assert fragment.lstrip().startswith('<div id="plans-live"') and "p1" in fragment


def make_runs():
    """One bound, one rejected (superseded), one rejected (unknown task),
    one waiting unbound."""
    task = TaskFactory(slug="t-runs")
    old = fail_current(task, native_run_id="nr-bound")
    rerun(task)
    report(task, status="running", native_run_id="nr-superseded", attempt=old)
    report(TaskFactory(slug="t-draft"), status="queued", native_run_id="nr-waiting", created_at=ago(1))
    services.native_run_report(
        report=services.RunReport(
            executor="http", native_task_id="nt-x", native_run_id="nr-ghost", task="no-such-task", status="running"
        ),
        actor="executor",
    )
    return task, old


def run_rows(html: str) -> dict[str, str]:
    rows = re.findall(r'<tr class="binding-(\w+)">(.*?)</tr>', html, re.S)
    return {re.search(r"(\w+):(nr-[\w-]+)", row).group(2): binding for binding, row in rows}


def test_native_runs_lists_unbound_and_rejected_with_reasons(viewer_client):
    _task, old = make_runs()

    html = viewer_client.get(reverse("native_runs")).content.decode()

    assert run_rows(html) == {"nr-superseded": "rejected", "nr-waiting": "unbound", "nr-ghost": "rejected"}
    # Each reason as the binding decision explains it, with the facts compared.
    assert (f"Refused: names attempt #{old.number}, superseded by #{old.number + 1} at ") in html
    assert "superseded</code>" in html
    assert "Refused: it names no known task." in html and "no-such-task" in html
    assert f'href="/tasks/t-runs/#attempt-{old.number}">#{old.number}</a>' in html
    assert NativeRun.objects.filter(binding="bound").count() == 1


def test_native_runs_filters(viewer_client):
    make_runs()
    url = reverse("native_runs")
    assert set(run_rows(viewer_client.get(url, {"binding": "unbound"}).content.decode())) == {"nr-waiting"}
    assert set(run_rows(viewer_client.get(url, {"binding": "rejected"}).content.decode())) == {
        "nr-superseded",
        "nr-ghost",
    }
    assert set(run_rows(viewer_client.get(url, {"executor": "http"}).content.decode())) == {"nr-ghost"}
    bad = viewer_client.get(url, {"binding": "bound"}).content.decode()
    assert "Ignored:" in bad and len(run_rows(bad)) == 3
    fragment = viewer_client.get(url, {"binding": "unbound"}, **hx("runs-live")).content.decode()
    assert fragment.lstrip().startswith('<div id="runs-live"') and set(run_rows(fragment)) == {"nr-waiting"}


def test_pages_change_nothing(viewer_client):
    task, _ = make_runs()
    before = snapshot(task)
    for url in (reverse("plans"), reverse("native_runs"), reverse("board")):
        viewer_client.get(url)
    assert snapshot(task) == before


def _plan_with_failures() -> tuple[Plan, list]:
    project = ProjectFactory()
    plan = PlanFactory(project=project, name="wave", on_error=Plan.OnError.CONTINUE)
    failed = [phase_failed_task(project=project, plan=plan, slug=f"wave-{i}") for i in range(2)]
    blocked = TaskFactory(project=project, plan=plan, slug="wave-blocked", max_attempts=1)
    fail_current(blocked)
    services.task_retry_or_block(task_id=blocked.id)  # past its budget: blocked
    blocked.refresh_from_db()
    assert blocked.status == "blocked"
    return plan, [*failed, blocked]


def _rerun_form(html: str, plan: Plan) -> dict:
    card = plan_card(html, plan)
    return {
        "tasks": re.findall(r'name="tasks" value="([^"]+)"', card),
        "idempotency_key": re.search(r'name="idempotency_key" value="([^"]+)"', card).group(1),
    }


def test_operator_reruns_a_plans_failed_and_blocked_tasks_together(operator_client):
    plan, tasks = _plan_with_failures()
    html = operator_client.get(reverse("plans")).content.decode()
    assert "Rerun these 3 tasks" in plan_card(html, plan) and "Go past the attempt budget" in html
    form = _rerun_form(html, plan)
    assert sorted(form["tasks"]) == sorted(t.slug for t in tasks)
    url = reverse("plan_rerun", args=[plan.id])

    # Without the override the blocked task refuses the whole set.
    refused = operator_client.post(url, {**form, "reason": "disk replaced"}, follow=True).content.decode()
    assert "cannot be rerun now; none was" in refused and "wave-blocked" in refused
    assert [snapshot(t)[1] for t in tasks] == [1, 1, 1]

    done = operator_client.post(url, {**form, "reason": "disk replaced", "override_budget": "on"}, follow=True)
    assert "3 task(s) rerun" in done.content.decode()
    assert [snapshot(t)[:2] for t in tasks] == [("launch_requested", 2)] * 3
    # The same rendered form again (a double submit) reruns nothing more.
    again = operator_client.post(url, {**form, "reason": "disk replaced", "override_budget": "on"}, follow=True)
    assert "already rerun by this form" in again.content.decode()
    assert [snapshot(t)[1] for t in tasks] == [2, 2, 2]


def test_plan_rerun_refuses_bad_input_and_tasks_of_another_plan(operator_client):
    plan, tasks = _plan_with_failures()
    other = phase_failed_task(project=plan.project, slug="elsewhere")
    url = reverse("plan_rerun", args=[plan.id])
    before = [snapshot(t) for t in (*tasks, other)]
    for body, message in (
        ({"tasks": [tasks[0].slug], "reason": " ", "idempotency_key": "k1"}, "Nothing was rerun"),
        ({"reason": "r", "idempotency_key": "k2"}, "No task to rerun"),
        ({"tasks": [tasks[0].slug, tasks[0].slug], "reason": "r", "idempotency_key": "k3"}, "Each task once"),
        ({"tasks": [tasks[0].slug, other.slug], "reason": "r", "idempotency_key": "k4"}, "Not in this plan: elsewhere"),
    ):
        html = operator_client.post(url, body, follow=True).content.decode()
        assert message in html, message
    assert [snapshot(t) for t in (*tasks, other)] == before


@pytest.mark.parametrize("who", ["viewer_client", "executor_client", "outsider_client"])
def test_only_operators_rerun_a_plan(request, who):
    plan, tasks = _plan_with_failures()
    client = request.getfixturevalue(who)
    assert "Rerun these" not in client.get(reverse("plans")).content.decode()
    before = [snapshot(t) for t in tasks]
    body = {"tasks": [t.slug for t in tasks], "reason": "r", "override_budget": "on", "idempotency_key": "k"}
    assert client.post(reverse("plan_rerun", args=[plan.id]), body).status_code == 403
    assert [snapshot(t) for t in tasks] == before
