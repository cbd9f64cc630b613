"""The operator's night, in a real browser: log in, find what failed, see
why, rerun it safely; and what a viewer may not do."""

import re

import pytest
import requests
from playwright.sync_api import expect
from rest_framework.authtoken.models import Token

from retries import services
from retries.models import Attempt
from tests.steps import current

from . import scene
from .conftest import login, make_user

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    # One process owns the browser and the live server.
    pytest.mark.xdist_group("browser"),
]


def test_operator_finds_a_failed_task_and_reruns_it_with_another_assignee(live_server, page, screenshot):
    s = scene.build()
    make_user("olga", "operator")
    login(page, live_server.url, "olga")

    page.get_by_role("link", name=re.compile(r"failed$")).click()
    expect(page).to_have_url(re.compile(r"status=failed"))
    rows = page.locator("table.tasks tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("table.tasks")).not_to_contain_text(s.running.slug)
    screenshot(page, "board", full_page=True)

    page.get_by_role("link", name=s.failed.slug).click()
    expect(page.locator("h1")).to_have_text(s.failed.slug)
    expect(page.locator(".diagnostics")).to_contain_text("lock wait exceeded")
    expect(page.locator("[data-role=frozen-assignee]")).to_have_text("aemeath")
    expect(page.locator("[data-role=owner]")).to_have_text("cartethyia")
    # The task's assignee and the frozen one are the same agent: no note
    # (the owner is shown, not compared).
    expect(page.locator("[data-role=assignees-differ]")).to_have_count(0)
    expect(page.locator("#attempt-1 .run-rejected")).to_have_count(0)
    expect(page.locator(".runs-aside")).to_contain_text("predates_current_attempt")
    screenshot(page, "task_detail", full_page=True)

    form = page.locator("#rerun form")
    assignee = form.get_by_label("Assignee for the new attempt")
    # The default keeps rule 3's answer, the previous frozen one, not the owner;
    # the preview beside the button says so, and follows a new choice (htmx).
    expect(assignee).to_have_value("")
    expect(form.locator("[data-role=default-assignee]")).to_have_text("aemeath")
    expect(form.locator("[data-role=preview-assignee]")).to_have_text("aemeath")
    form.get_by_label("Reason").fill("lock contention cleared; retry on the quieter worker")
    assignee.select_option("shorekeeper")
    expect(form.locator("[data-role=preview-assignee]")).to_have_text("shorekeeper")
    screenshot(page, "rerun_form", clip=page.locator("#task-actions").bounding_box())
    form.get_by_role("button", name="Rerun task").click()

    expect(page.locator("#task-actions .flash.ok")).to_contain_text("attempt #2")
    first = page.locator(".timeline article.attempt").first
    expect(first).to_have_attribute("id", "attempt-2")
    expect(first.locator(".tag-current")).to_be_visible()
    expect(first.locator("[data-role=attempt-assignee]")).to_have_text("shorekeeper")
    old = page.locator("#attempt-1")
    expect(old.locator(".tag-superseded")).to_have_text("superseded by #2")
    expect(old.locator(".tag-superseded")).to_have_attribute("href", "#attempt-2")
    expect(old.locator("[data-role=attempt-assignee]")).to_have_text("aemeath")
    expect(page.locator("[data-role=frozen-assignee]")).to_have_text("shorekeeper")
    expect(page.locator("[data-role=assignees-differ]")).to_contain_text("is frozen on shorekeeper")
    screenshot(page, "task_detail_after_rerun", full_page=True)

    attempts = list(Attempt.objects.filter(task=s.failed).order_by("number"))
    assert [a.number for a in attempts] == [1, 2]
    assert attempts[0].superseded_by_id == attempts[1].id
    assert attempts[1].requested_assignee.name == "shorekeeper"
    assert attempts[1].requested_by == "olga"


def test_double_click_and_resubmission_make_one_attempt(live_server, page):
    s = scene.build()
    make_user("olga", "operator")
    login(page, live_server.url, "olga")

    page.goto(f"{live_server.url}/tasks/{s.failed.slug}/")
    page.locator("#rerun").get_by_label("Reason").fill("double-click")
    page.locator("#rerun").get_by_role("button", name="Rerun task").dblclick()
    expect(page.locator("#task-actions .flash.ok")).to_be_visible()
    expect(page.locator(".timeline article.attempt").first).to_have_attribute("id", "attempt-2")
    assert Attempt.objects.filter(task=s.failed).count() == 2

    # A resubmission of the same rendered form (a retried request, a second
    # tab) reaches the server twice: the form's key makes it one attempt.
    page.goto(f"{live_server.url}/tasks/{s.failed_too.slug}/")
    page.locator("#rerun").get_by_label("Reason").fill("resubmitted")
    statuses = page.evaluate(
        """async () => {
            const form = document.querySelector('#rerun form');
            const send = () => fetch(form.action, {method: 'POST', body: new FormData(form),
                                                   headers: {'HX-Request': 'true', 'HX-Target': 'task-actions'}});
            const responses = await Promise.all([send(), send()]);
            const texts = await Promise.all(responses.map(r => r.text()));
            return responses.map((r, i) => [r.status, texts[i]]);
        }"""
    )
    assert [status for status, _ in statuses] == [200, 200]
    assert sum("Already done" in text for _, text in statuses) == 1
    assert Attempt.objects.filter(task=s.failed_too).count() == 2


def test_a_blocked_task_is_rerun_past_its_budget_with_the_keyboard_only(live_server, page):
    s = scene.build()
    make_user("olga", "operator")
    login(page, live_server.url, "olga")
    page.goto(f"{live_server.url}/tasks/{s.blocked.slug}/")
    expect(page.locator("#rerun")).to_contain_text("This goes past the budget once")

    page.locator("#rerun textarea").focus()
    page.keyboard.type("schema fixed by hand; one more try")
    page.keyboard.press("Tab")  # assignee, kept
    expect(page.locator("#rerun select")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#rerun input[type=checkbox]")).to_be_focused()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Rerun task")).to_be_focused()
    page.keyboard.press("Enter")

    expect(page.locator("#task-actions .flash.ok")).to_contain_text("attempt #2")
    assert Attempt.objects.filter(task=s.blocked).count() == 2


def test_viewer_sees_no_action_buttons_and_a_forged_post_is_refused(live_server, page):
    s = scene.build()
    make_user("victor", "viewer")
    login(page, live_server.url, "victor")

    page.goto(f"{live_server.url}/tasks/{s.failed.slug}/")
    expect(page.locator(".readonly-note")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Rerun|Repair|Cancel|Launch"))).to_have_count(0)

    status = page.evaluate(
        """async (slug) => {
            const token = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRFToken'];
            const body = new URLSearchParams({'rerun-reason': 'forged', 'rerun-idempotency_key': 'k-1'});
            const r = await fetch(`/tasks/${slug}/rerun/`, {method: 'POST', body, headers: {'X-CSRFToken': token}});
            return r.status;
        }""",
        s.failed.slug,
    )
    assert status == 403
    assert Attempt.objects.filter(task=s.failed).count() == 1


def test_board_refreshes_itself_after_a_change_made_through_the_api(live_server, page):
    s = scene.build()
    make_user("olga", "operator")
    token = Token.objects.create(user=make_user("ci-script", "operator"))
    login(page, live_server.url, "olga")

    page.goto(f"{live_server.url}/?q=index-creation-proc-0")
    row = page.locator(f"tr[data-slug='{s.failed.slug}']")
    expect(row.locator(".badge")).to_contain_text("failed")
    page.evaluate("window.__sameDocument = true")
    # A short window, scrolled: the refresh must leave the operator where they were.
    page.set_viewport_size({"width": 1280, "height": 420})
    page.evaluate("window.scrollTo(0, 60)")
    assert page.evaluate("window.scrollY") == 60

    response = requests.post(
        f"{live_server.url}/api/v1/tasks/{s.failed.slug}/rerun/",
        json={"reason": "rerun from a script"},
        headers={"Authorization": f"Token {token.key}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text

    expect(row.locator(".badge")).to_contain_text("launch requested", timeout=15_000)
    # Refreshed in place: same document, filters kept in the address and the form.
    assert page.evaluate("window.__sameDocument") is True
    assert page.evaluate("window.scrollY") == 60
    expect(page).to_have_url(re.compile(r"q=index-creation-proc-0"))
    expect(page.locator("#id_q")).to_have_value("index-creation-proc-0")
    expect(page.locator("table.tasks tbody tr")).to_have_count(1)


def test_operator_reruns_a_boards_failures_together_and_the_refresh_waits_while_they_type(
    live_server, page, screenshot
):
    s = scene.build()
    troubled = (s.failed, s.failed_too, s.blocked)
    before = {t.slug: t.attempt_count for t in troubled}
    make_user("olga", "operator")
    login(page, live_server.url, "olga")
    page.goto(f"{live_server.url}/?project=policy-protocol")
    form = page.locator("#board-rerun")
    button = form.get_by_role("button", name="Rerun the 3 failed or blocked tasks on this page")
    expect(button).to_be_visible()

    # Typing a reason pauses the board's refresh: a change elsewhere must not
    # replace the form (and the reason) under the operator's hands.
    page.evaluate("document.getElementById('board-live').dataset.marker = 'before'")
    form.locator('input[name="reason"]').fill("lock timeout raised on protocol_store")
    services.attempt_record_phase(attempt_id=current(s.running).id, phase="execute", outcome="passed", actor="executor")
    page.wait_for_timeout(7_000)  # more than one poll interval (5 s)
    assert page.evaluate("document.getElementById('board-live').dataset.marker") == "before"
    expect(form.locator('input[name="reason"]')).to_have_value("lock timeout raised on protocol_store")
    # Once the form is left empty the refresh resumes and shows the change.
    form.locator('input[name="reason"]').fill("")
    page.locator("h1, h2").first.click()
    # A function, not an expression: Playwright evaluates an expression with
    # eval() in the page, which the Content-Security-Policy forbids.
    page.wait_for_function("() => !document.getElementById('board-live').dataset.marker", timeout=15_000)

    form.locator('input[name="reason"]').fill("lock timeout raised on protocol_store")
    form.get_by_label("Go past the attempt budget").check()
    screenshot(page, "board_bulk_rerun")
    button.click()

    expect(page.locator(".messages")).to_contain_text("3 task(s) rerun")
    expect(page).to_have_url(re.compile(r"project=policy-protocol"))
    for task in troubled:
        task.refresh_from_db()
        assert (task.status, task.attempt_count) == ("launch_requested", before[task.slug] + 1)
        assert Attempt.objects.get(task=task, superseded_at__isnull=True).reason == (
            "lock timeout raised on protocol_store"
        )
    expect(page.locator("#board-rerun")).to_have_count(0)


def test_plans_and_native_runs_pages_for_reconciliation_triage(live_server, page, screenshot):
    s = scene.build()
    make_user("victor", "viewer")
    login(page, live_server.url, "victor")

    page.get_by_role("link", name="Plans").click()
    plan = page.locator("article.plan").first
    expect(plan).to_contain_text("nightly-indexes")
    expect(plan.locator("table.diag")).to_contain_text(s.failed.slug)
    expect(plan.locator("table.diag")).to_contain_text("lock wait exceeded")
    screenshot(page, "plans", full_page=True)

    page.get_by_role("link", name="Native runs").click()
    row = page.locator("tr", has_text="nr-7700-9")
    expect(row).to_contain_text("predates_current_attempt")
    expect(row.locator(".badge")).to_contain_text("rejected")
    screenshot(page, "native_runs", full_page=True)

    # Keyboard only: "/" jumps to the search on the board, typing filters it.
    page.get_by_role("link", name="Triage board").click()
    page.wait_for_url(f"{live_server.url}/")
    page.wait_for_load_state("load")
    page.keyboard.press("/")
    expect(page.locator("#id_q")).to_be_focused()
    page.keyboard.type("retention")
    expect(page.locator("table.tasks tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=retention"))
    expect(page.locator("table.tasks")).to_contain_text(s.blocked.slug)


def test_operator_reruns_a_plans_failures_together_from_its_card(live_server, page, screenshot):
    s = scene.build()
    before = {t.slug: t.attempt_count for t in (s.failed, s.failed_too, s.blocked)}
    make_user("olga", "operator")
    login(page, live_server.url, "olga")

    page.get_by_role("link", name="Plans").click()
    card = page.locator("article.plan", has_text="nightly-indexes")
    button = card.get_by_role("button", name="Rerun these 3 tasks")
    expect(button).to_be_visible()
    # The reason is required: the browser refuses the empty form.
    button.click()
    assert card.locator('input[name="reason"]').evaluate("e => e.validity.valueMissing")
    expect(page.locator(".messages")).to_have_count(0)
    card.locator('input[name="reason"]').fill("lock timeout raised on protocol_store")
    card.get_by_label("Go past the attempt budget").check()
    screenshot(page, "plan_bulk_rerun")
    button.click()

    expect(page.locator(".messages")).to_contain_text("3 task(s) rerun")
    for task in (s.failed, s.failed_too, s.blocked):
        task.refresh_from_db()
        assert (task.status, task.attempt_count) == ("launch_requested", before[task.slug] + 1)
        assert Attempt.objects.get(task=task, superseded_at__isnull=True).reason == (
            "lock timeout raised on protocol_store"
        )
    expect(page.locator("article.plan", has_text="nightly-indexes")).to_contain_text("No failed task.")
