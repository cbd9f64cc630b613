"""Every model has an admin; its pages load for a superuser and for the
roles allowed, and refuse everyone else (the permission matrix)."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from planning.models import Agent, Event, Plan, PlanningTask, Procedure, Project, TaskStatusCount
from retries.models import Attempt, IdempotencyKey, NativeRun, PhaseOutcome, RetiredNativeId

pytestmark = pytest.mark.django_db

ALL_MODELS = [
    Agent,
    Project,
    Procedure,
    Plan,
    PlanningTask,
    Event,
    Attempt,
    PhaseOutcome,
    NativeRun,
    RetiredNativeId,
    IdempotencyKey,
    TaskStatusCount,
]
# Models whose rows an admin may add (through the services); the others are
# written only by services and are read-only for everyone.
ADDABLE = {Agent: "admin", Project: "admin", Procedure: "admin", Plan: "operator", PlanningTask: "operator"}
ROLE_RANK = {"viewer": 0, "executor": 0, "operator": 1, "admin": 2}


def url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_every_model_of_both_apps_is_registered():
    ours = {m for app in ("planning", "retries") for m in apps.get_app_config(app).get_models()}
    assert ours == set(ALL_MODELS)
    assert ours <= set(admin.site._registry)


def test_pages_load_for_a_superuser(clients, world):
    client = clients["superuser"]
    for model in ALL_MODELS:
        obj = model.objects.first()
        assert obj is not None, f"the world fixture makes one row of {model.__name__}"

        assert client.get(url(model, "changelist")).status_code == 200, model
        assert client.get(url(model, "change", obj.pk)).status_code == 200, model
        assert client.get(url(model, "add")).status_code == (200 if model in ADDABLE else 403), model
        assert client.get(url(model, "delete", obj.pk)).status_code == 403, "nothing is deleted from the admin"
        assert client.get(url(model, "history", obj.pk)).status_code == 200, model
    assert client.get(reverse("admin:index")).status_code == 200


def test_search_and_filters_work(clients, world):
    client = clients["superuser"]
    for model in ALL_MODELS:
        if admin.site._registry[model].search_fields:
            assert client.get(url(model, "changelist"), {"q": "world"}).status_code == 200, model
        page = client.get(url(model, "changelist"))
        for spec in page.context["cl"].filter_specs:
            for choice in spec.choices(page.context["cl"]):
                response = client.get(url(model, "changelist") + choice["query_string"])
                assert response.status_code == 200, (model, choice["query_string"])


def test_task_list_shows_status_attempts_and_the_ledger_flag(clients, world):
    page = clients["superuser"].get(url(PlanningTask, "changelist"))
    content = page.content.decode()
    assert "world-task" in content and "launch_requested" in content
    assert "#2 rerun, pending" in content and "2 of 3" in content
    change = clients["superuser"].get(url(PlanningTask, "change", world.pk)).content.decode()
    assert "nr-world" in change, "the attempts inline shows the old attempt's native ids"


@pytest.mark.parametrize("who", ["nobody", "outsider", "anonymous"])
def test_refused_to_users_without_a_role_or_not_staff(clients, world, who):
    client = clients[who]
    for model in ALL_MODELS:
        obj = model.objects.first()
        for target in (url(model, "changelist"), url(model, "change", obj.pk), url(model, "add")):
            response = client.get(target)
            if who == "nobody":
                assert response.status_code == 403, target
            else:
                # Not staff or not logged in: sent to the admin login.
                assert response.status_code == 302 and "/admin/login/" in response["Location"], target


def test_staff_user_in_no_role_sees_no_app_on_the_index(clients, world):
    page = clients["nobody"].get(reverse("admin:index"))
    assert page.status_code == 200
    assert page.context["app_list"] == []


@pytest.mark.parametrize("role", ["viewer", "executor", "operator", "admin"])
def test_role_matrix(clients, world, role):
    client = clients[role]
    for model in ALL_MODELS:
        obj = model.objects.first()
        assert client.get(url(model, "changelist")).status_code == 200, model
        assert client.get(url(model, "change", obj.pk)).status_code == 200, model
        needed = ADDABLE.get(model)
        may_add = needed is not None and ROLE_RANK[role] >= ROLE_RANK[needed]
        assert client.get(url(model, "add")).status_code == (200 if may_add else 403), (model, role)


def test_a_viewer_cannot_post_a_change(clients, world):
    before = PlanningTask.objects.values().get(pk=world.pk)
    response = clients["viewer"].post(url(PlanningTask, "change", world.pk), {"title": "changed by a viewer"})
    assert response.status_code == 403
    assert PlanningTask.objects.values().get(pk=world.pk) == before


def test_the_ledger_has_no_add_change_or_delete_even_for_a_superuser(clients, world):
    client = clients["superuser"]
    event = Event.objects.filter(task=world).first()
    before = list(Event.objects.order_by("id").values())

    assert client.get(url(Event, "add")).status_code == 403
    assert client.post(url(Event, "add"), {"type": "forged", "actor": "x", "at": "2026-01-01 00:00"}).status_code == 403
    assert client.post(url(Event, "change", event.pk), {"type": "forged"}).status_code == 403
    assert client.post(url(Event, "delete", event.pk), {"post": "yes"}).status_code == 403
    changelist = client.get(url(Event, "changelist"))
    assert "delete_selected" not in changelist.content.decode()

    assert list(Event.objects.order_by("id").values()) == before
