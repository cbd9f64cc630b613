"""The admin's Rerun and Repair actions: an intermediate page asks for the
reason (and an optional assignee), then the same services as the API run,
with one message per task. They write exactly what the API writes."""

import json
import re

import pytest

from planning.models import Event, PlanningTask
from retries.models import Attempt
from tests.commands.helpers import db_state
from tests.commands.seed000 import SEED_000, assert_all_marked_inconsistent, assert_repaired, break_seed_000_tasks
from tests.factories import AgentFactory, ProcedureFactory, ProjectFactory, TaskFactory
from tests.steps import current, fail_current, launch, report

from .helpers import admin_url

pytestmark = pytest.mark.django_db

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
CHANGELIST = admin_url(PlanningTask, "changelist")


def act(client, action, tasks, **form):
    data = {"action": action, "_selected_action": [t.pk for t in tasks], **form}
    return client.post(CHANGELIST, data)


def apply(client, action, tasks, **form):
    """Run the action and return the messages the changelist then shows."""
    data = {"action": action, "_selected_action": [t.pk for t in tasks], "apply": "yes", **form}
    response = client.post(CHANGELIST, data, follow=True)
    assert response.redirect_chain and response.redirect_chain[0][1] == 302, response.content.decode()[:2000]
    return [str(m) for m in response.context["messages"]]


def twins(n=2, **task_kwargs):
    project, procedure = ProjectFactory(), ProcedureFactory()
    return [TaskFactory(project=project, procedure=procedure, **task_kwargs) for _ in range(n)]


def ledger_of(task):
    """The task's ledger with ids, times and the task's own names blanked."""
    rows = []
    for event in Event.objects.filter(task=task).order_by("id"):
        text = json.dumps(event.data, sort_keys=True).replace(task.slug, "<task>")
        text = re.sub(r"\d{4}-\d{2}-\d{2}T[0-9:.]+(\+00:00|Z)", "<time>", UUID.sub("<uuid>", text))
        rows.append((event.type, event.actor, json.loads(text)))
    return rows


def attempts_of(task):
    return [
        (a.number, a.kind, a.status, a.requested_by, a.reason, a.requested_assignee_id, a.resume_phase,
         a.superseded_at is None, a.native_run_id and a.native_run_id.replace(task.slug, "<task>"))
        for a in Attempt.objects.filter(task=task).order_by("number")
    ]


def test_rerun_shows_a_confirmation_page_and_changes_nothing_yet(clients):
    task = TaskFactory()
    fail_current(task)
    before = db_state()

    page = act(clients["operator"], "rerun_tasks", [task])

    assert page.status_code == 200
    content = page.content.decode()
    assert "Rerun 1 task(s)" in content and task.slug in content
    assert "status failed; attempts 1 of 3" in content
    assert 'name="reason"' in content and 'name="assignee"' in content
    assert db_state() == before


def test_repair_page_shows_what_will_happen_per_task(clients):
    task = TaskFactory()
    fail_current(task, native_run_id="nr-shown")

    content = act(clients["operator"], "repair_tasks", [task]).content.decode()

    assert "supersede current attempt #1; retire native ids nr-shown, nt-nr-shown; start repair attempt #2" in content


def test_a_missing_reason_asks_again_and_changes_nothing(clients):
    task = TaskFactory()
    fail_current(task)
    before = db_state()

    page = act(clients["operator"], "repair_tasks", [task], apply="yes", reason="   ")

    assert page.status_code == 200 and "This field is required." in page.content.decode()
    assert db_state() == before


def test_admin_rerun_writes_the_same_attempts_and_events_as_the_api(clients):
    via_admin, via_api = twins()
    chosen = AgentFactory(name="chosen")
    for task in (via_admin, via_api):
        fail_current(task, native_run_id=f"nr-{task.slug}")

    messages = apply(clients["operator"], "rerun_tasks", [via_admin], reason="flaky executor", assignee="chosen")
    response = clients["operator"].post(
        f"/api/v1/tasks/{via_api.slug}/rerun/", {"reason": "flaky executor", "assignee": "chosen"},
        content_type="application/json",
    )

    assert response.status_code == 201, response.content
    assert attempts_of(via_admin) == attempts_of(via_api)
    assert ledger_of(via_admin) == ledger_of(via_api)
    assert current(via_admin).requested_assignee == chosen
    assert messages == [f"{via_admin.slug}: rerun started attempt #2 ({current(via_admin).id}) for chosen."]


def test_admin_repair_writes_the_same_attempts_and_events_as_the_api(clients):
    via_admin, via_api = twins()
    for task in (via_admin, via_api):
        attempt = launch(task)
        report(task, status="succeeded", native_run_id=f"nr-{task.slug}", attempt=attempt)

    apply(clients["operator"], "repair_tasks", [via_admin], reason="output was wrong")
    response = clients["operator"].post(
        f"/api/v1/tasks/{via_api.slug}/repair/", {"reason": "output was wrong"}, content_type="application/json"
    )

    assert response.status_code == 201, response.content
    assert attempts_of(via_admin) == attempts_of(via_api)
    assert ledger_of(via_admin) == ledger_of(via_api)
    assert current(via_admin).kind == "repair"


def test_each_task_gets_its_own_report(clients):
    failed, succeeded, draft = twins(3)
    fail_current(failed)
    attempt = launch(succeeded)
    report(succeeded, status="succeeded", native_run_id="nr-ok", attempt=attempt)

    messages = apply(clients["operator"], "rerun_tasks", [failed, succeeded, draft], reason="again")

    by_task = {m.split(":")[0]: m for m in messages}
    assert by_task[failed.slug].startswith(f"{failed.slug}: rerun started attempt #2")
    assert by_task[succeeded.slug].startswith(f"{succeeded.slug}: not rerun: use_repair:")
    assert by_task[draft.slug].startswith(f"{draft.slug}: not rerun: not_launched:")
    assert current(failed).kind == "rerun" and current(succeeded).kind == "initial"


def test_rerun_options_reach_the_service(clients):
    task = TaskFactory(max_attempts=1)
    fail_current(task)

    refused = apply(clients["operator"], "rerun_tasks", [task], reason="again")
    assert "budget_exhausted" in refused[0]
    allowed = apply(clients["operator"], "rerun_tasks", [task], reason="again", override_budget="on")
    assert "rerun started attempt #2" in allowed[0]
    active = apply(clients["operator"], "rerun_tasks", [task], reason="again", override_budget="on",
                   supersede_active="on")
    assert "rerun started attempt #3" in active[0]


@pytest.mark.parametrize("role", ["viewer", "executor"])
def test_roles_below_operator_have_no_rerun_or_repair(clients, role):
    task = TaskFactory()
    fail_current(task)
    before = db_state()

    page = clients[role].get(CHANGELIST).content.decode()
    assert "rerun_tasks" not in page and "repair_tasks" not in page
    response = act(clients[role], "repair_tasks", [task], apply="yes", reason="crafted")
    assert "Repair 1 task(s)" not in response.content.decode()
    assert db_state() == before


def test_an_admin_can_run_the_actions(clients):
    task = TaskFactory()
    fail_current(task)
    assert "repair started attempt #2" in apply(clients["admin"], "repair_tasks", [task], reason="fix")[0]


@pytest.mark.damages_rows
def test_repair_of_the_four_seed_000_tasks_through_the_admin(clients, tmp_path):
    seed = break_seed_000_tasks(tmp_path)
    assert_all_marked_inconsistent()
    tasks = list(PlanningTask.objects.filter(slug__in=SEED_000))
    flagged = clients["operator"].get(CHANGELIST, {"inconsistent": "yes"}).content.decode()
    assert all(slug in flagged for slug in SEED_000)

    messages = apply(clients["operator"], "repair_tasks", tasks, reason="seed 000: stale links and relinked runs")

    assert len(messages) == 4 and all("repair started attempt" in m for m in messages)
    assert_repaired(seed)
