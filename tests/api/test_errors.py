"""One error shape for every 4xx: detail, code, and errors for fields."""

import pytest
from rest_framework.test import APIClient

from planning.models import Agent, Event
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_401_without_credentials_names_the_scheme(clients):
    response = clients["anonymous"].get("/api/v1/tasks/")
    assert_error(response, 401, "not_authenticated")
    assert response.headers["WWW-Authenticate"] == "Token"


def test_401_with_a_bad_token():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")
    assert_error(client.get("/api/v1/tasks/"), 401, "authentication_failed")


def test_403_for_a_role_that_may_not(clients):
    assert_error(clients["viewer"].post("/api/v1/agents/", {"name": "x"}), 403, "permission_denied")
    assert not Agent.objects.filter(name="x").exists()


def test_404_for_an_unknown_object_and_an_unknown_path(viewer):
    assert_error(viewer.get("/api/v1/tasks/no-such-task/"), 404, "not_found")
    assert_error(viewer.get("/api/v1/no-such-endpoint/"), 404, "not_found")
    assert_error(viewer.get("/api/v1/tasks/Not A Slug/"), 404, "not_found")
    assert_error(viewer.get("/api/v1/attempts/not-a-uuid/"), 404, "not_found")


def test_404_for_a_page_past_the_end(viewer):
    assert_error(viewer.get("/api/v1/agents/?page=9"), 404, "not_found")


def test_405_names_the_allowed_methods(admin):
    response = admin.delete("/api/v1/agents/")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET, POST, HEAD"


def test_malformed_json_is_a_400_and_changes_nothing(admin):
    before = Event.objects.count()
    response = admin.post("/api/v1/agents/", '{"name": ', content_type="application/json")
    assert_error(response, 400, "parse_error")
    assert Event.objects.count() == before


def test_415_for_a_body_that_is_not_json(admin):
    response = admin.post("/api/v1/agents/", "name=x", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")
    assert not Agent.objects.filter(name="x").exists()


def test_406_for_an_accept_header_that_is_not_json(viewer):
    assert_error(viewer.get("/api/v1/tasks/", HTTP_ACCEPT="text/csv"), 406, "not_acceptable")


def test_field_errors_map_each_field_to_its_messages(admin):
    body = assert_error(
        admin.post("/api/v1/agents/", {"name": "Bad Name", "kind": "robot", "active": "yes"}),
        400,
        "invalid",
        {"name", "kind", "active"},
    )
    assert body["detail"] == "The request has invalid fields."


def test_a_body_that_is_not_an_object_is_a_field_error(admin):
    assert_error(admin.post("/api/v1/agents/", [1, 2], format="json"), 400, "invalid", {"non_field_errors"})


@pytest.mark.parametrize(
    "query", ["page_size=0", "page_size=201", "page_size=ten", "page_size=", "page=", "page=0", "page=last", "page=-1"]
)
def test_bad_page_or_page_size_is_refused_not_silently_changed(viewer, query):
    assert_error(viewer.get(f"/api/v1/tasks/?{query}"), 400, "invalid", {query.split("=")[0]})


def test_schema_and_docs_errors_are_json_too(clients):
    for url, accept in (("/api/v1/schema/", "*/*"), ("/api/v1/docs/", "text/html")):
        assert_error(clients["anonymous"].get(url, HTTP_ACCEPT=accept), 401, "not_authenticated")
        assert_error(clients["outsider"].get(url, HTTP_ACCEPT=accept), 403, "permission_denied")


@pytest.mark.parametrize("query", ["status=", "plan=", "status=nope"])
def test_an_empty_choice_or_id_filter_is_refused(viewer, query):
    name = query.split("=")[0]
    assert_error(viewer.get(f"/api/v1/tasks/?{query}"), 400, "invalid", {name})


def test_a_path_with_a_newline_is_a_json_404(viewer, admin):
    assert_error(viewer.get("/api/v1/tasks/a%0Ab/events/"), 404, "not_found")
    assert_error(admin.post("/api/v1/no/such/thing/", {}), 404, "not_found")  # no CSRF page either
