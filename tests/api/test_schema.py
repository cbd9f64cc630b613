"""The OpenAPI schema documents every endpoint of API.md, and the docs page
is served without any CDN."""

import re

import pytest
import yaml

pytestmark = pytest.mark.django_db

PATHS = {
    "/api/v1/agents/": {"get", "post"},
    "/api/v1/agents/{name}/": {"get", "patch"},
    "/api/v1/projects/": {"get", "post"},
    "/api/v1/projects/{slug}/": {"get", "patch"},
    "/api/v1/procedures/": {"get", "post"},
    "/api/v1/procedures/{slug}/": {"get", "patch"},
    "/api/v1/plans/": {"get", "post"},
    "/api/v1/plans/{id}/": {"get"},
    "/api/v1/plans/{id}/resume/": {"post"},
    "/api/v1/tasks/": {"get", "post"},
    "/api/v1/tasks/{slug}/": {"get", "patch"},
    "/api/v1/tasks/{slug}/launch/": {"post"},
    "/api/v1/tasks/{slug}/rerun/": {"post"},
    "/api/v1/tasks/{slug}/repair/": {"post"},
    "/api/v1/tasks/{slug}/cancel/": {"post"},
    "/api/v1/tasks/{slug}/attempts/": {"get"},
    "/api/v1/tasks/{slug}/events/": {"get"},
    "/api/v1/attempts/{id}/": {"get"},
    "/api/v1/attempts/{id}/phases/": {"post"},
    "/api/v1/native-runs/": {"get", "post"},
    "/api/v1/native-runs/batch/": {"post"},
    # Extensions of API.md.
    "/api/v1/reruns/": {"post"},
    "/api/v1/tasks/{slug}/rerun/preview/": {"post"},
    "/api/v1/tasks/{slug}/repair/preview/": {"post"},
    "/api/v1/webhooks/": {"get", "post"},
    "/api/v1/webhooks/{id}/": {"get", "patch", "delete"},
    "/api/v1/webhooks/{id}/deliveries/": {"get"},
}


@pytest.fixture
def schema(viewer):
    response = viewer.get("/api/v1/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_every_endpoint_is_in_the_schema_with_error_responses(schema):
    assert schema["openapi"].startswith("3.")
    assert {path: set(ops) - {"parameters"} for path, ops in schema["paths"].items()} == PATHS
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert any(code.startswith("2") for code in responses), (path, method)
            assert {"401", "403"} <= set(responses), (path, method)
            if "{" in path:
                assert "404" in responses, (path, method)
            if "requestBody" in operation:
                assert {"400", "415"} <= set(responses), (path, method)


def test_action_conflicts_and_idempotency_are_documented(schema):
    rerun = schema["paths"]["/api/v1/tasks/{slug}/rerun/"]["post"]
    assert {"201", "409", "422"} <= set(rerun["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in rerun["parameters"])
    bulk = schema["paths"]["/api/v1/reruns/"]["post"]
    assert {"201", "404", "409", "422"} <= set(bulk["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in bulk["parameters"])
    phases = schema["paths"]["/api/v1/attempts/{id}/phases/"]["post"]
    assert {"200", "201", "409"} <= set(phases["responses"])
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"detail", "code"}


def test_the_docs_page_loads_nothing_from_a_cdn(viewer):
    response = viewer.get("/api/v1/docs/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("drf_spectacular_sidecar" in s for s in sources), sources
    assert not [s for s in sources if s.startswith(("http:", "https:", "//"))], sources
    # Its start-up script is served from the page's own URL, not inline (CSP).
    assert '<script src="/api/v1/docs/?script="></script>' in html
    script = viewer.get("/api/v1/docs/?script=", HTTP_ACCEPT="text/html")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "/api/v1/schema/" in script.content.decode()


def test_the_schema_states_the_limits_the_server_enforces(schema):
    from django.conf import settings

    info = schema["info"]["description"]
    assert str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) in info and str(settings.REQUEST_MAX_URL_BYTES) in info
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            assert "414" in operation["responses"], (path, method)
            if "requestBody" in operation:
                assert {"413", "415"} <= set(operation["responses"]), (path, method)
    report = schema["components"]["schemas"]["NativeRunReport"]["properties"]
    assert report["executor"]["minLength"] == 1 and report["phase"].get("minLength", 0) == 0


SAMPLES = ["", " ", "\t\n", "\x1c", "\u3000", "\u00a0x", "a\x00b", "\x00", "x", " x ", "\ufeff", "é", "a b"]


@pytest.mark.parametrize("allow_blank", [False, True])
@pytest.mark.parametrize("sample", SAMPLES)
def test_a_text_fields_pattern_accepts_exactly_what_the_field_does(allow_blank, sample):
    """The schema's pattern and DRF's field agree on every sample: a client
    (or schemathesis) that follows the schema is never refused, and nothing
    the schema forbids is accepted."""
    from rest_framework import serializers

    from missioncontrol.api.fields import StrictCharField
    from missioncontrol.api.schema import NO_NUL, NOT_BLANK

    field = StrictCharField(allow_blank=allow_blank)
    try:
        field.run_validation(sample)
        accepted = True
    except serializers.ValidationError:
        accepted = False
    pattern = NO_NUL if allow_blank else NOT_BLANK
    assert bool(re.search(pattern, sample)) == accepted, (sample, pattern)
