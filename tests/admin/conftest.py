"""Admin users per role (roles are Django groups, as for the API), and a
small world in which every model has at least one row."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from retries import services
from tests.factories import PlanFactory, TaskFactory
from tests.steps import fail_current

ROLE_NAMES = ("viewer", "operator", "executor", "admin")


def make_client(username: str, role: str | None = None, *, staff: bool = True, superuser: bool = False) -> Client:
    user_model = get_user_model()
    if superuser:
        user = user_model.objects.create_superuser(username=username, password=None)
    else:
        # No password: hashing one costs more than the whole test.
        user = user_model.objects.create_user(username=username, is_staff=staff)
    if role:
        # get_or_create: a transactional test run before may have flushed the
        # groups the migration made.
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def clients(db):
    """Staff clients per role, a staff user in no role (``nobody``), a
    non-staff operator (``outsider``), a superuser and ``anonymous``."""
    made = {role: make_client(f"staff-{role}", role) for role in ROLE_NAMES}
    made["nobody"] = make_client("staff-nobody")
    made["outsider"] = make_client("not-staff-operator", "operator", staff=False)
    made["superuser"] = make_client("root", superuser=True)
    made["anonymous"] = Client()
    return made


@pytest.fixture
def world(db):
    """One row of every model: a plan with a task that failed once (phase,
    bound native run, retired ids) and was rerun with an idempotency key."""
    plan = PlanFactory()
    task = TaskFactory(slug="world-task", plan=plan, project=plan.project)
    attempt = services.task_launch(slug=task.slug, actor="tests").attempt
    services.attempt_record_phase(attempt_id=attempt.id, phase="preflight", outcome="passed", actor="executor")
    fail_current(task, native_run_id="nr-world")
    services.task_rerun(slug=task.slug, actor="tests", reason="again", idempotency_key="key-1")
    task.refresh_from_db()
    return task
