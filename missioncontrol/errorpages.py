"""Answers for requests that fail outside a view's own error handling.

Under ``/api/`` every one is the API's JSON error shape ``{"detail",
"code", "errors"?}``; elsewhere a small HTML page. Neither names the value
that was refused nor shows a stack trace, and neither touches the database
(the 500 page must render while the database is down).

``missioncontrol.urls`` installs the handlers (handler400/403/404/500);
``missioncontrol.middleware`` answers with ``error_response`` and passes
every API answer through ``as_api_error``; ``missioncontrol.wsgi`` uses
``wsgi_error`` for the few requests Django cannot even build.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader

logger = logging.getLogger("missioncontrol.errors")

API_PREFIX = "/api/"

# A stable word and a sentence for each status an answer may have when no
# view chose them.
DEFAULTS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request is malformed."),
    401: ("not_authenticated", "Authentication is required: send 'Authorization: Token <key>' or log in."),
    403: ("permission_denied", "This request is not allowed."),
    404: ("not_found", "There is no API endpoint at this path."),
    405: ("method_not_allowed", "This method is not allowed at this path."),
    406: ("not_acceptable", "The server can only answer with application/json."),
    408: ("timeout", "The request took too long to arrive."),
    413: ("too_large", "The request body is too large."),
    414: ("uri_too_long", "The URL is too long; send the data in the body."),
    415: ("unsupported_media_type", "Send the body as application/json in UTF-8."),
    429: ("throttled", "Too many requests; try again later."),
    431: ("headers_too_large", "The request's headers are too large."),
    500: ("server_error", "The server failed to answer this request; the error was logged."),
    502: ("bad_gateway", "An upstream service failed."),
    503: ("unavailable", "The service is unavailable; try again later."),
}
TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    413: "Request too large",
    414: "URL too long",
    415: "Unsupported media type",
    500: "Server error",
}


def is_api(request: HttpRequest) -> bool:
    return is_api_path(getattr(request, "path_info", "") or "")


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIX) or path == API_PREFIX.rstrip("/")


def default_for(status: int) -> tuple[str, str]:
    if status in DEFAULTS:
        return DEFAULTS[status]
    return ("server_error", DEFAULTS[500][1]) if status >= 500 else ("error", "The request was refused.")


def error_body(status: int, code: str | None = None, detail: str | None = None, errors: dict | None = None) -> dict:
    default_code, default_detail = default_for(status)
    body: dict[str, Any] = {"detail": detail or default_detail, "code": code or default_code}
    if errors:
        body["errors"] = errors
    return body


def json_error(
    status: int, code: str | None = None, detail: str | None = None, errors: dict | None = None
) -> JsonResponse:
    return JsonResponse(error_body(status, code, detail, errors), status=status)


def html_error(status: int, detail: str | None = None) -> HttpResponse:
    """Rendered without the request: no context processor, no session, no
    database query, so it works during an outage too."""
    context = {"status": status, "title": TITLES.get(status, "Error"), "detail": detail}
    content: str
    try:
        content = loader.render_to_string(f"{status}.html", context)
    except Exception:  # noqa: BLE001 - the template is missing or broken: a plain page still answers
        try:
            content = loader.render_to_string("error.html", context)
        except Exception:  # noqa: BLE001 - likewise
            content = f"<!doctype html><title>{status}</title><h1>{context['title']} ({status})</h1>"
    return HttpResponse(content, status=status, content_type="text/html; charset=utf-8")


def error_response(
    request: HttpRequest, status: int, code: str | None = None, detail: str | None = None, errors: dict | None = None
) -> HttpResponse:
    if is_api(request):
        return json_error(status, code, detail, errors)
    return html_error(status, detail)


# Headers a replaced body must keep: what the client is told to do next.
_KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After", "Vary")


def as_api_error(response: HttpResponse) -> HttpResponse:
    """An API answer that is not a success and not JSON becomes the JSON
    error shape (a 405 of a plain Django view, a CSRF page, a 404 page)."""
    if response.status_code < 400:
        return response
    if response.get("Content-Type", "").split(";")[0].strip() == "application/json":
        return response
    replacement = json_error(response.status_code)
    for header in _KEPT_HEADERS:
        if header in response:
            replacement[header] = response[header]
    # Not response.close(): that sends request_finished, which closes the
    # database connection while the request is still being answered.
    return replacement


# Django's error hooks (missioncontrol.urls).


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig) and is_api(request):
        return json_error(413)
    # The exception's message may quote the request (a Host header, a
    # field name): never echoed.
    return error_response(request, 400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(request, 403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api(request):
        return json_error(404)
    return html_error(404, "There is no page at this address.")


def server_error(request: HttpRequest) -> HttpResponse:
    return error_response(request, 500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if is_api(request):
        return json_error(403, "csrf_failed", "The CSRF check failed; send the CSRF token or use an API token.")
    return html_error(403, "The form has expired or was not sent from this site; reload the page and try again.")


# The WSGI guard (missioncontrol.wsgi).


def wsgi_error(
    environ: dict, start_response, status: int, code: str | None = None, detail: str | None = None
) -> list[bytes]:
    path = environ.get("PATH_INFO", "") or ""
    if is_api_path(path):
        body = json.dumps(error_body(status, code, detail)).encode()
        content_type = "application/json"
    else:
        title = TITLES.get(status, "Error")
        body = f"<!doctype html><title>{title}</title><h1>{title} ({status})</h1>".encode()
        content_type = "text/html; charset=utf-8"
    reason = {400: "Bad Request", 415: "Unsupported Media Type", 500: "Internal Server Error"}.get(status, "Error")
    start_response(
        f"{status} {reason}",
        [("Content-Type", content_type), ("Content-Length", str(len(body))), ("X-Content-Type-Options", "nosniff")],
        # Allowed even if the application had already started its answer.
        sys.exc_info(),
    )
    return [body]
