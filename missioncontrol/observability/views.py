"""GET /metrics: the Prometheus text format, for a token of the ``admin``
or ``metrics`` role only. A plain Django view (outside /api/v1/ and its
OpenAPI schema), which authenticates the token the way the API does and
answers refusals in the API's error shape."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from missioncontrol.api.authentication import CachedTokenAuthentication
from missioncontrol.api.errors import error_body
from missioncontrol.roles import ADMIN, METRICS, has_role

from .metrics import scrape_registry


def _refused(status: int, detail: str, code: str) -> JsonResponse:
    response = JsonResponse(error_body(detail=detail, code=code), status=status)
    if status == 401:
        response["WWW-Authenticate"] = "Token"
    return response


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    try:
        found = CachedTokenAuthentication().authenticate(Request(request))
    except AuthenticationFailed as exc:
        return _refused(401, str(exc.detail), "authentication_failed")
    if found is None:
        return _refused(401, "Authentication is required: send 'Authorization: Token <key>'.", "not_authenticated")
    user = found[0]
    request.user = user  # for the request's log line
    if not (has_role(user, ADMIN) or has_role(user, METRICS)):
        return _refused(403, "Only the admin and metrics roles may read the metrics.", "permission_denied")
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
