"""OpenAPI additions: the one error shape as a component, and the error
responses every operation can give, so a client (or a fuzzer) reading the
schema meets no undocumented status."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

# What DRF's CharField refuses, as patterns both ECMA-262 (the schema's
# dialect) and Python read alike: a NUL anywhere (ProhibitNullCharacters),
# and, unless blank is allowed, a value that is empty once str.strip() has
# trimmed it (its whitespace spelled out: ECMA's \s is another set).
_STRIPPED = "\\u0009-\\u000d\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
NO_NUL = "^[^\\u0000]*$"
NOT_BLANK = f"^[^\\u0000]*[^\\u0000{_STRIPPED}][^\\u0000]*$"


class StrictCharFieldSchema(OpenApiSerializerFieldExtension):
    """A text field's schema says what it refuses: no NUL, and when blank is
    not allowed, minLength 1 and at least one character that is not space."""

    target_class = "missioncontrol.api.fields.StrictCharField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if direction == "request" and "enum" not in schema and "format" not in schema:
            if self.target.allow_blank:
                schema.setdefault("pattern", NO_NUL)
            else:
                schema["minLength"] = max(1, schema.get("minLength", 0))
                schema.setdefault("pattern", NOT_BLANK)
        return schema


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


def limits_description() -> str:
    return (
        "Planning tasks, attempts and native runs, with safe reruns.\n\n"
        "Limits, each refused in the error shape and changing nothing: a body of at most "
        f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes (413 `too_large`); path and query of at most "
        f"{settings.REQUEST_MAX_URL_BYTES} bytes (414 `uri_too_long`); JSON nested at most "
        f"{settings.API_MAX_JSON_DEPTH} arrays or objects deep (400); a body in UTF-8 JSON (415 otherwise); "
        "no NUL and no lone surrogate in any text (400 naming the field); an `Idempotency-Key` of 1 to 200 "
        "visible ASCII characters (400 otherwise)."
    )


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = _ERROR_SCHEMA
    result.setdefault("info", {})["description"] = limits_description()
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
                defaults["415"] = "The body is not JSON, or not in UTF-8."
                defaults["413"] = f"`too_large`: the body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
            defaults["414"] = f"`uri_too_long`: path and query are over {settings.REQUEST_MAX_URL_BYTES} bytes."
            for status, description in defaults.items():
                responses.setdefault(status, _response(description))
    return result
