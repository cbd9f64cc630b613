"""Hostile bodies, paths, queries and headers on the API: each one answered
with the right status in the JSON error shape, and nothing written."""

from __future__ import annotations

import json

import pytest

from tests.hostile.conftest import assert_api_error, no_change

pytestmark = pytest.mark.django_db

DEEP = "[" * 3000 + "]" * 3000


def write_endpoints(world) -> list[tuple[str, dict]]:
    """Each write endpoint with a body it accepts (apart from the attack)."""
    task, attempt = world["task"], world["attempt"]
    report = {
        "executor": "ext",
        "native_task_id": "nt-x",
        "native_run_id": "nr-x",
        "task": task.slug,
        "status": "running",
    }
    return [
        ("/api/v1/tasks/", {"slug": "new-task", "title": "New", "project": "policy", "procedure": "aemeath"}),
        (f"/api/v1/tasks/{task.slug}/rerun/", {"reason": "again"}),
        ("/api/v1/native-runs/", report),
        ("/api/v1/native-runs/batch/", {"reports": [report]}),
        (f"/api/v1/attempts/{attempt.id}/phases/", {"phase": "preflight", "outcome": "passed"}),
    ]


def client_for(path: str, operator, executor):
    return executor if path.startswith(("/api/v1/native-runs", "/api/v1/attempts")) else operator


def test_deep_nesting_is_a_400_on_every_write_endpoint(world, operator, executor):
    for path, _ in write_endpoints(world):
        with no_change():
            response = client_for(path, operator, executor).post(path, DEEP, content_type="application/json")
        body = assert_api_error(response, 400, "invalid")
        assert "deep" in body["detail"], body


def test_deep_nesting_inside_a_valid_object_is_refused_too(world, operator):
    params = {"a": json.loads("[" * 70 + "]" * 70)}
    body = {"slug": "deep", "title": "Deep", "project": "policy", "procedure": "aemeath", "params": params}
    with no_change():
        response = operator.post("/api/v1/tasks/", json.dumps(body), content_type="application/json")
    assert "levels deep" in assert_api_error(response, 400, "invalid")["detail"]


def test_brackets_inside_strings_do_not_count_as_nesting(world, operator):
    body = {
        "slug": "brackets",
        "title": "[" * 150,
        "project": "policy",
        "procedure": "aemeath",
        "params": {"note": "{" * 500},
    }
    response = operator.post("/api/v1/tasks/", json.dumps(body), content_type="application/json")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "\x00", "nul\x00inside"])
def test_nul_and_lone_surrogates_are_refused_with_the_field_named_and_not_echoed(world, operator, executor, text):
    task = world["task"]
    cases = [
        (operator, f"/api/v1/tasks/{task.slug}/rerun/", {"reason": text}, "reason"),
        (
            executor,
            "/api/v1/native-runs/",
            {
                "executor": "ext",
                "native_task_id": "nt-1",
                "native_run_id": "nr-1",
                "task": task.slug,
                "status": text,
            },
            "status",
        ),
        (
            executor,
            "/api/v1/native-runs/batch/",
            {
                "reports": [
                    {
                        "executor": "ext",
                        "native_task_id": "nt-1",
                        "native_run_id": "nr-1",
                        "task": task.slug,
                        "status": "running",
                        "message": text,
                    }
                ]
            },
            "reports",
        ),
        (
            operator,
            "/api/v1/tasks/",
            {"slug": "t", "title": "t", "project": "policy", "procedure": "aemeath", "params": {"k": [text]}},
            "params",
        ),
        (executor, f"/api/v1/attempts/{world['attempt'].id}/phases/", {"phase": text, "outcome": "passed"}, "phase"),
    ]
    for client, path, payload, field in cases:
        # json.dumps writes "\ud800" as the escape a hostile client sends.
        raw = json.dumps(payload)
        with no_change():
            response = client.post(path, raw, content_type="application/json")
        body = assert_api_error(response, 400, "invalid")
        assert field in body["errors"], body
        if field == "reports":
            assert "(at reports.0.message)" in body["errors"]["reports"][0]
        response.content.decode("utf-8")  # valid UTF-8: nothing undecodable echoed
        assert "\\ud800" not in response.content.decode() and "\\udfff" not in response.content.decode()
        assert "\\u0000" not in response.content.decode()


def test_a_key_with_a_lone_surrogate_is_refused_without_showing_it(world, operator):
    raw = '{"slug": "k", "title": "k", "project": "policy", "procedure": "aemeath", "params": {"\\ud800": 1}}'
    with no_change():
        response = operator.post("/api/v1/tasks/", raw, content_type="application/json")
    body = assert_api_error(response, 400, "invalid")
    assert body["errors"] == {
        "params": ["Text may not contain NUL characters or unpaired surrogates (at params.(key))."]
    }


def test_text_can_only_turn_bad_through_an_escape(world, operator):
    """The parser looks for NUL and surrogates only in bodies with a ``\\u``
    escape (decoded UTF-8 holds none, and JSON refuses a raw NUL): a raw NUL
    is a parse error, and a literal backslash before a ``u`` is only text."""
    slug = world["task"].slug
    with no_change():
        response = operator.post(
            f"/api/v1/tasks/{slug}/rerun/", b'{"reason": "raw\x00nul"}', content_type="application/json"
        )
    assert_api_error(response, 400, "parse_error")
    literal = "C:\\users\\u0000 and \\ud800"  # backslashes, not escapes
    response = operator.post(
        "/api/v1/tasks/",
        json.dumps({"slug": "lit", "title": literal, "project": "policy", "procedure": "aemeath"}),
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["title"] == literal


@pytest.mark.parametrize(
    "field, value",
    [("attempt_id", "0b9f2a4e-4c1d-4f5e-9a7b-2d3c4e5f6a7b\n"), ("created_at", "2026-11-02T09:14:00Z\n")],
)
def test_an_id_or_time_with_a_trailing_newline_is_a_400(world, executor, field, value):
    """A pattern's "$" matches before a final newline: the UUID field let one
    through to uuid.UUID(), which raised (a 500)."""
    report = {
        "executor": "ext",
        "native_task_id": "nt-nl",
        "native_run_id": "nr-nl",
        "task": world["task"].slug,
        "status": "running",
        field: value,
    }
    for path, body, where in (
        ("/api/v1/native-runs/", report, field),
        ("/api/v1/native-runs/batch/", {"reports": [report]}, "0"),
    ):
        with no_change():
            response = executor.post(path, json.dumps(body), content_type="application/json")
        answer = assert_api_error(response, 400, "invalid")
        assert where in answer["errors"], answer


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1E999", "0.5e309"])
def test_a_number_too_large_to_store_is_a_400_not_a_500(world, operator, number):
    """JSON allows it, Python reads it as infinity, PostgreSQL's JSON refuses
    infinity: a task's params with one answered 500."""
    slug = world["task"].slug
    for method, path, raw in (
        ("post", "/api/v1/tasks/", '{"slug": "big", "title": "t", "project": "policy", "procedure": "aemeath", '
         f'"params": {{"x": [{{"y": {number}}}]}}}}'),
        ("patch", f"/api/v1/tasks/{slug}/", f'{{"params": {{"x": {number}}}}}'),
    ):  # fmt: skip
        with no_change():
            response = getattr(operator, method)(path, raw, content_type="application/json")
        answer = assert_api_error(response, 400, "parse_error")
        assert "number too large" in answer["detail"]


@pytest.mark.parametrize("path", ["/api/v1/docs/", "/api/v1/schema/"])
def test_the_schema_and_docs_pages_answer_options_with_a_405(world, operator, path):
    """OPTIONS had the docs page render DRF's metadata through its HTML
    template: a 500."""
    assert_api_error(operator.options(path), 405, "method_not_allowed")
    for method in ("post", "put", "delete"):  # refused by role before the method is looked at
        assert_api_error(getattr(operator, method)(path), 403, "permission_denied")
    assert operator.get(path).status_code == 200


def test_a_body_that_is_not_utf8_is_a_parse_error(world, operator):
    with no_change():
        response = operator.post(
            f"/api/v1/tasks/{world['task'].slug}/rerun/", b'{"reason": "\xff\xfe"}', content_type="application/json"
        )
    assert_api_error(response, 400, "parse_error")


def test_nan_and_huge_numbers_are_parse_errors(world, operator):
    for raw in ('{"reason": NaN}', '{"reason": "x", "override_budget": ' + "9" * 5000 + "}"):
        with no_change():
            response = operator.post(f"/api/v1/tasks/{world['task'].slug}/rerun/", raw, content_type="application/json")
        assert_api_error(response, 400, "parse_error")


@pytest.mark.parametrize("charset", ["rot13", "utf-16", "utf-32", "x-unknown", "utf-7", "cp500"])
def test_a_charset_other_than_utf8_is_415(world, operator, charset):
    try:
        raw = json.dumps({"reason": "again"}).encode(charset)
    except LookupError:
        raw = b'{"reason": "again"}'
    with no_change():
        response = operator.generic(
            "POST",
            f"/api/v1/tasks/{world['task'].slug}/rerun/",
            raw,
            content_type=f"application/json; charset={charset}",
        )
    body = assert_api_error(response, 415, "unsupported_media_type")
    assert charset not in body["detail"]


def test_utf8_and_ascii_charsets_are_accepted(world, operator):
    for charset in ("utf-8", "UTF8", "us-ascii"):
        response = operator.generic("GET", "/api/v1/tasks/", content_type=f"application/json; charset={charset}")
        assert response.status_code == 200, (charset, response.content)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/tasks/%00/",
        "/api/v1/tasks/a%00b/rerun/",
        "/api/v1/tasks/?status=%00",
        "/api/v1/tasks/?search=x%00",
        "/api/v1/native-runs/?task=%00",
        "/api/v1/tasks/?%00=1",
    ],
)
def test_nul_in_the_path_or_query_is_a_400(world, operator, path):
    method = operator.post if path.endswith("/rerun/") else operator.get
    with no_change():
        response = method(path, {"reason": "x"}, format="json") if method == operator.post else method(path)
    body = assert_api_error(response, 400, "invalid")
    assert set(body["errors"]) <= {"path", "query"}


def test_a_long_url_is_a_414(world, operator):
    with no_change():
        response = operator.get("/api/v1/tasks/", {"search": "x" * 5000})
    assert_api_error(response, 414, "uri_too_long")


def test_an_empty_idempotency_key_is_a_400(world, operator):
    with no_change():
        response = operator.post(
            f"/api/v1/tasks/{world['task'].slug}/rerun/", {"reason": "again"}, format="json", HTTP_IDEMPOTENCY_KEY=""
        )
    assert "Idempotency-Key" in assert_api_error(response, 400, "invalid")["errors"]


@pytest.mark.parametrize("key", [" ", "a b", "é", "x" * 201, "\t"])
def test_a_malformed_idempotency_key_is_a_400(world, operator, key):
    with no_change():
        response = operator.post(
            f"/api/v1/tasks/{world['task'].slug}/rerun/", {"reason": "again"}, format="json", HTTP_IDEMPOTENCY_KEY=key
        )
    assert_api_error(response, 400, "invalid")


def test_an_unknown_host_is_a_json_400(world, operator):
    response = operator.get("/api/v1/tasks/", HTTP_HOST="evil.example")
    body = assert_api_error(response, 400, "bad_request")
    assert "evil" not in json.dumps(body)


def test_paths_outside_the_router_are_json_404s(operator):
    for path in ("/api/v2/tasks/", "/api/", "/api/v2", "/api/v1/tasks/Not A Slug/rerun/"):
        assert_api_error(operator.get(path), 404, "not_found")


def test_a_non_json_error_under_the_api_becomes_the_json_shape():
    from django.http import HttpResponse, HttpResponseNotAllowed

    from missioncontrol.errorpages import as_api_error

    response = as_api_error(HttpResponseNotAllowed(["GET"]))
    assert response.status_code == 405 and response["Allow"] == "GET"
    assert json.loads(response.content) == {
        "detail": "This method is not allowed at this path.",
        "code": "method_not_allowed",
    }
    assert json.loads(as_api_error(HttpResponse("<h1>x</h1>", status=503)).content)["code"] == "unavailable"
    ok = HttpResponse("fine")
    assert as_api_error(ok) is ok


def test_a_form_post_to_the_api_is_still_415(world, operator):
    with no_change():
        response = operator.post(
            f"/api/v1/tasks/{world['task'].slug}/rerun/", "reason=x", content_type="application/x-www-form-urlencoded"
        )
    assert_api_error(response, 415, "unsupported_media_type")


def test_a_malformed_content_length_is_a_400(world, operator):
    with no_change():
        response = operator.post(
            f"/api/v1/tasks/{world['task'].slug}/rerun/", {"reason": "x"}, format="json", CONTENT_LENGTH="12abc"
        )
    assert_api_error(response, 400, "bad_request")
