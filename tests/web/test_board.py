"""The triage board: counts, filters, search, pagination and its fragments."""

import re

import pytest
from django.urls import reverse

from missioncontrol.web import views
from planning import services as planning_services
from planning.models import Event
from retries import services
from tests.factories import AgentFactory, PlanFactory, ProcedureFactory, ProjectFactory, TaskFactory
from tests.web.conftest import hx
from tests.web.scenes import (
    blocked_task,
    failed_task,
    inconsistent_task,
    rerun,
    running_task,
    stalled_task,
    succeeded_task,
)

pytestmark = pytest.mark.django_db


def slugs(response) -> list[str]:
    return re.findall(r'<tr class="[^"]*" data-slug="([^"]+)"', response.content.decode())


def board(client, **params):
    return client.get(reverse("board"), params)


def test_counts_per_status_and_needing_attention(operator_client):
    failed_task(slug="f1"), failed_task(slug="f2"), blocked_task(slug="b1"), running_task(slug="r1")
    succeeded_task(slug="s1"), TaskFactory(slug="d1"), stalled_task(slug="st1"), inconsistent_task(slug="i1")

    response = board(operator_client)

    counts = response.context["counts"]
    # stalled and inconsistent tasks are failed too
    assert counts["failed"] == 4 and counts["blocked"] == 1 and counts["running"] == 1
    assert counts["succeeded"] == 1 and counts["draft"] == 1 and counts["total"] == 8
    assert counts["attention"] == 5
    html = response.content.decode()
    assert 'href="?status=failed"' in html and 'href="?attention=on"' in html


def test_needs_attention_lists_failed_blocked_stalled_and_inconsistent(operator_client):
    failed_task(slug="f1"), blocked_task(slug="b1"), running_task(slug="r1"), succeeded_task(slug="s1")
    # Neither of these is failed or blocked any more, yet each needs a look:
    # a succeeded task whose rows disagree with the ledger, and a cancelled
    # task whose last attempt stalled.
    planning_services.task_mark_inconsistent(task_id=succeeded_task(slug="i1").id, problems=["drift"])
    stalled = stalled_task(slug="st1")
    services.task_cancel(slug=stalled.slug, actor="tests", reason="stop")
    # A stalled task that was rerun since no longer needs attention.
    rerun(stalled_task(slug="st2"))

    response = board(operator_client, attention="on")

    assert sorted(slugs(response)) == ["b1", "f1", "i1", "st1"]
    html = response.content.decode()
    assert "⚠ inconsistent" in html and ">stalled<" in html


def test_status_filter(operator_client):
    failed_task(slug="f1"), running_task(slug="r1"), blocked_task(slug="b1")
    assert slugs(board(operator_client, status="failed")) == ["f1"]
    assert slugs(board(operator_client, status="blocked")) == ["b1"]


def test_project_procedure_and_plan_filters(operator_client):
    project = ProjectFactory(slug="alpha")
    procedure = ProcedureFactory(slug="shorekeeper")
    plan = PlanFactory(project=project)
    TaskFactory(slug="in-all", project=project, procedure=procedure, plan=plan)
    TaskFactory(slug="same-project", project=project)
    TaskFactory(slug="same-procedure", procedure=procedure)
    TaskFactory(slug="elsewhere")

    assert sorted(slugs(board(operator_client, project="alpha"))) == ["in-all", "same-project"]
    assert sorted(slugs(board(operator_client, procedure="shorekeeper"))) == ["in-all", "same-procedure"]
    assert slugs(board(operator_client, plan=str(plan.id))) == ["in-all"]
    assert slugs(board(operator_client, project="alpha", procedure="shorekeeper")) == ["in-all"]


def test_assignee_filter_matches_the_task_or_the_frozen_assignee(operator_client):
    aemeath, other = AgentFactory(name="aemeath"), AgentFactory(name="other")
    TaskFactory(slug="assigned", assignee=aemeath)
    moved = failed_task(slug="moved", assignee=other)
    rerun(moved, assignee="aemeath")
    TaskFactory(slug="unrelated", assignee=other)

    response = board(operator_client, assignee="aemeath")

    assert sorted(slugs(response)) == ["assigned", "moved"]
    # The row shows the frozen assignee and notes the task's own.
    assert "task: other" in response.content.decode()


def test_search_by_slug_or_title(operator_client):
    TaskFactory(slug="policy-index-0", title="Create index")
    TaskFactory(slug="other-1", title="Rebuild the POLICY cache")
    TaskFactory(slug="unrelated", title="Nothing")
    assert sorted(slugs(board(operator_client, q="policy"))) == ["other-1", "policy-index-0"]
    assert slugs(board(operator_client, q="index-0")) == ["policy-index-0"]


def test_counts_follow_the_other_filters_but_not_the_status(operator_client):
    project = ProjectFactory(slug="alpha")
    failed_task(slug="a-f", project=project), running_task(slug="a-r", project=project), failed_task(slug="b-f")
    counts = board(operator_client, project="alpha", status="running").context["counts"]
    assert counts["failed"] == 1 and counts["running"] == 1 and counts["total"] == 2


def test_a_bad_filter_value_is_reported_and_ignored(operator_client):
    failed_task(slug="f1"), running_task(slug="r1")
    response = board(operator_client, status="exploded", project="no-such-project")
    assert response.status_code == 200
    assert sorted(slugs(response)) == ["f1", "r1"]
    html = response.content.decode()
    assert "Ignored:" in html and "exploded is not one of the available choices" in html


def test_pagination_keeps_the_filters(operator_client, monkeypatch):
    monkeypatch.setattr(views, "BOARD_PAGE_SIZE", 2)
    for n in range(5):
        failed_task(slug=f"f{n}")
    running_task(slug="r1")

    first = board(operator_client, status="failed")
    third = board(operator_client, status="failed", page=3)

    assert len(slugs(first)) == 2 and len(slugs(third)) == 1
    assert set(slugs(first)).isdisjoint(slugs(third))
    assert 'href="?status=failed&amp;page=2"' in first.content.decode()
    assert "Page 1 of 3" in first.content.decode()


def test_rows_are_newest_change_first_and_show_attempt_n_of_max(operator_client):
    old = failed_task(slug="old")
    failed_task(slug="new")
    rerun(old)
    response = board(operator_client)
    assert slugs(response) == ["old", "new"]
    assert "2 of 3" in response.content.decode()


def test_without_htmx_the_full_page_renders(operator_client):
    response = board(operator_client)
    html = response.content.decode()
    assert html.startswith("<!doctype html>") and 'id="board-filters"' in html and 'id="board-live"' in html


def test_htmx_filter_request_renders_the_board_fragment_only(operator_client):
    failed_task(slug="f1")
    response = operator_client.get(reverse("board"), {"status": "failed"}, **hx("board"))
    html = response.content.decode()
    assert "<html" not in html and html.lstrip().startswith('<section id="board"')
    assert 'id="board-filters"' in html and slugs(response) == ["f1"]
    assert "HX-Request" in response["Vary"]


def test_polling_renders_the_live_fragment_and_keeps_the_filters(operator_client):
    failed_task(slug="f1"), running_task(slug="r1")
    response = operator_client.get(reverse("board"), {"status": "failed", "q": "f"}, **hx("board-live"))
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="board-live"') and 'id="board-filters"' not in html
    assert slugs(response) == ["f1"]
    # The poller asks again for the same filtered view.
    assert 'hx-get="/?status=failed&amp;q=f"' in html
    # It pauses while the rerun form is in use (mc.js), not through an
    # hx-trigger filter: the Content-Security-Policy forbids evaluated code.
    assert 'hx-trigger="every 5s" data-pause-while-composing' in html


def test_polling_answers_204_until_something_changes(operator_client):
    task = failed_task(slug="f1")
    live = operator_client.get(reverse("board"), **hx("board-live"))
    version = live.context["version"]
    assert version == Event.objects.latest("id").id

    unchanged = operator_client.get(reverse("board"), **hx("board-live", HTTP_X_MC_SINCE=str(version)))
    assert unchanged.status_code == 204 and unchanged.content == b""

    rerun(task)
    changed = operator_client.get(reverse("board"), **hx("board-live", HTTP_X_MC_SINCE=str(version)))
    assert changed.status_code == 200 and "launch requested" in changed.content.decode()


def test_status_and_attention_together_count_and_page_the_flagged_tasks_of_that_status(operator_client, monkeypatch):
    monkeypatch.setattr(views, "BOARD_PAGE_SIZE", 1)
    for slug in ("i1", "i2"):
        planning_services.task_mark_inconsistent(task_id=succeeded_task(slug=slug).id, problems=["drift"])
    stalled = stalled_task(slug="st1")
    # Both flags on one task: counted once.
    planning_services.task_mark_inconsistent(task_id=stalled.id, problems=["drift"])
    services.task_cancel(slug=stalled.slug, actor="tests", reason="stop")
    succeeded_task(slug="s1"), failed_task(slug="f1")

    counts = board(operator_client).context["counts"]
    assert counts["attention"] == 4 and counts["total"] == 5

    succeeded = board(operator_client, status="succeeded", attention="on")
    assert succeeded.context["page"].paginator.count == 2
    assert succeeded.context["page"].paginator.num_pages == 2
    assert len(slugs(succeeded)) == 1
    cancelled = board(operator_client, status="cancelled", attention="on")
    assert cancelled.context["page"].paginator.count == 1 and slugs(cancelled) == ["st1"]
    assert board(operator_client, status="failed", attention="on").context["page"].paginator.count == 1
    assert board(operator_client, attention="on").context["page"].paginator.count == 4
    assert board(operator_client, status="succeeded").context["page"].paginator.count == 3


def test_unfiltered_counts_come_from_the_status_projection_and_filtered_ones_from_the_tasks(operator_client):
    project = ProjectFactory(slug="alpha")
    failed_task(slug="f1", project=project), failed_task(slug="f2"), TaskFactory(slug="d1")
    planning_services.task_status_counts_fold()
    services.task_launch(slug=TaskFactory(slug="l1").slug, actor="op")  # a delta after the fold

    counts = board(operator_client).context["counts"]
    assert (counts["failed"], counts["draft"], counts["launch_requested"], counts["total"]) == (2, 1, 1, 4)
    assert counts["attention"] == 2

    # The projection has no per-project counts: a filtered board counts its tasks.
    filtered = board(operator_client, project="alpha").context["counts"]
    assert (filtered["failed"], filtered["total"]) == (1, 1)
