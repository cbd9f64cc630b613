"""Keyed launch, rerun and repair: the first response is stored with the key
and returned, status and body, to every repeat (rule 4)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from retries.models import Attempt, IdempotencyKey
from retries.services import AttemptResult

HEADER = "Idempotency-Key"
# Stored in a 200-character column; visible ASCII keeps it printable in logs.
KEY_PATTERN = r"^[!-~]{1,200}$"

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    name=HEADER,
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    pattern=KEY_PATTERN,
    description="Repeats with the same key for the same task return the first response and create nothing; "
    "the same key with a different body is 422 idempotency_key_reused. Keys expire after 24 hours.",
)


def idempotency_key(request) -> str | None:
    """The header's key, or None when the header is absent. Present but
    empty or malformed is a 400: what the schema's pattern says."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not re.fullmatch(KEY_PATTERN, key):
        raise ValidationError({HEADER: ["Use 1 to 200 visible ASCII characters."]})
    return key


def attempt_response(call: Callable[[], AttemptResult], serialize: Callable[[Attempt], Any]) -> Response:
    """Run the service and store its response in ONE transaction: the task row
    lock the service takes is held until the response is stored, so a
    concurrent repeat of the key waits and then finds this very response."""
    with transaction.atomic():
        result = call()
        if result.replayed and result.stored_status is not None:
            return Response(result.stored_body, status=result.stored_status)
        # A replay whose first response was never stored answered 201 first.
        status = 201 if (result.created or result.replayed) else 200
        body = json.loads(json.dumps(serialize(result.attempt), cls=JSONEncoder))
        if result.idempotency is not None and not result.replayed:
            idempotency_store_response(record=result.idempotency, status=status, body=body)
    return Response(body, status=status)


def bulk_attempt_response(
    call: Callable[[], list[AttemptResult]], serialize_many: Callable[[list[Attempt]], list]
) -> Response:
    """``attempt_response`` for a bulk rerun: one transaction for the service
    and the stored response, ``{"results": [...]}`` in the request's order.
    ``serialize_many`` reads what the attempts show in a fixed number of
    queries: the task locks are held until this transaction ends."""
    with transaction.atomic():
        results = call()
        first = results[0]
        if first.replayed and first.stored_status is not None:
            return Response(first.stored_body, status=first.stored_status)
        attempts = [r.attempt for r in results]
        body = json.loads(json.dumps({"results": serialize_many(attempts)}, cls=JSONEncoder))
        if not first.replayed:
            idempotency_store_bulk_response(results=results, status=201, body=body)
    return Response(body, status=201)


# The stored responses are the API's: the services only tie a key to the
# attempt it created (``retries.services.idempotency``).


def idempotency_store_response(*, record: IdempotencyKey, status: int, body: Any) -> None:
    """Keep the first response for a keyed request, inside the same
    transaction as the request's service, so that a concurrent repeat,
    queued on the task lock, finds the response."""
    record.response_status = status
    record.response_body = body
    record.save(update_fields=["response_status", "response_body"])


def idempotency_store_bulk_response(*, results: list[AttemptResult], status: int, body: Any) -> None:
    """The first response of a keyed bulk rerun, kept once: on the record of
    the lowest task id, where a repeat looks for it."""
    records = [r.idempotency for r in results if r.idempotency is not None]
    if records:
        idempotency_store_response(record=min(records, key=lambda r: r.task_id), status=status, body=body)
