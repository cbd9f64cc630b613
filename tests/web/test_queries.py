"""Every page costs a fixed number of queries, whatever the number of
tasks, attempts, native runs or events: measured at two sizes."""

import pytest
from django.urls import reverse

from tests.factories import PlanFactory, ProjectFactory, TaskFactory
from tests.steps import ago, fail_current, report
from tests.web.conftest import hx
from tests.web.scenes import blocked_task, failed_task, rerun, rich_history, running_task, stalled_task

pytestmark = pytest.mark.django_db

# session, user, the user's groups (role check)
AUTH = 3


def grow_board(n: int) -> None:
    project = ProjectFactory()
    plan = PlanFactory(project=project)
    for i in range(n):
        task = failed_task(project=project, plan=plan) if i % 3 else running_task()
        if i % 4 == 0:
            rich_history(task, 2)
    stalled_task()
    blocked_task()


@pytest.mark.parametrize(
    ("params", "headers", "expected"),
    [
        ({}, {}, AUTH + 8),
        ({"status": "failed", "q": "task", "assignee": "agent-0"}, {}, AUTH + 8),
        ({"attention": "on"}, hx("board-live"), AUTH + 8),
        # No COUNT(*) of its own: the total comes from the per-status counts.
        ({"status": "failed", "attention": "on"}, {}, AUTH + 8),
    ],
)
def test_board(operator_client, django_assert_num_queries, params, headers, expected):
    grow_board(2)
    with django_assert_num_queries(expected):
        assert operator_client.get(reverse("board"), params, **headers).status_code == 200
    grow_board(12)
    with django_assert_num_queries(expected):
        assert operator_client.get(reverse("board"), params, **headers).status_code == 200


def test_board_poll_with_nothing_new_costs_one_query(operator_client, django_assert_num_queries):
    grow_board(3)
    version = operator_client.get(reverse("board")).context["version"]
    with django_assert_num_queries(AUTH + 1):
        response = operator_client.get(reverse("board"), **hx("board-live", HTTP_X_MC_SINCE=str(version)))
    assert response.status_code == 204


@pytest.mark.parametrize(
    ("tab", "who", "expected"),
    [
        # An operator's page also previews its rerun and cancel (the current
        # attempt and its native ids): 2 more; the repair's preview, which
        # grows with the history, is a request of its own.
        ("attempts", "operator_client", AUTH + 7),
        ("ledger", "operator_client", AUTH + 8),
        ("attempts", "viewer_client", AUTH + 4),
    ],
)
def test_task_detail(request, django_assert_num_queries, tab, who, expected):
    client = request.getfixturevalue(who)
    small = failed_task()
    big = rich_history(failed_task(), 6)
    for n in range(5):
        report(big, status="running", native_run_id=f"legacy-{n}", created_at=ago(3600))
    for task in (small, big):
        with django_assert_num_queries(expected):
            response = client.get(reverse("task_detail", args=[task.slug]), {"tab": tab})
        assert response.status_code == 200
    assert len(response.context["d"].attempts) == 7


def test_plans(viewer_client, django_assert_num_queries):
    project = ProjectFactory()
    plan = PlanFactory(project=project)
    failed_task(project=project, plan=plan)
    with django_assert_num_queries(AUTH + 5):
        assert viewer_client.get(reverse("plans")).status_code == 200
    for _ in range(6):
        more = PlanFactory(project=project)
        for _ in range(3):
            failed_task(project=project, plan=more)
        TaskFactory(project=project, plan=more)
    with django_assert_num_queries(AUTH + 5):
        assert viewer_client.get(reverse("plans")).status_code == 200


def test_native_runs(viewer_client, django_assert_num_queries):
    def grow(n: int, tag: str) -> None:
        task = TaskFactory()
        old = fail_current(task)
        rerun(task)
        for i in range(n):
            report(task, status="running", native_run_id=f"{tag}-old-{i}", attempt=old)
            report(task, status="running", native_run_id=f"{tag}-{i}", created_at=ago(3600))
            report(task, status="running", native_run_id=f"{tag}-x-{i}", attempt=None, created_at=None)

    grow(1, "a")
    with django_assert_num_queries(AUTH + 4):
        assert viewer_client.get(reverse("native_runs")).status_code == 200
    grow(15, "b")
    with django_assert_num_queries(AUTH + 4):
        assert viewer_client.get(reverse("native_runs")).status_code == 200


@pytest.mark.parametrize("params", [{}, {"attempts": "all"}, {"tab": "ledger"}])
def test_task_detail_beyond_the_attempt_window(operator_client, django_assert_num_queries, monkeypatch, params):
    from missioncontrol.web import views

    monkeypatch.setattr(views, "DETAIL_ATTEMPTS", 3)
    expected = AUTH + (8 if params.get("tab") == "ledger" else 7)
    small = failed_task()
    big = rich_history(failed_task(), 6)
    for task in (small, big):
        with django_assert_num_queries(expected):
            response = operator_client.get(reverse("task_detail", args=[task.slug]), params)
        assert response.status_code == 200
    shown = 7 if params.get("attempts") == "all" else 3
    assert [a.number for a in response.context["d"].attempts] == list(range(7, 7 - shown, -1))
