"""Every 4xx answer of the API has one shape: ``{"detail", "code", "errors"?}``."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from missioncontrol.errors import ServiceError

INVALID_DETAIL = "The request has invalid fields."

# The one table from a business error's code to the HTTP status the API
# answers with. The core raises codes only; every code it raises is listed
# here (tests/api/test_error_codes.py checks that against the source).
STATUS_FOR_CODE: dict[str, int] = {
    "invalid": 400,
    "invalid_history": 400,
    "not_found": 404,
    "idempotency_key_reused": 422,
    # The transition is not allowed now (API.md: 409).
    "already_launched": 409,
    "not_launched": 409,
    "use_repair": 409,
    "attempt_active": 409,
    "budget_exhausted": 409,
    "inconsistent": 409,
    "plan_paused": 409,
    "rerun_refused": 409,
    "not_cancellable": 409,
    "superseded": 409,
    "phase_conflict": 409,
    "attempt_finished": 409,
    "conflict": 409,
    "not_allowed": 403,
    # The token may not report as this executor (missioncontrol.roles.decide_report_as).
    "executor_not_allowed": 403,
    "nothing_to_cancel": 409,
    "snapshot_failed": 500,
}


def status_for(error: ServiceError) -> int:
    """The HTTP status of a business error; an unlisted code is a transition
    refused now (409), the contract's answer for "not allowed now"."""
    return STATUS_FOR_CODE.get(error.code, 409)


# Sentences for a person, instead of DRF's terser defaults.
_DETAILS = {
    "not_authenticated": "Authentication is required: send 'Authorization: Token <key>' or log in.",
    "permission_denied": "Your role does not allow this request.",
    "not_found": "Not found.",
}


def flatten_errors(detail: Any) -> dict[str, Any]:
    """DRF validation detail as a map from field to a list of messages.
    Errors not tied to a field go under ``non_field_errors``."""
    if isinstance(detail, dict):
        out: dict[str, Any] = {}
        for field, messages in detail.items():
            if isinstance(messages, dict):
                # A nested object: name its fields with dots.
                for sub, sub_messages in flatten_errors(messages).items():
                    out[f"{field}.{sub}"] = sub_messages
            else:
                out[str(field)] = [str(m) for m in _as_list(messages)]
        return out
    return {"non_field_errors": [str(m) for m in _as_list(detail)]}


def _as_list(value: Any) -> list:
    if isinstance(value, list):
        flat = []
        for item in value:
            flat.extend(_as_list(item) if isinstance(item, list | dict) else [item])
        return flat
    if isinstance(value, dict):
        return [f"{k}: {m}" for k, v in value.items() for m in _as_list(v)]
    return [value]


def error_body(*, detail: str, code: str, errors: dict | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"detail": detail, "code": code}
    if errors:
        body["errors"] = errors
    return body


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ServiceError):
        set_rollback()
        return Response(exc.as_dict(), status=status_for(exc))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    # DRF's handler sets the rollback and the WWW-Authenticate, Allow and
    # Retry-After headers; only the body is replaced.
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body(detail=INVALID_DETAIL, code="invalid", errors=flatten_errors(exc.detail))
        return response
    code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    if not isinstance(code, str):
        code = getattr(exc, "default_code", "error")
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    text = str(detail) if isinstance(detail, str) else "; ".join(map(str, _as_list(detail)))
    if code in _DETAILS and text == str(getattr(exc, "default_detail", "")):
        text = _DETAILS[code]
    response.data = error_body(detail=text, code=code)
    return response


@csrf_exempt  # like the API views: a stray POST gets this 404, not a CSRF page
def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """Answer for any path under /api/v1/ that names no endpoint."""
    return JsonResponse(error_body(detail="There is no API endpoint at this path.", code="not_found"), status=404)
