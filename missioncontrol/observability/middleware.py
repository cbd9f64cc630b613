"""One middleware, outermost: gives the request its id (bound into the log
context and echoed in ``X-Request-ID``), times it into the latency
histogram by view and status, and logs one line for it."""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog
from django.http import HttpRequest, HttpResponse
from django.utils.functional import empty

from .logs import REQUEST_ID_HEADER, begin_context, end_context, request_id_from
from .metrics import HTTP_DURATION

log = structlog.get_logger("missioncontrol.http")
UNMATCHED = "<unmatched>"


def view_label(request: HttpRequest) -> str:
    """The resolver's route name (``api:task-rerun``, ``board``): few and
    fixed, unlike paths. Requests that matched no route share one label."""
    match = getattr(request, "resolver_match", None)
    return match.view_name if match is not None else UNMATCHED


def _username(request: HttpRequest) -> str | None:
    """Who the request ran as, if the request found out: a lazy user that
    no one asked for is left alone (loading it would query the session,
    and a log line must neither cost a query nor fail when the database is
    down)."""
    user = request.__dict__.get("user")
    if user is None or user.__dict__.get("_wrapped", user) is empty:
        return None
    try:
        return user.get_username() if user.is_authenticated else None
    except Exception:  # noqa: BLE001 - a lazy user evaluated here after all: never fail the response
        return None


class IdentifiedRequest(HttpRequest):
    """A request once this middleware has given it its id."""

    request_id: str


class RequestObservabilityMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: IdentifiedRequest) -> HttpResponse:
        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        token = begin_context(request_id=request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            seconds = time.perf_counter() - started
            view = view_label(request)
            HTTP_DURATION.labels(view, request.method, str(response.status_code)).observe(seconds)
            response[REQUEST_ID_HEADER] = request_id
            log.info(
                "http request",
                method=request.method,
                path=request.path,
                view=view,
                status=response.status_code,
                duration_ms=round(seconds * 1000, 2),
                user=_username(request),
            )
            return response
        finally:
            end_context(token)
