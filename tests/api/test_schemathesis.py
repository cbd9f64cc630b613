"""Schemathesis over the whole OpenAPI schema, in-process against the WSGI
app, authenticated with an admin token, with every default check.

The schema is the one /api/v1/schema/ serves (checked below), generated at
collection so pytest can parametrize one test per operation; schemathesis'
lazy ``from_fixture`` loader does not run on pytest 9."""

import json
import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode

from missioncontrol.api.services import api_token_create
from tests.factories import TEST_EXECUTORS, AgentFactory, PlanFactory, ProcedureFactory, ProjectFactory, TaskFactory
from tests.steps import fail_current, launch

CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {
        "checks": {
            # Schema-valid input can still name things that do not exist
            # (an agent, a project, a plan of another project) or repeat an
            # Idempotency-Key with another body; API.md answers those with
            # 400 and 422, which no schema can rule out in advance.
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "400", "401", "403", "404", "409", "422"],
            },
            # schemathesis' own list, plus the documented limits: a fuzzed
            # query string can pass the 4,096 bytes of a URL (414).
            "negative_data_rejection": {
                "expected-statuses": [
                    "400",
                    "401",
                    "403",
                    "404",
                    "405",
                    "406",
                    "409",
                    "413",
                    "414",
                    "415",
                    "422",
                    "428",
                    "429",
                    "5xx",
                ],
            },
        },
        # Bounded so that `make test` stays short on 2 cores (about a minute
        # of CPU); raise it for a deeper local run.
        "generation": {"max-examples": int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "5"))},
    }
)


def served_schema() -> dict:
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


schema = schemathesis.openapi.from_dict(served_schema(), config=CONFIG)
schema.app = get_wsgi_application()


@pytest.fixture
def in_test_transaction():
    """Requests to the real WSGI app stay inside the test's transaction: as
    Django's test client does, the end of a request must not close the
    connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def auth(db, settings):
    settings.ALLOWED_HOSTS = ["*"]
    # Something to find: the fuzzer's reads and actions meet real rows too.
    owner = AgentFactory(name="owner-bot")
    project = ProjectFactory(slug="policy", owner=owner)
    procedure = ProcedureFactory(slug="aemeath")
    PlanFactory(project=project)
    for n in range(3):
        task = TaskFactory(slug=f"task-{n}", project=project, procedure=procedure)
        if n:
            launch(task)
        if n == 2:
            fail_current(task)
    # An admin that is also an executor, so that the executor endpoints are
    # exercised past the role check too.
    api_token_create(username="fuzz-admin", role="executor", executors=TEST_EXECUTORS)
    token = api_token_create(username="fuzz-admin", role="admin")
    return {"Authorization": f"Token {token.key}"}


@pytest.mark.django_db
def test_the_fuzzed_schema_is_the_served_one(admin):
    response = admin.get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    assert json.loads(response.content) == served_schema()


OPERATIONS = {result.ok().label: result.ok() for result in schema.get_all_operations()}
MAX_EXAMPLES = CONFIG.projects.default.generation.max_examples


# One test per operation and generation mode, with ids of their own: the
# tests schema.parametrize() makes share one node id, and pytest-xdist ran
# only the first of them (39 of 41 operations were never fuzzed in make test).
@pytest.mark.django_db
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_api_conforms_to_its_schema(label, mode, auth, in_test_transaction):
    @given(case=OPERATIONS[label].as_strategy(generation_mode=mode))
    @hypothesis_settings(
        max_examples=MAX_EXAMPLES,
        suppress_health_check=list(HealthCheck),
        deadline=None,
        database=None,
        # The same examples on every run, so make test is repeatable;
        # SCHEMATHESIS_RANDOM=1 explores new ones.
        derandomize=not os.environ.get("SCHEMATHESIS_RANDOM"),
    )
    def conforms(case):
        case.call_and_validate(headers=auth)

    conforms()


def test_every_operation_is_fuzzed():
    assert len(OPERATIONS) == sum(1 for _ in schema.get_all_operations()) >= 40
