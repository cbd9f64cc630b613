"""Rerun, repair, cancel and launch from the task page: success, every
refusal in place, field errors next to fields, and one attempt per form."""

import pytest
from django.urls import reverse

from planning import services as planning_services
from planning.models import PlanningTask
from retries.models import Attempt
from tests.factories import AgentFactory, TaskFactory
from tests.steps import current, fail_current, launch
from tests.web.conftest import hx
from tests.web.scenes import blocked_task, failed_task, running_task, snapshot, succeeded_task

pytestmark = pytest.mark.django_db


def form_of(client, task, name: str):
    """The form as the page rendered it (with its fresh idempotency key)."""
    return client.get(reverse("task_detail", args=[task.slug])).context[f"{name}_form"]


def post(client, task, action: str, data: dict, htmx: bool = True):
    extra = hx("task-actions") if htmx else {}
    return client.post(reverse(f"task_{action}", args=[task.slug]), data, **extra)


def rerun_data(form, **values) -> dict:
    data = {
        "rerun-reason": "lock cleared",
        "rerun-idempotency_key": form.initial["idempotency_key"],
        "rerun-assignee": form.initial.get("assignee", ""),
    }
    data.update({f"rerun-{k}": v for k, v in values.items()})
    return data


# --- Rerun ----------------------------------------------------------------------


def test_rerun_form_defaults_to_the_previous_frozen_assignee_not_the_owner(operator_client):
    owner, frozen = AgentFactory(name="owner-bot"), AgentFactory(name="frozen-bot")
    task = TaskFactory(project__owner=owner, assignee=frozen)
    fail_current(task)
    planning_services.task_update(slug=task.slug, assignee=owner.name, actor="x")

    page = operator_client.get(reverse("task_detail", args=[task.slug]))
    form = page.context["rerun_form"]

    # The default is no explicit choice, labelled with rule 3's answer, which
    # is also the preview's frozen assignee.
    assert form.initial.get("assignee", "") == "" and form.keep.name == "frozen-bot"
    assert form.fields["assignee"].choices[0] == ("", "Keep the rule-3 assignee: frozen-bot (previous attempt #1)")
    assert page.context["rerun_preview"].attempt.assignee.name == "frozen-bot"
    assert len(form.initial["idempotency_key"]) == 36
    # A fresh key per rendered form.
    assert form_of(operator_client, task, "rerun").initial["idempotency_key"] != form.initial["idempotency_key"]


def test_rerun_with_another_assignee_over_htmx(operator_client):
    task = failed_task()
    AgentFactory(name="shorekeeper")
    form = form_of(operator_client, task, "rerun")

    response = post(operator_client, task, "rerun", rerun_data(form, assignee="shorekeeper"))

    assert response.status_code == 200
    assert response["HX-Trigger"] == "task-changed"
    html = response.content.decode()
    assert html.lstrip().startswith('<aside id="task-actions"')
    assert "Rerun requested: attempt #2, frozen assignee shorekeeper." in html
    attempt = current(task)
    assert attempt.number == 2 and attempt.kind == Attempt.Kind.RERUN
    assert attempt.requested_assignee.name == "shorekeeper" and attempt.requested_by == "olga"
    assert attempt.reason == "lock cleared"


def test_rerun_without_htmx_redirects_back_with_a_message(operator_client):
    task = failed_task()
    form = form_of(operator_client, task, "rerun")
    response = post(operator_client, task, "rerun", rerun_data(form), htmx=False)
    assert response.status_code == 302 and response["Location"] == reverse("task_detail", args=[task.slug])
    page = operator_client.get(response["Location"]).content.decode()
    assert "Rerun requested: attempt #2" in page
    assert current(task).number == 2


def test_the_same_rendered_form_submitted_twice_makes_one_attempt(operator_client):
    task = failed_task()
    AgentFactory(name="shorekeeper")
    data = rerun_data(form_of(operator_client, task, "rerun"), assignee="shorekeeper")

    first = post(operator_client, task, "rerun", data)
    second = post(operator_client, task, "rerun", data)

    assert first.status_code == second.status_code == 200
    assert "Already done" in second.content.decode() and "attempt #2" in second.content.decode()
    assert Attempt.objects.filter(task=task).count() == 2
    assert current(task).requested_assignee.name == "shorekeeper"


def test_reason_is_required_and_shown_next_to_the_field(operator_client):
    task = failed_task()
    before = snapshot(task)
    response = post(operator_client, task, "rerun", rerun_data(form_of(operator_client, task, "rerun"), reason="  "))
    assert response.status_code == 400
    assert (
        '<div class="field-error" role="alert">Give a reason: it is kept in the ledger.</div>'
        in response.content.decode()
    )
    assert snapshot(task) == before


def test_unknown_or_inactive_assignee_is_a_field_error(operator_client):
    task = failed_task()
    AgentFactory(name="retired", active=False)
    before = snapshot(task)
    form = form_of(operator_client, task, "rerun")
    for name in ("nobody", "retired"):
        response = post(operator_client, task, "rerun", rerun_data(form, assignee=name))
        assert response.status_code == 400
        assert "Select a valid choice" in response.content.decode()
    assert snapshot(task) == before


@pytest.mark.parametrize(
    ("make", "code", "sentence"),
    [
        (running_task, "attempt_active", "has an active attempt"),
        (succeeded_task, "use_repair", "needs a repair with a reason"),
        (blocked_task, "budget_exhausted", "used 1 of 1 attempts"),
        (TaskFactory, "not_launched", "was never launched"),
    ],
)
def test_rerun_refusals_are_shown_in_place_and_change_nothing(operator_client, make, code, sentence):
    task = make()
    before = snapshot(task)
    data = {"rerun-reason": "try", "rerun-idempotency_key": "k-refused"}

    response = post(operator_client, task, "rerun", data)
    full = post(operator_client, task, "rerun", data, htmx=False)

    assert response.status_code == full.status_code == 409
    html = response.content.decode()
    assert html.lstrip().startswith('<aside id="task-actions"')
    assert f'role="alert" data-code="{code}">' in html and sentence in html
    assert full.content.decode().startswith("<!doctype html>") and sentence in full.content.decode()
    assert snapshot(task) == before


def test_inconsistent_task_refuses_a_rerun_and_points_to_repair(operator_client):
    task = failed_task()
    planning_services.task_mark_inconsistent(task_id=task.id, problems=["drift"])
    before = snapshot(task)
    response = post(operator_client, task, "rerun", {"rerun-reason": "x", "rerun-idempotency_key": "k"})
    assert response.status_code == 409 and "repair it first" in response.content.decode()
    assert snapshot(task) == before


def test_supersede_active_is_offered_only_for_an_active_attempt_and_works(operator_client):
    assert not form_of(operator_client, failed_task(), "rerun").offer_supersede
    task = running_task()
    form = form_of(operator_client, task, "rerun")
    assert form.offer_supersede
    page = operator_client.get(reverse("task_detail", args=[task.slug])).content.decode()
    assert "it will be cancelled, its executor told to stop" in page

    response = post(operator_client, task, "rerun", rerun_data(form, supersede_active="on"))

    assert response.status_code == 200
    old = Attempt.objects.get(task=task, number=1)
    assert old.status == Attempt.Status.CANCELLED and old.superseded_by_id == current(task).id


def test_override_budget_is_offered_only_when_the_budget_is_spent_and_works(operator_client):
    assert not form_of(operator_client, failed_task(), "rerun").offer_override
    assert (
        'name="rerun-override_budget"'
        not in operator_client.get(reverse("task_detail", args=[failed_task().slug])).content.decode()
    )
    task = blocked_task()
    form = form_of(operator_client, task, "rerun")
    assert form.offer_override

    refused = post(operator_client, task, "rerun", rerun_data(form))
    assert refused.status_code == 409 and "budget_exhausted" in refused.content.decode()
    # The refused form comes back with the option to go past the budget.
    assert 'name="rerun-override_budget"' in refused.content.decode()

    done = post(operator_client, task, "rerun", rerun_data(form, override_budget="on"))
    assert done.status_code == 200
    task.refresh_from_db()
    assert task.status == PlanningTask.Status.LAUNCH_REQUESTED and task.attempt_count == 2


def test_a_replayed_rerun_is_the_same_request_after_the_first_moved_the_task(operator_client):
    """The same form sent twice with supersede_active on a failed task: the
    first rerun makes the task active, where the option is offered; the
    replay must still be the same request (the API's answer), not a 422."""
    task = failed_task()
    form = form_of(operator_client, task, "rerun")
    data = rerun_data(form, supersede_active="on")
    first = post(operator_client, task, "rerun", data)
    assert first.status_code == 200
    before = snapshot(task)
    again = post(operator_client, task, "rerun", data)
    assert again.status_code == 200, again.content.decode()[:500]
    assert "idempotency_key_reused" not in again.content.decode()
    assert snapshot(task) == before


def test_reusing_a_key_with_a_different_request_is_refused(operator_client):
    task = failed_task()
    form = form_of(operator_client, task, "rerun")
    post(operator_client, task, "rerun", rerun_data(form))
    before = snapshot(task)
    response = post(operator_client, task, "rerun", rerun_data(form, reason="something else"))
    assert response.status_code == 422 and "idempotency_key_reused" in response.content.decode()
    assert snapshot(task) == before


# --- Repair, cancel, launch ---------------------------------------------------------


def test_repair_reopens_a_succeeded_task_keeping_the_frozen_assignee(operator_client):
    task = succeeded_task()
    frozen = current(task).requested_assignee
    form = form_of(operator_client, task, "repair")
    assert "rerun_form" not in operator_client.get(reverse("task_detail", args=[task.slug])).context

    response = post(
        operator_client,
        task,
        "repair",
        {
            "repair-reason": "output was corrupted",
            "repair-idempotency_key": form.initial["idempotency_key"],
            "repair-assignee": form.initial.get("assignee", ""),
        },
    )

    assert response.status_code == 200 and "Repair started: attempt #2" in response.content.decode()
    attempt = current(task)
    assert attempt.kind == Attempt.Kind.REPAIR and attempt.requested_assignee == frozen


def test_repair_clears_an_inconsistency(operator_client):
    task = failed_task()
    planning_services.task_mark_inconsistent(task_id=task.id, problems=["drift"])
    form = form_of(operator_client, task, "repair")
    response = post(
        operator_client,
        task,
        "repair",
        {
            "repair-reason": "fix",
            "repair-idempotency_key": form.initial["idempotency_key"],
        },
    )
    assert response.status_code == 200
    task.refresh_from_db()
    assert task.inconsistent_since is None


def test_repair_refusals(operator_client):
    draft = TaskFactory()
    before = snapshot(draft)
    response = post(operator_client, draft, "repair", {"repair-reason": "x", "repair-idempotency_key": "k"})
    assert response.status_code == 409 and "not_launched" in response.content.decode()
    assert snapshot(draft) == before
    task = failed_task()
    before = snapshot(task)
    response = post(operator_client, task, "repair", {"repair-reason": "", "repair-idempotency_key": "k"})
    assert response.status_code == 400 and "Give a reason" in response.content.decode()
    assert snapshot(task) == before


def test_cancel_a_running_task(operator_client):
    task = running_task()
    response = post(operator_client, task, "cancel", {"cancel-reason": "wrong input"})
    assert response.status_code == 200 and f"Task {task.slug} is cancelled." in response.content.decode()
    task.refresh_from_db()
    assert task.status == PlanningTask.Status.CANCELLED
    assert current(task).failure_message == "wrong input"
    # A cancelled task offers no cancel any more, and a rerun instead.
    assert "cancel_form" not in response.context and "rerun_form" in response.context


def test_cancel_refusals(operator_client):
    task = succeeded_task()
    before = snapshot(task)
    response = post(operator_client, task, "cancel", {"cancel-reason": "late"})
    assert response.status_code == 409 and "not_cancellable" in response.content.decode()
    empty = post(operator_client, running_task(), "cancel", {"cancel-reason": ""})
    assert empty.status_code == 400
    assert snapshot(task) == before


def test_launch_a_draft_once(operator_client):
    task = TaskFactory()
    form = form_of(operator_client, task, "launch")
    data = {"launch-idempotency_key": form.initial["idempotency_key"]}
    first = post(operator_client, task, "launch", data)
    second = post(operator_client, task, "launch", data)
    assert first.status_code == second.status_code == 200
    assert "Launched: attempt #1" in first.content.decode() and "Already done" in second.content.decode()
    assert Attempt.objects.filter(task=task).count() == 1


def test_launch_of_a_launched_task_is_refused(operator_client):
    task = TaskFactory()
    launch(task)
    fail_current(task)
    before = snapshot(task)
    response = post(operator_client, task, "launch", {"launch-idempotency_key": "k"})
    assert response.status_code == 409 and "already_launched" in response.content.decode()
    assert snapshot(task) == before


@pytest.mark.parametrize("action", ["rerun", "repair", "cancel", "launch"])
def test_actions_accept_only_post(operator_client, action):
    task = failed_task()
    assert operator_client.get(reverse(f"task_{action}", args=[task.slug])).status_code == 405


def test_actions_on_an_unknown_task_are_404(operator_client):
    response = operator_client.post(reverse("task_rerun", args=["nope"]), {"rerun-reason": "x"})
    assert response.status_code == 404


def test_a_rerun_of_another_tasks_form_cannot_move_this_task(operator_client):
    """Keys are per task: the same key on another task is a new request."""
    one, two = failed_task(), failed_task()
    key = form_of(operator_client, one, "rerun").initial["idempotency_key"]
    post(operator_client, one, "rerun", {"rerun-reason": "x", "rerun-idempotency_key": key})
    post(operator_client, two, "rerun", {"rerun-reason": "x", "rerun-idempotency_key": key})
    assert current(one).number == 2 and current(two).number == 2
