"""The Content-Security-Policy in a real browser: the board, a task page
and the admin pages load with no violation reported, and htmx still works
under it (the page fixture of tests/browser fails a test on any
violation Chromium reports)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from tests.browser.conftest import browser, login, make_user, page  # noqa: F401  (fixtures)
from tests.factories import AgentFactory, ProcedureFactory, ProjectFactory, TaskFactory
from tests.steps import fail_current

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("browser")]


def test_board_task_page_and_admin_load_with_no_csp_violation(live_server, page):  # noqa: F811
    owner = AgentFactory(name="owner-bot")
    project = ProjectFactory(slug="policy", owner=owner)
    procedure = ProcedureFactory(slug="aemeath")
    task = TaskFactory(slug="csp-task", project=project, procedure=procedure)
    fail_current(task, native_run_id="nr-csp")
    user = make_user("olga", "operator")
    User.objects.filter(pk=user.pk).update(is_staff=True)
    login(page, live_server.url, "olga")

    seen = []
    page.on(
        "response",
        lambda r: (
            seen.append(r.headers.get("content-security-policy", "")) if r.request.resource_type == "document" else None
        ),
    )
    page.goto(f"{live_server.url}/")
    expect(page.locator("table.tasks")).to_contain_text("csp-task")
    # htmx works under the policy: the filter form swaps the board in place.
    page.get_by_role("link", name=re.compile(r"failed$")).click()
    expect(page).to_have_url(re.compile(r"status=failed"))

    page.goto(f"{live_server.url}/tasks/csp-task/")
    expect(page.locator("h1")).to_have_text("csp-task")
    form = page.locator("#rerun form")
    form.get_by_label("Reason").fill("under a strict policy")
    form.get_by_role("button", name="Rerun task").click()
    expect(page.locator("#task-actions .flash.ok")).to_contain_text("attempt #2")

    for path in (
        "/admin/",
        "/admin/planning/planningtask/",
        "/admin/planning/planningtask/?status__exact=failed",
        f"/admin/planning/planningtask/{task.pk}/change/",
        "/admin/planning/event/",
        "/admin/retries/nativerun/",
        "/plans/",
        "/native-runs/",
    ):
        page.goto(live_server.url + path)
        expect(page.locator("body")).to_be_visible()
        page.wait_for_load_state("networkidle")
    # The admin's rerun action and its confirmation page.
    page.goto(f"{live_server.url}/admin/planning/planningtask/")
    page.locator("input.action-select").first.check()
    page.locator("select[name=action]").select_option("rerun_tasks")
    page.locator("button[name=index]").first.click()
    expect(page.locator("body")).to_contain_text("csp-task")
    page.wait_for_load_state("networkidle")
    assert all("script-src 'self'" in policy for policy in seen), seen
