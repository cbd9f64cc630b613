"""Login, logout and the role matrix: every page needs a login, reading needs
a role, changing needs the operator role, and the server enforces it."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.web.conftest import hx, make_user
from tests.web.scenes import failed_task, snapshot

pytestmark = pytest.mark.django_db

READ_PAGES = ["board", "plans", "native_runs"]


def read_urls(task):
    return [reverse(name) for name in READ_PAGES] + [
        reverse("task_detail", args=[task.slug]),
        reverse("task_detail", args=[task.slug]) + "?tab=ledger",
    ]


ACTIONS = {
    "task_rerun": {"rerun-reason": "r", "rerun-idempotency_key": "k1"},
    "task_repair": {"repair-reason": "r", "repair-idempotency_key": "k2"},
    "task_cancel": {"cancel-reason": "r"},
    "task_launch": {"launch-idempotency_key": "k3"},
}


def test_login_page_renders_and_signs_in():
    make_user("olga", "operator")
    client = Client()
    page = client.get(reverse("login"))
    assert page.status_code == 200 and b'name="username"' in page.content

    response = client.post(reverse("login"), {"username": "olga", "password": "pw-olga"})

    assert response.status_code == 302 and response["Location"] == reverse("board")
    assert client.get(reverse("board")).status_code == 200


def test_wrong_password_is_refused_with_a_message():
    make_user("olga", "operator")
    response = Client().post(reverse("login"), {"username": "olga", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_logout_ends_the_session():
    make_user("olga", "operator")
    client = Client()
    client.login(username="olga", password="pw-olga")
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert client.get(reverse("board")).status_code == 302


def test_anonymous_is_sent_to_login_from_every_page():
    task = failed_task()
    client = Client()
    for url in read_urls(task):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login") + "?next="), url


def test_anonymous_fragment_request_redirects_the_whole_page():
    response = Client().get(
        reverse("board"), **hx("board-live", HTTP_HX_CURRENT_URL="http://testserver/?status=failed")
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("login") + "?next=/?status=failed"


@pytest.mark.parametrize("who", ["operator_client", "viewer_client", "executor_client"])
def test_every_role_reads_every_page(request, who):
    client = request.getfixturevalue(who)
    task = failed_task()
    for url in read_urls(task):
        assert client.get(url).status_code == 200, url


def test_outsider_without_a_role_reads_nothing(outsider_client):
    task = failed_task()
    for url in read_urls(task):
        response = outsider_client.get(url)
        assert response.status_code == 403, url
        assert b"needs the viewer role" in response.content


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("who", ["viewer_client", "executor_client", "outsider_client"])
def test_only_operators_change_anything(request, who, action):
    client = request.getfixturevalue(who)
    task = failed_task()
    before = snapshot(task)

    response = client.post(reverse(action, args=[task.slug]), ACTIONS[action])
    fragment = client.post(reverse(action, args=[task.slug]), ACTIONS[action], **hx("task-actions"))

    assert response.status_code == 403 and fragment.status_code == 403
    assert b"needs the operator role" in fragment.content and b"<html" not in fragment.content
    assert snapshot(task) == before


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_anonymous_post_changes_nothing(action):
    task = failed_task()
    before = snapshot(task)
    response = Client().post(reverse(action, args=[task.slug]), ACTIONS[action])
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert snapshot(task) == before


def test_viewer_sees_no_action_forms(viewer_client, operator_client):
    task = failed_task()
    url = reverse("task_detail", args=[task.slug])
    as_viewer = viewer_client.get(url).content.decode()
    as_operator = operator_client.get(url).content.decode()
    for marker in ("Rerun task", "Repair task", "Cancel task", reverse("task_rerun", args=[task.slug])):
        assert marker not in as_viewer
        assert marker in as_operator
    assert "Read-only" in as_viewer


def test_csrf_is_required_for_actions():
    make_user("olga", "operator")
    client = Client(enforce_csrf_checks=True)
    client.login(username="olga", password="pw-olga")
    task = failed_task()
    before = snapshot(task)
    response = client.post(reverse("task_rerun", args=[task.slug]), ACTIONS["task_rerun"])
    assert response.status_code == 403
    assert snapshot(task) == before


def test_pages_carry_the_csrf_token_for_htmx(operator_client):
    body = operator_client.get(reverse("board")).content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in body
    assert "htmx" in body and "/static/missioncontrol/mc.css" in body


@pytest.mark.parametrize("role", ["admin", "superuser"])
def test_admins_and_superusers_can_operate(role):
    from django.contrib.auth.models import User

    if role == "superuser":
        User.objects.create_superuser(username="root", password="pw-root")
    else:
        make_user("root", "admin")
    client = Client()
    client.login(username="root", password="pw-root")
    task = failed_task()
    response = client.post(reverse("task_rerun", args=[task.slug]), ACTIONS["task_rerun"])
    assert response.status_code == 302
    assert snapshot(task)[2] == 2
