"""A draft cancelled before its launch stays cancelled: every interface asks
the rerun and repair decisions and gets ``not_launched``. (Found from
outside: the API reran it as attempt #1 of kind ``rerun`` and repaired it,
so a task whose cancel said "it will never be launched" was launched.)"""

from __future__ import annotations

import pytest

from retries import services
from retries.decisions import Refusal, decide_rerun
from retries.services.facts import task_facts
from tests.api.conftest import assert_error, token_client
from tests.commands.helpers import db_state, run
from tests.factories import TaskFactory
from tests.web.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def cancelled_draft():
    task = TaskFactory()
    services.task_cancel(slug=task.slug, actor="op", reason="not needed after all")
    task.refresh_from_db()
    assert task.status == "cancelled" and task.attempt_count == 0
    return task


def test_the_decision_refuses_and_says_why(cancelled_draft):
    decision = decide_rerun(task_facts(cancelled_draft), [], reason="again")
    assert isinstance(decision, Refusal) and decision.code == "not_launched"
    assert "cancelled before it was ever launched" in decision.detail


def test_api_rerun_repair_and_bulk_rerun_refuse_and_change_nothing(cancelled_draft):
    operator = token_client("op-user", "operator")
    slug = cancelled_draft.slug
    before = db_state()
    for path in (f"/api/v1/tasks/{slug}/rerun/", f"/api/v1/tasks/{slug}/repair/"):
        answer = assert_error(operator.post(path, {"reason": "again"}, format="json"), 409, "not_launched")
        assert "before it was ever launched" in answer["detail"]
    # Bulk reruns name each refused task's code.
    answer = assert_error(
        operator.post("/api/v1/reruns/", {"tasks": [slug], "reason": "again"}, format="json"), 409, "rerun_refused"
    )
    assert answer["errors"][slug][0].startswith("not_launched: ")
    assert db_state() == before


def test_the_task_page_offers_neither_rerun_nor_repair(cancelled_draft):
    page = client_for("olga", "operator").get(f"/tasks/{cancelled_draft.slug}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-role="not-launched"' in html and "not_launched" in html
    assert f"/tasks/{cancelled_draft.slug}/rerun/" not in html
    assert f"/tasks/{cancelled_draft.slug}/repair/" not in html


def test_launch_says_why_too(cancelled_draft):
    """Not "launched already; use rerun or repair", which both refuse it."""
    operator = token_client("op-user", "operator")
    answer = assert_error(operator.post(f"/api/v1/tasks/{cancelled_draft.slug}/launch/"), 409, "not_launched")
    assert "before it was ever launched" in answer["detail"]


def test_the_repair_command_refuses(cancelled_draft):
    before = db_state()
    result = run("repair_tasks", cancelled_draft.slug, "--reason", "again")
    assert result.code != 0 and "before it was ever launched" in result.err + result.out
    assert db_state() == before
