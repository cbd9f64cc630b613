"""The board's "rerun the failed or blocked tasks on this page": one form
under the rows that lists exactly the failed and blocked tasks shown (under
the page's filters), reruns them together through ``task_rerun_many`` (all
or nothing) and brings the operator back to the same filtered page."""

import re

import pytest
from django.urls import reverse

from retries.models import Attempt
from tests.factories import ProjectFactory
from tests.web.scenes import blocked_task, failed_task, running_task, snapshot, succeeded_task

pytestmark = pytest.mark.django_db


def rerun_form(html: str) -> dict:
    form = re.search(r'<form id="board-rerun".*?</form>', html, re.S)
    assert form, "no rerun form on the board"
    text = form.group(0)
    return {
        "tasks": re.findall(r'name="tasks" value="([^"]+)"', text),
        "idempotency_key": re.search(r'name="idempotency_key" value="([^"]+)"', text).group(1),
        "next": re.search(r'name="next" value="([^"]+)"', text).group(1).replace("&amp;", "&"),
        "button": re.search(r"<button[^>]*>([^<]+)</button>", text).group(1),
        "override": 'name="override_budget"' in text,
    }


def a_project_in_trouble():
    project = ProjectFactory(slug="wave")
    failed = [failed_task(project=project, slug=f"wave-failed-{i}") for i in range(2)]
    blocked = blocked_task(project=project, slug="wave-blocked")
    others = [succeeded_task(project=project, slug="wave-ok"), running_task(project=project, slug="wave-running")]
    elsewhere = failed_task(slug="elsewhere-failed")
    return project, [*failed, blocked], others, elsewhere


def test_the_form_lists_exactly_the_failed_and_blocked_tasks_shown(operator_client):
    project, troubled, _others, _elsewhere = a_project_in_trouble()

    html = operator_client.get(reverse("board"), {"project": project.slug}).content.decode()

    form = rerun_form(html)
    assert sorted(form["tasks"]) == sorted(t.slug for t in troubled)
    assert form["button"] == "Rerun the 3 failed or blocked tasks on this page"
    assert form["override"]  # the blocked task spent its budget
    assert form["next"] == f"/?project={project.slug}"
    # Nothing to rerun under a filter that shows none: no form.
    html = operator_client.get(reverse("board"), {"status": "succeeded"}).content.decode()
    assert 'id="board-rerun"' not in html


def test_operator_reruns_them_together_and_comes_back_to_the_same_page(operator_client):
    project, troubled, others, elsewhere = a_project_in_trouble()
    form = rerun_form(operator_client.get(reverse("board"), {"project": project.slug}).content.decode())
    body = {**form, "reason": "disk replaced", "override_budget": "on"}
    before_others = [snapshot(t) for t in (*others, elsewhere)]
    counts = {t.slug: t.attempt_count for t in troubled}

    done = operator_client.post(reverse("board_rerun"), body)

    assert done.status_code == 302 and done["Location"] == f"/?project={project.slug}"
    page = operator_client.get(done["Location"]).content.decode()
    assert "3 task(s) rerun" in page
    for task in troubled:
        assert snapshot(task)[:2] == ("launch_requested", counts[task.slug] + 1)
        assert Attempt.objects.get(task=task, superseded_at__isnull=True).reason == "disk replaced"
    assert [snapshot(t) for t in (*others, elsewhere)] == before_others
    # The same form again (a double submit) reruns nothing more.
    again = operator_client.post(reverse("board_rerun"), body, follow=True).content.decode()
    assert "already rerun by this form" in again
    assert [snapshot(t)[1] for t in troubled] == [counts[t.slug] + 1 for t in troubled]


def test_one_refusal_reruns_none_and_says_which_task_and_why(operator_client):
    project, troubled, _others, _elsewhere = a_project_in_trouble()
    form = rerun_form(operator_client.get(reverse("board"), {"project": project.slug}).content.decode())
    before = [snapshot(t) for t in troubled]

    # Without the override the blocked task refuses the whole set.
    refused = operator_client.post(reverse("board_rerun"), {**form, "reason": "disk replaced"}, follow=True)

    html = refused.content.decode()
    assert "1 of 3 tasks cannot be rerun now; none was." in html
    assert "wave-blocked: budget_exhausted" in html
    assert [snapshot(t) for t in troubled] == before


def test_bad_input_changes_nothing_and_next_cannot_leave_the_site(operator_client):
    _project, troubled, others, _elsewhere = a_project_in_trouble()
    before = [snapshot(t) for t in (*troubled, *others)]
    url = reverse("board_rerun")
    for body, message in (
        ({"tasks": [troubled[0].slug], "reason": " ", "idempotency_key": "k1"}, "Nothing was rerun"),
        ({"reason": "r", "idempotency_key": "k2"}, "No task to rerun"),
        ({"tasks": [troubled[0].slug] * 2, "reason": "r", "idempotency_key": "k3"}, "Each task once"),
        ({"tasks": [troubled[0].slug, "no-such-task"], "reason": "r", "idempotency_key": "k4"}, "no-such-task"),
        ({"tasks": [troubled[0].slug, others[0].slug], "reason": "r", "idempotency_key": "k5"}, "use_repair"),
    ):
        html = operator_client.post(url, body, follow=True).content.decode()
        assert message in html, message
    assert [snapshot(t) for t in (*troubled, *others)] == before
    for forged in ("https://evil.example/", "//evil.example/", "javascript:alert(1)"):
        response = operator_client.post(url, {"reason": "r", "idempotency_key": "k6", "next": forged})
        assert response["Location"] == reverse("board"), forged


@pytest.mark.parametrize("who", ["viewer_client", "executor_client", "outsider_client"])
def test_only_operators_see_or_use_it(request, who):
    project, troubled, _others, _elsewhere = a_project_in_trouble()
    client = request.getfixturevalue(who)
    page = client.get(reverse("board"), {"project": project.slug})
    assert 'id="board-rerun"' not in page.content.decode()
    before = [snapshot(t) for t in troubled]
    body = {"tasks": [t.slug for t in troubled], "reason": "r", "override_budget": "on", "idempotency_key": "k"}
    assert client.post(reverse("board_rerun"), body).status_code == 403
    assert [snapshot(t) for t in troubled] == before
