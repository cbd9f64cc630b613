"""POST /tasks/{slug}/rerun/preview/ and /repair/preview/ (an extension of
API.md): the action's own decision, or its refusal with the code the action
would answer; same body and roles as the action; nothing is ever written."""

import threading

import pytest
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext

from planning import services as planning_services
from planning.models import Event, PlanningTask
from retries import services
from retries.models import Attempt, NativeRun, RetiredNativeId
from tests.api.conftest import assert_error
from tests.factories import AgentFactory, TaskFactory
from tests.steps import fail_current, launch

pytestmark = pytest.mark.django_db


def counts() -> tuple:
    return tuple(m.objects.count() for m in (PlanningTask, Attempt, NativeRun, RetiredNativeId, Event))


def url(task, action="rerun") -> str:
    return f"/api/v1/tasks/{task.slug}/{action}/preview/"


def test_a_rerun_preview_says_what_the_rerun_will_do(operator):
    task = TaskFactory()
    old = fail_current(task, native_run_id="nr-1")
    AgentFactory(name="chosen")
    before = counts()

    body = operator.post(url(task), {"reason": "again", "assignee": "chosen"}, format="json").json()

    assert counts() == before
    assert body["allowed"] is True and body["refusal"] is None and body["action"] == "rerun"
    attempt = body["attempt"]
    assert (attempt["number"], attempt["kind"], attempt["requested_assignee"], attempt["assignee_source"]) == (
        2,
        "rerun",
        "chosen",
        "explicit",
    )
    assert attempt["supersedes"] == {"id": str(old.id), "number": 1, "cancels": False}
    assert {(r["kind"], r["value"]) for r in attempt["retires_native_ids"]} == {("run", "nr-1"), ("task", "nt-nr-1")}
    assert attempt["budget"] == {"used": 2, "max": 3, "left": 1, "over_budget": False}
    assert body["summary"].startswith("start rerun attempt #2 for chosen (explicit)")

    made = operator.post(f"/api/v1/tasks/{task.slug}/rerun/", {"reason": "again", "assignee": "chosen"}, format="json")
    assert made.status_code == 201 and made.json()["number"] == attempt["number"]
    assert made.json()["requested_assignee"] == "chosen"


@pytest.mark.parametrize(
    ("setup", "flags", "code"),
    [
        ("running", {}, "attempt_active"),
        ("succeeded", {}, "use_repair"),
        ("draft", {}, "not_launched"),
        ("spent", {}, "budget_exhausted"),
    ],
)
def test_a_refused_rerun_is_previewed_with_the_code_the_rerun_answers(operator, setup, flags, code):
    task = TaskFactory(max_attempts=1)
    if setup == "running":
        launch(task)
    elif setup == "succeeded":
        from tests.steps import report

        report(task, status="succeeded", native_run_id="nr-ok", attempt=launch(task))
    elif setup == "spent":
        fail_current(task)
    before = counts()

    preview = operator.post(url(task), {"reason": "x", **flags}, format="json")
    action = operator.post(f"/api/v1/tasks/{task.slug}/rerun/", {"reason": "x", **flags}, format="json")

    assert preview.status_code == 200 and counts() == before
    assert preview.json()["allowed"] is False and preview.json()["attempt"] is None
    assert preview.json()["refusal"]["code"] == code
    assert_error(action, 409, code)


def test_a_repair_preview_names_the_status_put_back_from_the_ledger(operator):
    task = TaskFactory()
    fail_current(task)
    body = operator.post(url(task, "repair"), {"reason": "fix"}, format="json").json()
    assert body["allowed"] and body["attempt"]["kind"] == "repair" and body["restores_status"] is None
    draft = TaskFactory()
    refused = operator.post(url(draft, "repair"), {"reason": "fix"}, format="json").json()
    assert refused["refusal"]["code"] == "not_launched"


def test_bad_input_is_the_actions_400_and_an_unknown_task_a_404(operator):
    task = TaskFactory()
    fail_current(task)
    AgentFactory(name="gone", active=False)
    assert_error(operator.post(url(task), {"reason": " "}, format="json"), 400, "invalid", {"reason"})
    assert_error(
        operator.post(url(task), {"reason": "x", "assignee": "gone"}, format="json"), 400, "invalid", {"assignee"}
    )
    assert_error(
        operator.post("/api/v1/tasks/no-such-task/rerun/preview/", {"reason": "x"}, format="json"), 404, "not_found"
    )


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("operator", 200),
        ("admin", 200),
        ("viewer", 403),
        ("executor", 403),
        ("outsider", 403),
        ("anonymous", 401),
    ],
)
def test_roles_are_the_actions(clients, role, status):
    task = TaskFactory()
    fail_current(task)
    for action in ("rerun", "repair"):
        response = clients[role].post(url(task, action), {"reason": "x"}, format="json")
        assert response.status_code == status, (action, response.content)


@pytest.mark.django_db(transaction=True)
def test_previews_never_write_even_while_reruns_run_beside_them():
    """Previews on their own connections, in threads, while another thread
    reruns the same tasks: every statement a preview sends is a read."""
    tasks = [TaskFactory() for _ in range(3)]
    for task in tasks:
        fail_current(task)
    statements: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def preview_loop():
        try:
            with CaptureQueriesContext(connection) as queries:
                while not stop.is_set():
                    services.task_rerun_previews(slugs=[t.slug for t in tasks], reason="look")
                    services.task_repair_previews(slugs=[t.slug for t in tasks])
                    for task in tasks:
                        services.task_page_previews(
                            PlanningTask.objects.select_related("procedure", "project__owner", "plan", "assignee").get(
                                pk=task.pk
                            )
                        )
            statements.extend(q["sql"] for q in queries.captured_queries)
        except BaseException as exc:
            errors.append(exc)
        finally:
            close_old_connections()

    def rerun_loop():
        try:
            for _ in range(4):
                for task in tasks:
                    services.task_rerun(
                        slug=task.slug, actor="op", reason="busy", supersede_active=True, override_budget=True
                    )
        finally:
            stop.set()
            close_old_connections()

    threads = [threading.Thread(target=preview_loop) for _ in range(2)] + [threading.Thread(target=rerun_loop)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert statements, "the previews ran"
    writes = [sql for sql in statements if not sql.lstrip().upper().startswith("SELECT")]
    assert writes == []
    assert Attempt.objects.filter(task__in=tasks).count() == 3 * 5


def test_a_preview_changes_nothing_for_a_task_with_only_imported_history(operator, tmp_path):
    import json

    from retries.history import retry_history_import

    AgentFactory(name="aemeath")
    task = TaskFactory()
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
                    }
                ],
            }
        ),
        actor="importer",
    )
    planning_services.task_update(slug=task.slug, assignee=task.project.owner.name, actor="x")
    before = counts()
    body = operator.post(url(task), {"reason": "after migration"}, format="json").json()
    assert counts() == before
    assert body["attempt"]["requested_assignee"] == "aemeath"
    assert body["attempt"]["assignee_source"] == "previous imported attempt #1"
    assert body["attempt"]["supersedes"] is None
