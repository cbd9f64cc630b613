"""OpenAPI additions: the one error shape as a component, and the error
responses every operation can give, so a client (or a fuzzer) reading the
schema meets no undocumented status."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "detail": serializers.CharField(help_text="A sentence for a person."),
        "code": serializers.CharField(help_text="A stable word for a program."),
        "errors": serializers.DictField(
            required=False,
            child=serializers.JSONField(),
            help_text="Validation errors: field -> list of messages (batch: report index -> field -> messages).",
        ),
    },
)


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "A sentence for a person."},
        "code": {"type": "string", "description": "A stable word for a program."},
        "errors": {
            "type": "object",
            "additionalProperties": {},
            "description": "Validation errors: field -> list of messages (batch: report index -> field -> messages).",
        },
    },
    "required": ["detail", "code"],
}


def _response(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = _ERROR_SCHEMA
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            params = operation.get("parameters", [])
            has_body = "requestBody" in operation
            defaults = {
                "401": "Not authenticated (no or a bad token).",
                "403": "Authenticated, but the role does not allow this.",
                "406": "The Accept header asks for something other than JSON.",
            }
            if has_body or any(p.get("in") in {"query", "header"} for p in params):
                defaults["400"] = "Bad input: `errors` maps each field to its messages; nothing changed."
            if "{" in path or any(p.get("name") == "page" for p in params):
                defaults["404"] = "Unknown object (or a page past the end)."
            if has_body:
                defaults["415"] = "The body is not JSON."
            for status, description in defaults.items():
                responses.setdefault(status, _response(description))
    return result
