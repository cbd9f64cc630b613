"""The task page: diagnostics, the three assignees, the attempt timeline
with phases, superseded and rejected runs, and the ledger tab."""

import re

import pytest
from django.urls import reverse

from planning import services as planning_services
from planning.models import Event
from retries import services
from retries.models import Attempt
from tests.factories import AgentFactory, TaskFactory
from tests.steps import ago, current, fail_current, launch, report
from tests.web.conftest import hx
from tests.web.scenes import phase_failed_task, rerun, rich_history

pytestmark = pytest.mark.django_db


def detail(client, task, **params):
    return client.get(reverse("task_detail", args=[task.slug]), params)


def attempt_block(html: str, number: int) -> str:
    match = re.search(rf'<article class="attempt[^"]*" id="attempt-{number}".*?</article>', html, re.S)
    assert match, f"attempt #{number} is not on the page"
    return match.group(0)


def test_diagnostics_show_phase_kind_message_and_attempt_n_of_max(viewer_client):
    task = phase_failed_task()
    html = detail(viewer_client, task).content.decode()
    diagnostics = re.search(r'<section class="card diagnostics.*?</section>', html, re.S).group(0)
    assert "execute" in diagnostics and "phase failed" in diagnostics
    assert "disk full on worker-3" in diagnostics and "#1 of 3" in diagnostics


def test_assignees_side_by_side_with_a_note_when_they_differ(viewer_client):
    owner, chosen = AgentFactory(name="owner-bot"), AgentFactory(name="chosen")
    task = TaskFactory(project__owner=owner)
    fail_current(task)
    same = detail(viewer_client, task).content.decode()
    assert 'data-role="task-assignee">owner-bot<' in same and 'data-role="frozen-assignee">owner-bot<' in same
    assert 'data-role="assignees-differ"' not in same

    rerun(task, assignee=chosen.name)
    differ = detail(viewer_client, task).content.decode()
    assert 'data-role="task-assignee">owner-bot<' in differ
    assert 'data-role="frozen-assignee">chosen<' in differ
    assert 'data-role="owner">owner-bot<' in differ
    assert (
        "The task's assignee is <strong>owner-bot</strong>, but attempt #2 is frozen on <strong>chosen</strong>"
    ) in differ


def test_timeline_newest_first_with_superseded_marks_linking_to_the_successor(viewer_client):
    task = TaskFactory()
    first = fail_current(task)
    rerun(task, assignee=AgentFactory(name="second-bot").name)
    fail_current(task)
    third = rerun(task, reason="third time")

    html = detail(viewer_client, task).content.decode()

    assert [int(n) for n in re.findall(r'id="attempt-(\d+)"', html)] == [3, 2, 1]
    newest, middle, oldest = (attempt_block(html, n) for n in (3, 2, 1))
    assert "current" in newest and "superseded by" not in newest
    assert 'href="#attempt-3">superseded by #3<' in middle
    assert 'href="#attempt-2">superseded by #2<' in oldest
    assert "third time" in newest and "tests" in newest  # why and who
    assert f'title="{third.id}"' in newest and str(third.id)[:8] in newest  # short id, full on hover
    assert f'data-copy="{first.id}"' in oldest
    assert 'data-role="attempt-assignee">second-bot<' in middle
    assert 'data-role="attempt-assignee">second-bot<' in newest  # frozen carried over (rule 3)


def test_phase_chips_passed_failed_not_reached_and_the_resume_phase(viewer_client):
    task = phase_failed_task()
    retry = services.task_retry_or_block(task_id=task.id)
    assert retry.resume_phase == "execute"

    html = detail(viewer_client, task).content.decode()

    old, new = attempt_block(html, 1), attempt_block(html, 2)
    assert re.search(r'chip chip-passed"[^>]*>.*?preflight', old, re.S)
    assert re.search(r'chip chip-failed"[^>]*>.*?execute', old, re.S)
    assert re.search(r'chip chip-not_reached"[^>]*>.*?finalize', old, re.S)
    assert re.search(r'chip chip-earlier"[^>]*>.*?preflight', new, re.S)
    assert re.search(r'chip chip-not_reached chip-resume"[^>]*>.*?execute.*?\(resume\)', new, re.S)
    assert "Resumes at" in new and "Resumes at" not in old


def test_bound_and_rejected_native_runs_are_shown_where_they_tried_to_bind(viewer_client):
    task = TaskFactory()
    old = fail_current(task, native_run_id="nr-old")
    rerun(task)
    report(task, status="running", native_run_id="nr-stale", attempt=old)  # names a superseded attempt
    report(task, status="running", native_run_id="nr-legacy", created_at=ago(3600))  # no attempt id, too old

    html = detail(viewer_client, task).content.decode()

    oldest = attempt_block(html, 1)
    assert "ext:nr-old" in oldest and "run-bound" in oldest
    assert "ext:nr-stale" in oldest and "superseded" in oldest and "tried to bind here" in oldest
    assert "ext:nr-stale" not in attempt_block(html, 2)
    legacy = re.search(r'<div class="card runs-aside">.*?</div>\s*\n\s*</div>', html, re.S).group(0)
    assert "ext:nr-legacy" in legacy and "predates_current_attempt" in legacy


def test_ledger_tab_lists_every_event_oldest_first(viewer_client):
    task = TaskFactory()
    fail_current(task)
    rerun(task)
    events = list(Event.objects.filter(task=task).order_by("id"))

    html = detail(viewer_client, task, tab="ledger").content.decode()

    listed = [int(n) for n in re.findall(r'<td class="num mono">(\d+)</td>', html)]
    assert listed == [e.id for e in events]
    for event in events:
        assert event.type in html
    assert f'Ledger <span class="n">{len(events)}</span>' in html
    assert 'id="attempt-' not in html  # the other tab is not rendered


def test_inconsistent_task_is_flagged(viewer_client):
    task = TaskFactory()
    fail_current(task)
    planning_services.task_mark_inconsistent(task_id=task.id, problems=["attempt #1 status is odd"])
    html = detail(viewer_client, task).content.decode()
    assert "Inconsistent with the ledger" in html and "attempt #1 status is odd" in html


def test_blocked_task_explains_the_spent_budget(viewer_client):
    task = TaskFactory(max_attempts=1)
    fail_current(task)
    services.task_retry_or_block(task_id=task.id)
    html = detail(viewer_client, task).content.decode()
    assert (
        'data-role="block-reason">Blocked: budget_exhausted: 1 of 1 attempts used; the last one ended in '
        "executor_failed" in html
    )


def test_draft_task_has_no_timeline_yet(operator_client):
    task = TaskFactory()
    html = detail(operator_client, task).content.decode()
    assert "No attempt yet" in html and "Launch task" in html


def test_unknown_task_is_404(viewer_client):
    assert viewer_client.get(reverse("task_detail", args=["no-such-task"])).status_code == 404


def test_fragments_for_htmx_and_the_full_page_without(viewer_client):
    task = TaskFactory()
    fail_current(task)
    url = reverse("task_detail", args=[task.slug])

    full = viewer_client.get(url).content.decode()
    live = viewer_client.get(url, **hx("task-live")).content.decode()
    ledger = viewer_client.get(url, {"tab": "ledger"}, **hx("task-live")).content.decode()
    actions = viewer_client.get(url, **hx("task-actions")).content.decode()

    assert full.startswith("<!doctype html>") and 'id="task-live"' in full and 'id="task-actions"' in full
    assert live.lstrip().startswith('<div id="task-live"') and 'id="task-actions"' not in live
    assert '<table class="grid events">' in ledger and "<html" not in ledger
    assert actions.lstrip().startswith('<aside id="task-actions"')


def test_polling_answers_204_until_the_task_changes(viewer_client):
    task = TaskFactory()
    fail_current(task)
    url = reverse("task_detail", args=[task.slug])
    version = viewer_client.get(url).context["version"]
    assert version == Event.objects.filter(task=task).latest("id").id

    assert viewer_client.get(url, **hx("task-live", HTTP_X_MC_SINCE=str(version))).status_code == 204
    # Another task's change does not wake this page.
    fail_current(TaskFactory())
    assert viewer_client.get(url, **hx("task-live", HTTP_X_MC_SINCE=str(version))).status_code == 204

    rerun(task)
    changed = viewer_client.get(url, **hx("task-live", HTTP_X_MC_SINCE=str(version)))
    assert changed.status_code == 200 and 'id="attempt-2"' in changed.content.decode()
    assert current(task).number == 2
    assert Attempt.objects.filter(task=task).count() == 2


# --- A long timeline: the newest attempts, older ones on request -------------------


@pytest.fixture
def window(monkeypatch):
    """A window of 3 attempts, so that a long timeline takes a few reruns."""
    from missioncontrol.web import views

    monkeypatch.setattr(views, "DETAIL_ATTEMPTS", 3)
    return 3


def shown_numbers(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<article class="attempt[^"]*" id="attempt-(\d+)"', html)]


def test_a_long_timeline_shows_the_newest_attempts_and_a_link_to_the_older_ones(viewer_client, window):
    task = rich_history(TaskFactory(), 5)  # attempts 1..6
    response = detail(viewer_client, task)
    html = response.content.decode()

    assert shown_numbers(html) == [6, 5, 4]
    link = re.search(r'<a [^>]*data-role="older-attempts"[^>]*>([^<]*)</a>', html, re.S)
    assert link, "no link to the older attempts"
    assert "Show 3 older attempts" in link.group(1)
    # Works without JavaScript (href) and with htmx (swaps the live part).
    assert f'href="{reverse("task_detail", args=[task.slug])}?tab=attempts&amp;attempts=all#attempt-3"' in link.group(0)
    assert 'hx-get="' in link.group(0) and "attempts=all" in link.group(0)
    assert 'Attempts <span class="n">6</span>' in html  # the tab counts every attempt
    # Runs of attempts outside the window are not read; those inside are.
    assert "stale-" + task.slug + "-4" in attempt_block(html, 5)
    assert f"stale-{task.slug}-0" not in html and f"nr-{task.slug}-0" not in html


def test_attempts_all_shows_the_whole_timeline_and_keeps_polling_it(viewer_client, window):
    task = rich_history(TaskFactory(), 5)
    html = detail(viewer_client, task, attempts="all").content.decode()

    assert shown_numbers(html) == [6, 5, 4, 3, 2, 1]
    assert 'data-role="older-attempts"' not in html
    assert f"stale-{task.slug}-0" in attempt_block(html, 1)  # the rejected run where it tried to bind
    assert 'href="#attempt-2">superseded by #2<' in attempt_block(html, 1)
    poller = re.search(r'<div class="poller"[^>]*>', html).group(0)
    assert "attempts=all" in poller
    assert "attempts=all" not in re.search(
        r'<div class="poller"[^>]*>', detail(viewer_client, task).content.decode()
    ).group(0)


def test_a_short_timeline_has_no_older_link(viewer_client, window):
    task = rich_history(TaskFactory(), 2)  # exactly the window
    html = detail(viewer_client, task).content.decode()
    assert shown_numbers(html) == [3, 2, 1]
    assert 'data-role="older-attempts"' not in html


def test_ledger_links_to_an_attempt_outside_the_window_open_the_whole_timeline(viewer_client, window):
    task = rich_history(TaskFactory(), 5)
    url = reverse("task_detail", args=[task.slug])
    html = detail(viewer_client, task, tab="ledger").content.decode()

    assert f'href="{url}?tab=attempts&amp;attempts=all#attempt-1">#1<' in html
    assert f'href="{url}?tab=attempts#attempt-6">#6<' in html
    assert f'href="{url}?tab=attempts#attempt-4">#4<' in html
    assert f'href="{url}?tab=attempts&amp;attempts=all#attempt-3">#3<' in html


def test_native_run_triage_links_an_old_claimed_attempt_to_the_whole_timeline(viewer_client, window):
    task = rich_history(TaskFactory(), 5)
    url = reverse("task_detail", args=[task.slug])
    html = viewer_client.get(reverse("native_runs")).content.decode()

    # stale-…-n claimed attempt n+1; attempts 4..6 are in the window.
    assert f'href="{url}?tab=attempts&amp;attempts=all#attempt-1">#1<' in html
    assert f'href="{url}?tab=attempts&amp;attempts=all#attempt-3">#3<' in html
    assert f'href="{url}#attempt-4">#4<' in html
    assert f'href="{url}#attempt-5">#5<' in html


# --- The page shows what the rows say (one rule, one decision) -----------------------


def _imported(task, **entry):
    import json

    from retries.history import retry_history_import

    AgentFactory(name="aemeath")
    retry_history_import(
        data=json.dumps(
            {
                "version": 1,
                "entries": [
                    {
                        "planningTaskId": task.slug,
                        "attemptId": None,
                        "attemptNumber": 1,
                        "requestedAt": "2026-11-02T09:14:00Z",
                        "requestedAssigneeId": "aemeath",
                        "nativeTaskId": "nt-1",
                        "nativeRunId": "nr-1",
                        "status": "failed",
                        "supersededAt": None,
                        "supersededByAttemptId": None,
                        **entry,
                    }
                ],
            }
        ),
        actor="importer",
    )


def test_imported_history_reads_imported_superseded_and_diagnoses_the_imported_failure(operator_client):
    task = TaskFactory()
    _imported(task)

    html = detail(operator_client, task).content.decode()

    assert "#None" not in html and "superseded by #" not in html
    assert '<span class="tag tag-superseded">imported, superseded</span>' in html
    assert "Not launched yet" not in html
    assert "imported failure" in html and "#1 of 3" in html
    # Nothing to cancel on a task with only imported history.
    assert 'id="cancel"' not in html
    assert 'data-role="rerun-preview"' in html and 'data-role="preview-assignee">aemeath<' in html


def test_cancel_is_offered_only_when_there_is_something_to_cancel(operator_client):
    running = TaskFactory()
    launch(running)
    failed = TaskFactory()
    fail_current(failed)
    cancelled = TaskFactory()
    launch(cancelled)
    services.task_cancel(slug=cancelled.slug, actor="op", reason="stop")

    assert 'id="cancel"' in detail(operator_client, running).content.decode()
    assert "Will cancel attempt #1" in detail(operator_client, running).content.decode()
    assert (
        "Will stop the automatic retries after attempt #1 (failed)." in detail(operator_client, failed).content.decode()
    )
    assert 'id="cancel"' not in detail(operator_client, cancelled).content.decode()
