"""Headers: a strict Content-Security-Policy everywhere, no-store on every
answer to a logged-in user, cacheable nothing private."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


def test_dashboard_admin_and_login_carry_a_strict_csp(world, dashboard, staff):
    for client, path in [
        (dashboard, "/"),
        (dashboard, f"/tasks/{world['task'].slug}/"),
        (dashboard, "/plans/"),
        (dashboard, "/native-runs/"),
        (staff, "/admin/"),
        (staff, "/admin/planning/planningtask/"),
        (Client(), "/accounts/login/"),
    ]:
        response = client.get(path)
        assert response.status_code == 200, path
        csp = policy(response)
        assert csp["default-src"] == ["'none'"]
        assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"], csp
        assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"]
        html = response.content.decode()
        # No inline script, inline handler or inline style in what we serve.
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\son[a-z]+\s*=", html), path
        if not path.startswith("/admin/"):
            assert not re.search(r"\sstyle\s*=", html) and "<style" not in html, path


def test_htmx_is_told_not_to_inject_styles_or_evaluate_code(dashboard):
    html = dashboard.get("/").content.decode()
    config = re.search(r'<meta name="htmx-config" content=\'([^\']+)\'>', html).group(1)
    assert '"includeIndicatorStyles":false' in config and '"allowEval":false' in config
    assert "[!" not in html  # no hx-trigger filter expression (evaluated code)


def test_error_pages_carry_the_csp_too(dashboard, operator):
    assert "Content-Security-Policy" in dashboard.get("/tasks/%00/")
    assert "Content-Security-Policy" in operator.get("/api/v1/nowhere/")


def test_logged_in_answers_are_not_stored(world, dashboard, staff, operator):
    for client, path in [
        (dashboard, "/"),
        (dashboard, f"/tasks/{world['task'].slug}/"),
        (staff, "/admin/"),
        (operator, "/api/v1/tasks/"),
        (operator, f"/api/v1/tasks/{world['task'].slug}/"),
        (dashboard, "/no-such-page/"),
    ]:
        cache_control = {d.strip() for d in client.get(path)["Cache-Control"].split(",")}
        assert {"no-store", "private"} <= cache_control, (path, cache_control)


def test_the_api_docs_work_under_their_own_policy(operator):
    response = operator.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_healthz_for_anonymous_is_not_marked_private(db):
    response = Client().get("/healthz")
    assert "no-store" not in response.get("Cache-Control", "")
