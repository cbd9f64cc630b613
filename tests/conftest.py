import pytest
from django.db import connection

from retries.integrity import integrity_problems

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
