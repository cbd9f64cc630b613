"""One limit for an operator's reason (``REASON_MAX_LENGTH``), whichever
interface takes it. (Found from outside: the dashboard stopped at 2,000
characters, the API at 10,000, the admin's actions and ``repair_tasks``
nowhere.) A reason at the limit is kept; one over it is refused and
changes nothing."""

from __future__ import annotations

import pytest

from missioncontrol.errors import ServiceError
from retries import services
from retries.services import REASON_MAX_LENGTH
from tests.admin.conftest import make_client
from tests.admin.test_actions import act
from tests.api.conftest import assert_error, token_client
from tests.commands.helpers import db_state, run
from tests.factories import TaskFactory
from tests.steps import fail_current
from tests.web.conftest import client_for

pytestmark = pytest.mark.django_db

OVER = "x" * (REASON_MAX_LENGTH + 1)


@pytest.fixture
def failed():
    task = TaskFactory()
    fail_current(task)
    return task


def test_the_service_keeps_a_reason_at_the_limit_and_refuses_one_over(failed):
    before = db_state()
    with pytest.raises(ServiceError) as exc:
        services.task_rerun(slug=failed.slug, actor="op", reason=OVER)
    assert exc.value.code == "invalid" and "at most 10,000 characters" in exc.value.errors["reason"][0]
    assert db_state() == before
    attempt = services.task_rerun(slug=failed.slug, actor="op", reason="y" * REASON_MAX_LENGTH).attempt
    assert len(attempt.reason) == REASON_MAX_LENGTH


def test_every_interface_refuses_a_reason_over_the_limit(failed):
    before = db_state()
    api = token_client("op-user", "operator")
    assert_error(api.post(f"/api/v1/tasks/{failed.slug}/rerun/", {"reason": OVER}, format="json"), 400, "invalid")
    page = client_for("olga", "operator").post(
        f"/tasks/{failed.slug}/rerun/", {"rerun-reason": OVER, "rerun-idempotency_key": "k-long"}
    )
    assert page.status_code == 400 and "at most 10000 characters" in page.content.decode()
    form = act(make_client("staff-op", "operator"), "repair_tasks", [failed], apply="yes", reason=OVER)
    assert form.status_code == 200 and "at most 10000 characters" in form.content.decode()
    command = run("repair_tasks", failed.slug, "--reason", OVER, "--dry-run")
    assert command.code != 0 and "at most 10,000 characters" in command.err
    assert db_state() == before
