"""Metrics across processes: two gunicorn workers serve a known sequence
(launch, fail, rerun, a stale report refused as superseded), a separate
process runs the reconcile task that fails the rerun as stalled and blocks
the task, and one scrape shows exactly those increments, summed by
prometheus-client's multiprocess mode from every process that committed."""

import concurrent.futures
import json
import time
from collections import Counter

import pytest
import requests
from django.db.models import Count
from prometheus_client.mmap_dict import MmapedDict

from missioncontrol.api.services import api_token_create
from planning.models import Event
from tests.factories import TEST_EXECUTORS, ProcedureFactory, ProjectFactory, TaskFactory
from tests.metrics.helpers import increments, parse, value
from tests.servers import Gunicorn, project_env, run_python

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("gunicorn")]

DOMAIN = (
    "mc_attempts_started_total",
    "mc_operator_actions_total",
    "mc_native_run_reports_total",
    "mc_native_run_bindings_total",
    "mc_attempt_stalls_total",
    "mc_budget_exhaustions_total",
    "mc_tasks_marked_inconsistent_total",
    "mc_plans_paused_total",
)


@pytest.fixture
def multiproc_env(tmp_path):
    directory = tmp_path / "prometheus"
    directory.mkdir()
    # The memory transport: alerts enqueued by these processes go nowhere.
    # Heartbeat coalescing shortened as in tests/settings.py: the stall below
    # is waited for in real time.
    return project_env(
        PROMETHEUS_MULTIPROC_DIR=str(directory),
        CELERY_BROKER_URL="memory://",
        LOG_FORMAT="json",
        HEARTBEAT_COALESCE_SECONDS="0.5",
    )


@pytest.fixture
def server(multiproc_env, tmp_path):
    gunicorn = Gunicorn(workers=2, env=multiproc_env, log_path=tmp_path / "gunicorn.log")
    try:
        yield gunicorn.wait_ready()
    finally:
        gunicorn.stop()  # also when it never answered: nothing is left running


def http_pids(directory) -> set[int]:
    """The processes whose files hold HTTP request counts."""
    pids = set()
    for path in directory.glob("histogram_*.db"):
        for key, count, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            name = json.loads(key)[1]
            # A process's file holds per-bucket (not cumulative) counts.
            if name == "mc_http_request_duration_seconds_bucket" and count > 0:
                pids.add(int(path.stem.rsplit("_", 1)[1]))
    return pids


def test_one_scrape_sums_every_process(server, multiproc_env, tmp_path):
    operator = {"Authorization": f"Token {api_token_create(username='op', role='operator').key}"}
    executor = {
        "Authorization": f"Token {api_token_create(username='exe', role='executor', executors=TEST_EXECUTORS).key}"
    }
    scraper = {"Authorization": f"Token {api_token_create(username='prom', role='metrics').key}"}
    procedure = ProcedureFactory(max_attempts=2, stall_timeout_seconds=1)
    task = TaskFactory(project=ProjectFactory(), procedure=procedure)
    api = f"{server.url}/api/v1"

    def post(path: str, body: dict, headers: dict, expect: tuple = (200, 201)) -> dict:
        response = requests.post(f"{api}{path}", json=body, headers=headers, timeout=30)
        assert response.status_code in expect, response.text
        return response.json()

    def report(run_id: str, status: str, attempt_id: str) -> dict:
        return post(
            "/native-runs/",
            {
                "executor": "ext",
                "native_task_id": f"nt-{run_id}",
                "native_run_id": run_id,
                "task": task.slug,
                "attempt_id": attempt_id,
                "status": status,
            },
            executor,
        )

    def scrape() -> dict:
        response = requests.get(f"{server.url}/metrics", headers=scraper, timeout=30)
        assert response.status_code == 200, response.text
        return parse(response.text)

    # Anonymous and viewer scrapes are refused here too.
    assert requests.get(f"{server.url}/metrics", timeout=30).status_code == 401
    viewer = {"Authorization": f"Token {api_token_create(username='eye', role='viewer').key}"}
    refused = requests.get(f"{server.url}/metrics", headers=viewer, timeout=30)
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"

    before = scrape()
    first_event = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0

    first = post(f"/tasks/{task.slug}/launch/", {}, operator)  # launch
    report("run-1", "running", first["id"])
    report("run-1", "failed", first["id"])  # fail
    second = post(f"/tasks/{task.slug}/rerun/", {"reason": "try again"}, operator)  # rerun
    stale = report("run-1-late", "running", first["id"])  # stale report
    assert (stale["binding"]["state"], stale["binding"]["reason"]) == ("rejected", "superseded")
    report("run-2", "running", second["id"])
    time.sleep(2)  # past the 1 s stall timeout and the 0.5 s of coalescing
    # Another process: the reconcile task fails the silent attempt as
    # stalled and, the budget of 2 spent, blocks the task.
    out = run_python("from retries.tasks import reconcile; print(reconcile())", multiproc_env)
    assert "'stalled': 1" in out and "'blocked': 1" in out, out
    # A burst, so that both workers serve requests.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: requests.get(f"{server.url}/healthz", timeout=30), range(24)))

    after = scrape()
    assert increments(before, after, *DOMAIN) == {
        ("mc_attempts_started_total", frozenset({("kind", "initial")})): 1,
        ("mc_attempts_started_total", frozenset({("kind", "rerun")})): 1,
        ("mc_operator_actions_total", frozenset({("action", "launch")})): 1,
        ("mc_operator_actions_total", frozenset({("action", "rerun")})): 1,
        ("mc_native_run_reports_total", frozenset({("kind", "new")})): 3,
        ("mc_native_run_reports_total", frozenset({("kind", "status")})): 1,
        ("mc_native_run_bindings_total", frozenset({("outcome", "bound"), ("reason", "")})): 2,
        ("mc_native_run_bindings_total", frozenset({("outcome", "rejected"), ("reason", "superseded")})): 1,
        ("mc_attempt_stalls_total", frozenset()): 1,
        ("mc_budget_exhaustions_total", frozenset()): 1,
    }
    # Every committed fact counted exactly once, whichever process committed it.
    facts = Counter(
        dict(Event.objects.filter(id__gt=first_event).values_list("type").annotate(n=Count("id")).order_by())
    )
    counted = {
        dict(labels)["type"]: n for (name, labels), n in increments(before, after, "mc_ledger_events_total").items()
    }
    assert counted == dict(facts)
    statuses = Counter(e.data["status"] for e in Event.objects.filter(id__gt=first_event, type="task.status_changed"))
    assert {
        dict(labels)["status"]: n
        for (name, labels), n in increments(before, after, "mc_task_status_changes_total").items()
    } == dict(statuses)
    assert statuses["blocked"] == 1 and statuses["failed"] == 2

    # The reconcile pass, timed in its own process.
    assert (
        value(after, "mc_reconcile_pass_duration_seconds_count")
        - value(before, "mc_reconcile_pass_duration_seconds_count")
        == 1
    )
    assert value(after, "mc_reconcile_passes_total", result="done") == 1
    # HTTP latency by view and status, from both workers.
    assert (
        value(after, "mc_http_request_duration_seconds_count", view="api:task-launch", method="POST", status="201") == 1
    )
    assert value(after, "mc_http_request_duration_seconds_count", view="metrics", method="GET", status="403") == 1
    assert len(http_pids(tmp_path / "prometheus")) == 2
    # The database gauges, as the projection has them.
    assert value(after, "mc_tasks", status="blocked") == 1
