from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import connection

from missioncontrol.celery import app as celery_app
from retries.integrity import integrity_problems
from tests.execution.conftest import BROKERS, _use_broker

# The real Celery worker of the alert and log tests: one fixture definition
# for both directories, so one worker (and one queue) per test process.
pytest_plugins = ["tests.observe_worker"]


def pytest_configure(config):
    config.addinivalue_line("markers", "damages_rows: the test breaks rows on purpose; skip the ledger check")


@pytest.fixture(autouse=True)
def _ledger_agrees_after_test(request):
    """After every test that touched the database, the rows must agree with
    the ledger (rule 7), unless the test damaged them on purpose."""
    yield
    uses_db = {"db", "transactional_db"} & set(request.fixturenames) or request.node.get_closest_marker("django_db")
    if not uses_db or request.node.get_closest_marker("damages_rows"):
        return
    problems = integrity_problems()
    assert not problems, "rows disagree with the ledger:\n" + "\n".join(map(str, problems))


@pytest.fixture(scope="session", autouse=True)
def _suite_runs_on_postgresql(django_db_setup, django_db_blocker):
    """The suite proves the rules on PostgreSQL; SQLite would hide locking bugs."""
    assert connection.vendor == "postgresql", "run the tests with DATABASE_URL pointing at PostgreSQL (make test)"
    name = connection.settings_dict["NAME"]
    if name.startswith("test_"):
        # The flush between transactional tests truncates every table; the
        # ledger refuses TRUNCATE unless the session allows it (planning
        # migration 0008). Allowed on this throw-away database only, for
        # every connection to it (workers and servers the tests start too).
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                f"ALTER DATABASE {connection.ops.quote_name(name)} SET missioncontrol.allow_ledger_truncate = 'on'"
            )
            cursor.execute("SET missioncontrol.allow_ledger_truncate = 'on'")


@pytest.fixture(scope="session", params=list(BROKERS))
def broker(request) -> Iterator[str]:
    """The broker of the real-worker tests (tests/execution, and the alert
    and log workers of tests/observe_worker.py), each in turn: this
    process's Celery app publishes there for as long as the tests of that
    broker run, and the workers started for it consume from it."""
    url = settings.TEST_BROKERS[request.param]
    assert url.split("://", 1)[0] in BROKERS[request.param], f"the {request.param} tests were given {url!r}"
    previous = celery_app.conf.broker_write_url
    _use_broker(url)
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=3)
    except Exception as exc:
        pytest.fail(f"{request.param} at {url} does not answer ({exc}); .ci/services.sh starts it", pytrace=False)
    yield url
    _use_broker(previous)
