"""Input checks shared by the serializers, so bad input is a 400 and never
reaches the database as something it refuses (a 500)."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from rest_framework import serializers

from planning.models import slug_validator

# PostgreSQL integer columns.
MAX_INT = 2_147_483_647
SLUG_PATH_REGEX = r"[a-z0-9][a-z0-9._-]*"
UUID_PATH_REGEX = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

# The models' own slug rule, so the API and the services check one pattern.
slug = slug_validator
# Search semantics, as in the schema's `pattern`: at least one visible character.
not_blank = RegexValidator(r"\S", "Give a reason: it is kept in the ledger.")


def _bad_text(text: str) -> bool:
    return "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def storable_json(value: Any, *, depth: int = 0) -> None:
    """jsonb refuses NUL characters and the database encoding refuses lone
    surrogates, in keys and values alike."""
    if depth > 32:
        raise serializers.ValidationError("Nest at most 32 levels deep.")
    if isinstance(value, str):
        if _bad_text(value):
            raise serializers.ValidationError("Text may not contain NUL or unpaired surrogate characters.")
    elif isinstance(value, dict):
        for key, item in value.items():
            storable_json(key, depth=depth + 1)
            storable_json(item, depth=depth + 1)
    elif isinstance(value, list):
        for item in value:
            storable_json(item, depth=depth + 1)


def json_object(value: Any) -> Any:
    if not isinstance(value, dict):
        raise serializers.ValidationError("Give a JSON object.")
    storable_json(value)
    return value
