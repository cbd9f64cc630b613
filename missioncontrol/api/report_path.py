"""A lean path for ``POST /api/v1/native-runs/``, the request executors send
most (issue 14).

DRF's dispatch around a single report (its Request wrapper, content
negotiation, ``initial()``, the Response's rendering and ``finalize_response``)
cost about as much Python as the heartbeat statement it serves. This path
does what that dispatch does for the one request it is worth it for: a
token in ``Authorization``, a JSON body, no ``Accept`` other than JSON, no
query string. It authenticates with the same class, checks the same role
and executor grants, parses with the same parser (same limits), validates
with the same serializer, and answers with the same renderer and headers.

Anything else, and every refusal before the service runs (a bad token, a
role or executor not allowed, a body the parser or serializer refuses),
goes to the DRF view unchanged, which answers it as it always has: the
errors keep one implementation. The refusals happen before any write, so
doing that work twice costs only the refused request. The OpenAPI schema
still comes from the view set: the wrapper keeps its attributes.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer

from missioncontrol.errors import ServiceError
from missioncontrol.roles import EXECUTOR, actor_name, has_role
from retries import services

from .authentication import CachedTokenAuthentication
from .errors import status_for
from .parsers import JSONParser
from .permissions import check_report_as
from .serializers import native_runs as s

_ACCEPTED = frozenset({"", "*/*", "application/json"})
_renderer = JSONRenderer()
_authentication = CachedTokenAuthentication()
_parser = JSONParser()


def _allow(view: Callable) -> str:
    """The ``Allow`` header DRF's view answers this route with."""
    actions = getattr(view, "actions", {})
    names = getattr(getattr(view, "cls", None), "http_method_names", [])
    return ", ".join(m.upper() for m in names if m in actions or (m == "head" and "get" in actions))


def _answer(body: dict, status: int, allow: str) -> HttpResponse:
    response = HttpResponse(_renderer.render(body), status=status, content_type=_renderer.media_type)
    response["Allow"] = allow
    return response


def _report(request: HttpRequest, allow: str) -> HttpResponse | None:
    """The answer, or None for the DRF view to give it."""
    meta = request.META
    credentials = meta.get("HTTP_AUTHORIZATION", "").split()
    if (
        meta.get("QUERY_STRING")
        or request.content_type != "application/json"
        or meta.get("HTTP_ACCEPT", "") not in _ACCEPTED
        or not meta.get("CONTENT_LENGTH")
        or len(credentials) != 2
        or credentials[0] != "Token"
        or not credentials[1].isascii()
    ):
        return None
    try:
        user, _ = _authentication.authenticate_credentials(credentials[1])
        if not has_role(user, EXECUTOR):
            return None
        report = services.RunReport(**s.report_data(_parser.parse(io.BytesIO(request.body))))
        check_report_as(user, [report.executor])
    except (exceptions.APIException, ServiceError):
        return None
    # What DRF's Request does: the request's user is the token's (the
    # request log line names it).
    request.user = user
    try:
        run, created = services.native_run_report_one(report=report, actor=actor_name(user))
    except ServiceError as exc:
        return _answer(exc.as_dict(), status_for(exc), allow)
    return _answer(s.run_body(run), 201 if created else 200, allow)


def lean_reports(view: Callable) -> Callable:
    """``view`` (the view set's list route) with single reports taken by the
    lean path first."""
    allow = _allow(view)

    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method == "POST":
            answer = _report(request, allow)
            if answer is not None:
                return answer
        return view(request, *args, **kwargs)

    return functools.update_wrapper(wrapped, view)
