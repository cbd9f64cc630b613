"""Every interface that shows or takes the frozen assignee asks the one
decision (rule 3): the dashboard's default and preview, the API's preview,
the admin's confirmation page, ``repair_tasks --dry-run`` and the actions
themselves name the same agent, for a task with only imported history,
one with a current attempt, and one whose frozen assignee was deactivated
since. Submitting the dashboard form unchanged freezes exactly that agent."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from missioncontrol.api.services import api_token_create
from missioncontrol.roles import OPERATOR
from planning import services as planning_services
from planning.models import PlanningTask
from retries.history import retry_history_import
from tests.commands.helpers import run
from tests.factories import AgentFactory, ProjectFactory, TaskFactory
from tests.steps import current, fail_current

pytestmark = pytest.mark.django_db

ADMIN_CHANGELIST = "/admin/planning/planningtask/"


def _imported_only() -> tuple[PlanningTask, str]:
    """Seed 000 as a newcomer met it: the task's own assignee is the owner,
    the imported failed attempt asked for aemeath."""
    AgentFactory(name="aemeath")
    owner = AgentFactory(name="owner-bot")
    task = TaskFactory(project=ProjectFactory(owner=owner), assignee=owner)
    retry_history_import(
        data=json.dumps(
            {
                "version": 1,
                "entries": [
                    {
                        "planningTaskId": task.slug,
                        "attemptId": "0b6f4c1e-2b1a-4a53-9d43-5c1d2f7e9a10",
                        "attemptNumber": 1,
                        "requestedAt": "2026-11-02T09:14:00Z",
                        "requestedAssigneeId": "aemeath",
                        "nativeTaskId": "nt-8812",
                        "nativeRunId": "nr-8812-1",
                        "status": "failed",
                        "supersededAt": None,
                        "supersededByAttemptId": None,
                    }
                ],
            }
        ),
        actor="importer",
    )
    return task, "aemeath"


def _with_current() -> tuple[PlanningTask, str]:
    owner, frozen = AgentFactory(name="owner-bot"), AgentFactory(name="frozen-bot")
    task = TaskFactory(project=ProjectFactory(owner=owner), assignee=frozen)
    fail_current(task)
    planning_services.task_update(slug=task.slug, assignee=owner.name, actor="x")
    return task, "frozen-bot"


def _deactivated() -> tuple[PlanningTask, str]:
    task, name = _with_current()
    planning_services.agent_update(name=name, active=False, actor="x")
    return task, name


def _operator_clients():
    user = get_user_model().objects.create_user(username="olga", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=OPERATOR)[0])
    web = Client()
    web.force_login(user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(username='olga', role=OPERATOR).key}")
    return web, api


@pytest.mark.parametrize(
    "scene", [_imported_only, _with_current, _deactivated], ids=["imported", "current", "inactive"]
)
def test_every_interface_names_the_same_frozen_assignee(scene):
    task, expected = scene()
    task.refresh_from_db()
    web, api = _operator_clients()

    page = web.get(reverse("task_detail", args=[task.slug]))
    rerun_form, repair_form = page.context["rerun_form"], page.context["repair_form"]
    assert rerun_form.keep.name == expected and repair_form.keep.name == expected
    assert page.context["rerun_preview"].attempt.assignee.name == expected
    assert f'data-role="default-assignee">{expected}<' in page.content.decode()

    for name in ("rerun", "repair"):
        fragment = web.get(
            reverse(f"task_{name}_preview", args=[task.slug]), {f"{name}-assignee": ""}, HTTP_HX_REQUEST="true"
        )
        assert f'data-role="preview-assignee">{expected}<' in fragment.content.decode(), name

    for action in ("rerun", "repair"):
        body = api.post(f"/api/v1/tasks/{task.slug}/{action}/preview/", {"reason": "check"}, format="json").json()
        assert body["allowed"] and body["attempt"]["requested_assignee"] == expected, body

    for action in ("rerun_tasks", "repair_tasks"):
        confirmation = web.post(ADMIN_CHANGELIST, {"action": action, "_selected_action": [task.pk]}).content.decode()
        assert f"attempt #{task.attempt_count + 1} for {expected} (" in confirmation, action

    dry = run("repair_tasks", task.slug, "--reason", "check", "--dry-run")
    assert dry.code == 0 and f" for {expected} (" in dry.out

    # The dashboard form submitted as rendered: the default is kept.
    response = web.post(
        reverse("task_rerun", args=[task.slug]),
        {
            "rerun-reason": "as the form was",
            "rerun-idempotency_key": rerun_form.initial["idempotency_key"],
            "rerun-assignee": rerun_form.initial.get("assignee", ""),
        },
    )
    assert response.status_code == 302
    assert current(task).requested_assignee.name == expected

    repaired = api.post(f"/api/v1/tasks/{task.slug}/repair/", {"reason": "and again"}, format="json")
    assert repaired.status_code == 201 and repaired.json()["requested_assignee"] == expected
