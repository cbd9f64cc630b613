"""The admin's Rerun and Repair actions: an intermediate page asks for the
reason (and an optional assignee), then the same services as the API run,
with one message per task. They write exactly what the API writes. A rerun
takes the whole selection or nothing (``task_rerun_many``); a repair is
one service call per task."""

import json
import re
import uuid

import pytest

from planning.models import Event, PlanningTask
from retries.models import Attempt
from retries.services import MAX_BULK_RERUN
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


KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


def confirm(client, action, tasks, **form):
    """Submit the confirmation page as a browser would: with the hidden
    fields it was rendered with."""
    page = act(client, action, tasks).content.decode()
    key = KEY.search(page)
    hidden = {"idempotency_key": key.group(1)} if key else {}
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [t.pk for t in tasks], "apply": "yes", **hidden, **form},
        follow=True,
    )


def apply(client, action, tasks, **form):
    """Run the action and return the messages the changelist then shows."""
    response = confirm(client, action, tasks, **form)
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
        (
            a.number,
            a.kind,
            a.status,
            a.requested_by,
            a.reason,
            a.requested_assignee_id,
            a.resume_phase,
            a.superseded_at is None,
            a.native_run_id and a.native_run_id.replace(task.slug, "<task>"),
        )
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
    assert (
        f"start rerun attempt #2 for {task.project.owner.name} (previous attempt #1); supersede attempt #1; "
        "start from the first phase"
    ) in content
    assert 'name="reason"' in content and 'name="assignee"' in content
    assert db_state() == before


def test_repair_page_shows_what_will_happen_per_task(clients):
    task = TaskFactory()
    fail_current(task, native_run_id="nr-shown")

    content = act(clients["operator"], "repair_tasks", [task]).content.decode()

    owner = task.project.owner.name
    assert (
        f"start repair attempt #2 for {owner} (previous attempt #1); supersede attempt #1; "
        "start from the first phase; retire native ids nr-shown, nt-nr-shown"
    ) in content


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
        f"/api/v1/tasks/{via_api.slug}/rerun/",
        {"reason": "flaky executor", "assignee": "chosen"},
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


def test_a_rerun_takes_every_selected_task_in_one_go(clients):
    tasks = twins(3)
    for task in tasks:
        fail_current(task, native_run_id=f"nr-{task.slug}")

    messages = apply(clients["operator"], "rerun_tasks", tasks, reason="the executor was down")

    assert sorted(messages) == sorted(
        f"{t.slug}: rerun started attempt #2 ({current(t).id}) for {t.assignee.name}." for t in tasks
    )
    assert all(current(t).kind == "rerun" and current(t).reason == "the executor was down" for t in tasks)


def test_a_rerun_refused_for_one_task_reruns_none_and_says_why_beside_each(clients):
    failed, succeeded, draft = twins(3)
    fail_current(failed)
    attempt = launch(succeeded)
    report(succeeded, status="succeeded", native_run_id="nr-ok", attempt=attempt)
    before = db_state()

    page = confirm(clients["operator"], "rerun_tasks", [failed, succeeded, draft], reason="again")

    assert page.status_code == 200 and not page.redirect_chain
    content = page.content.decode()
    assert "2 of 3 tasks cannot be rerun now; none was." in content
    rows = dict(re.findall(r"<tr[^>]*><td><a [^>]+>([^<]+)</a></td>(.*?)</tr>", content, re.DOTALL))
    assert "use_repair" in rows[succeeded.slug] and "not_launched" in rows[draft.slug]
    assert "errorlist" not in rows[failed.slug]
    assert 'name="apply"' in content  # the page stays, to change the selection or an option
    assert db_state() == before


def test_submitting_the_same_rerun_page_twice_reruns_once(clients):
    tasks = twins(2)
    for task in tasks:
        fail_current(task)
    page = act(clients["operator"], "rerun_tasks", tasks).content.decode()
    data = {
        "action": "rerun_tasks",
        "_selected_action": [t.pk for t in tasks],
        "apply": "yes",
        "reason": "once",
        "idempotency_key": KEY.search(page).group(1),
    }

    first = clients["operator"].post(CHANGELIST, data, follow=True)
    state = db_state()
    second = clients["operator"].post(CHANGELIST, data, follow=True)

    assert db_state() == state
    assert all("rerun started attempt #2" in str(m) for m in first.context["messages"])
    again = [str(m) for m in second.context["messages"]]
    assert len(again) == 2 and all("already rerun by this page: attempt #2" in m for m in again)


def test_a_rerun_page_without_its_key_still_reruns(clients):
    task = TaskFactory()
    fail_current(task)
    data = {"action": "rerun_tasks", "_selected_action": [task.pk], "apply": "yes", "reason": "crafted"}

    messages = [str(m) for m in clients["operator"].post(CHANGELIST, data, follow=True).context["messages"]]

    assert messages == [f"{task.slug}: rerun started attempt #2 ({current(task).id}) for {task.assignee.name}."]


def test_a_rerun_key_reused_for_other_tasks_is_refused_and_changes_nothing(clients):
    first, other = twins(2)
    for task in (first, other):
        fail_current(task)
    key = str(uuid.uuid4())
    base = {"action": "rerun_tasks", "apply": "yes", "reason": "once", "idempotency_key": key}
    clients["operator"].post(CHANGELIST, {**base, "_selected_action": [first.pk]})
    before = db_state()

    page = clients["operator"].post(CHANGELIST, {**base, "_selected_action": [first.pk, other.pk]})

    assert page.status_code == 200 and "Idempotency-Key" in page.content.decode()
    assert db_state() == before


def test_each_task_gets_its_own_repair_report(clients):
    succeeded, draft = twins(2)
    attempt = launch(succeeded)
    report(succeeded, status="succeeded", native_run_id="nr-ok", attempt=attempt)

    messages = apply(clients["operator"], "repair_tasks", [succeeded, draft], reason="fix")

    by_task = {m.split(":")[0]: m for m in messages}
    assert by_task[succeeded.slug].startswith(f"{succeeded.slug}: repair started attempt #2")
    assert by_task[draft.slug].startswith(f"{draft.slug}: not repaired:")


def test_rerun_options_reach_the_service(clients):
    task = TaskFactory(max_attempts=1)
    fail_current(task)

    refused = confirm(clients["operator"], "rerun_tasks", [task], reason="again").content.decode()
    assert "budget_exhausted" in refused and "none was" in refused
    allowed = apply(clients["operator"], "rerun_tasks", [task], reason="again", override_budget="on")
    assert "rerun started attempt #2" in allowed[0]
    active = apply(
        clients["operator"], "rerun_tasks", [task], reason="again", override_budget="on", supersede_active="on"
    )
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


def test_a_selection_over_the_bulk_limit_is_refused_as_a_whole(clients):
    project, procedure = ProjectFactory(), ProcedureFactory()
    tasks = TaskFactory.create_batch(MAX_BULK_RERUN + 1, project=project, procedure=procedure)
    before = db_state()

    page = confirm(clients["operator"], "rerun_tasks", tasks, reason="everything")

    assert page.status_code == 200 and not page.redirect_chain
    assert f"tasks: Give at most {MAX_BULK_RERUN} tasks; got {MAX_BULK_RERUN + 1}." in page.content.decode()
    assert db_state() == before
