"""The body limit admits everything the contract allows and refuses more
with a 413 in the JSON shape; a database outage is a JSON 500 on the API
and a plain 500 page elsewhere, neither with a stack trace."""

from __future__ import annotations

import importlib
import json
import socket
import uuid

import pytest
from django.conf import settings
from django.db import connection
from rest_framework import serializers

from retries.models import NativeRun
from tests.hostile.conftest import assert_api_error, assert_html_error, no_change, session_client, token_client


def report_serializer_module():
    # The API modules are moving into missioncontrol/api/; either place.
    for name in (
        "missioncontrol.api.serializers.native_runs",
        "missioncontrol.api.serializers",
        "retries.api.serializers",
    ):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "NativeRunReportSerializer"):
            return module
    raise AssertionError("NativeRunReportSerializer not found")


def worst_case_report() -> dict:
    """A report with every field at its maximum, each text character
    written as the longest escape JSON needs for it without escaping
    non-ASCII (a control character, six bytes: \\u0001)."""
    fields = report_serializer_module().NativeRunReportSerializer().fields
    report = {}
    for name, field in fields.items():
        if isinstance(field, serializers.ChoiceField):
            report[name] = max(field.choices, key=len)
        elif isinstance(field, serializers.UUIDField):
            report[name] = str(uuid.uuid4())
        elif isinstance(field, serializers.DateTimeField):
            report[name] = "2026-11-02T09:14:00.123456789+00:00"
        else:
            assert field.max_length is not None, f"{name} has no maximum length: the body limit cannot cover it"
            report[name] = "\x01" * field.max_length
    return report


def test_the_largest_contract_valid_batch_fits_the_body_limit_with_a_margin():
    module = report_serializer_module()
    batch = {"reports": [worst_case_report()] * module.MAX_BATCH}
    size = len(json.dumps(batch, separators=(",", ":"), ensure_ascii=False).encode())
    assert 30_000_000 < size < settings.DATA_UPLOAD_MAX_MEMORY_SIZE * 0.85, size
    # The same in UTF-8 at four bytes a character is smaller still.
    assert size > len(
        json.dumps(
            {
                "reports": [
                    {
                        k: ("\U0001f600" * len(v) if isinstance(v, str) and v.startswith("\x01") else v)
                        for k, v in worst_case_report().items()
                    }
                ]
                * 500
            },
            ensure_ascii=False,
        ).encode()
    )


@pytest.mark.django_db
def test_a_batch_of_500_reports_with_6000_character_messages_is_accepted(world):
    executor = token_client("batch-bot", "executor")
    reports = [
        {
            "executor": "ext",
            "native_task_id": f"nt-{i}",
            "native_run_id": f"nr-big-{i}",
            "task": world["task"].slug,
            "status": "running",
            "phase": "execute",
            "message": "m" * 6000,
        }
        for i in range(500)
    ]
    raw = json.dumps({"reports": reports})
    assert len(raw) > 3_000_000  # over Django's default limit of 2.5 MB
    response = executor.post("/api/v1/native-runs/batch/", raw, content_type="application/json")
    assert response.status_code == 200, response.content[:500]
    assert len(response.json()["results"]) == 500
    assert NativeRun.objects.filter(native_run_id__startswith="nr-big-").count() == 500


@pytest.mark.django_db
def test_a_body_over_the_limit_is_a_413_before_it_is_read(world):
    executor = token_client("big-bot", "executor")
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    raw = b'{"reports": [' + b" " * (limit - 10) + b"]}"
    assert len(raw) == limit + 5
    with no_change():
        response = executor.post("/api/v1/native-runs/batch/", raw, content_type="application/json")
    assert str(limit) in assert_api_error(response, 413, "too_large")["detail"]
    # Refused by the Content-Length alone, whatever follows.
    with no_change():
        response = executor.post(
            "/api/v1/native-runs/", b"{}", content_type="application/json", CONTENT_LENGTH=str(limit + 1)
        )
    assert_api_error(response, 413, "too_large")
    # Anonymous too: nothing is read before the refusal.
    from rest_framework.test import APIClient

    assert_api_error(
        APIClient().post("/api/v1/native-runs/", b"{}", content_type="application/json", CONTENT_LENGTH=str(limit + 1)),
        413,
        "too_large",
    )


def test_the_parser_refuses_a_stream_longer_than_the_limit(settings):
    from io import BytesIO

    from missioncontrol.api.parsers import BodyTooLarge, JSONParser

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    with pytest.raises(BodyTooLarge):
        JSONParser().parse(BytesIO(b"[" + b"1," * 100 + b"1]"))
    assert JSONParser().parse(BytesIO(b'{"a": [1, 2]}')) == {"a": [1, 2]}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_a_database_outage_is_a_json_500_on_the_api_and_a_plain_page_elsewhere():
    api = token_client("outage-bot", "viewer")
    dashboard = session_client("outage-olga", "viewer")
    settings_dict = connection.settings_dict
    saved = settings_dict["HOST"], settings_dict["PORT"]
    connection.close()
    settings_dict["HOST"], settings_dict["PORT"] = "127.0.0.1", closed_port()
    try:
        api_response = api.get("/api/v1/tasks/")
        page_response = dashboard.get("/")
        health = dashboard.get("/healthz")
    finally:
        connection.close()
        settings_dict["HOST"], settings_dict["PORT"] = saved
    assert_api_error(api_response, 500, "server_error")
    html = assert_html_error(page_response, 500)
    assert "Server error" in html and "psycopg" not in html and "OperationalError" not in html
    assert health.status_code == 503
