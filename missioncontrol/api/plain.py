"""Validation of plainly valid input without DRF's per-field machinery.

A report batch validated each of its reports through ``run_validation``:
for every field ``get_value``, ``validate_empty_values``, ``run_validators``
with its validator objects, ``set_value`` over source attributes. That
walk, not the rules, was most of the cost (issue 14: about a seventh of a
batch's Python). ``Plain`` reads a serializer's own field objects once and
applies the same rules with the same ``to_internal_value`` methods, in a
loop that has nothing else to do.

It never refuses anything. When a value is anything but plainly valid (a
field missing or null where that is an error, a value the field's own
``to_internal_value`` refuses, a blank or a NUL where the field forbids
it), it answers ``None`` and the caller validates with DRF, whose errors
stay the only ones. A serializer it does not fully understand (validators
it does not know, ``validate`` methods, nested serializers) gets ``None``
for everything: nothing can be skipped by accident.
``tests/api/test_plain.py`` holds it equal to DRF's output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.validators import MaxLengthValidator, ProhibitNullCharactersValidator
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.fields import empty
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from .fields import StrictCharField

# The parser's pattern: what ProhibitNullCharactersValidator and
# ProhibitSurrogateCharactersValidator refuse.
from .parsers import BAD_TEXT

# Validators whose rule a char field's plain check already holds: the
# length is checked by the strict fields before trimming, which bounds it after.
_CHAR_VALIDATORS = (MaxLengthValidator, ProhibitNullCharactersValidator, ProhibitSurrogateCharactersValidator)
_SIMPLE = (serializers.CharField, serializers.ChoiceField, serializers.UUIDField, serializers.DateTimeField)


class _Field:
    __slots__ = ("allow_blank", "allow_null", "char", "default", "name", "required", "source", "to_internal")

    def __init__(self, name: str, field: serializers.Field) -> None:
        self.name = name
        self.source = field.source
        self.required = field.required
        self.allow_null = field.allow_null
        self.default = field.default
        self.char = isinstance(field, serializers.CharField)
        self.allow_blank = getattr(field, "allow_blank", False)
        self.to_internal: Callable[[Any], Any] = field.to_internal_value


def _understood(serializer: serializers.Serializer) -> bool:
    cls = type(serializer)
    if cls.validate is not serializers.Serializer.validate or serializer.validators:
        return False
    for name, field in serializer.fields.items():
        if field.read_only:
            continue
        if not isinstance(field, _SIMPLE) or hasattr(serializer, f"validate_{name}"):
            return False
        # ``empty`` (no default) is a class, hence callable: only real callables count.
        default: Any = field.default
        if field.source != name or (default is not empty and callable(default)):
            return False
        allowed = _CHAR_VALIDATORS if isinstance(field, serializers.CharField) else ()
        if any(not isinstance(v, allowed) for v in field.validators):
            return False
        # Only the strict text field checks its length in to_internal_value;
        # DRF's own leaves it to a validator, which the plain path skips.
        if isinstance(field, serializers.CharField) and (
            not isinstance(field, StrictCharField) or not field.trim_whitespace or field.min_length is not None
        ):
            return False
    return True


class Plain:
    """``Plain(serializer)(data)``: the validated data DRF would give, or
    None when DRF must decide."""

    def __init__(self, serializer: serializers.Serializer) -> None:
        self._fields = (
            [_Field(name, f) for name, f in serializer.fields.items() if not f.read_only]
            if _understood(serializer)
            else None
        )

    def __call__(self, data: Any) -> dict[str, Any] | None:
        fields = self._fields
        if fields is None or type(data) is not dict:
            return None
        out: dict[str, Any] = {}
        for f in fields:
            value = data.get(f.name, empty)
            if value is empty:
                if f.required:
                    return None
                if f.default is not empty:
                    out[f.name] = f.default
                continue
            if value is None:
                if not f.allow_null:
                    return None
                out[f.name] = None
                continue
            try:
                value = f.to_internal(value)
            except ValidationError:
                return None
            if f.char and ((value == "" and not f.allow_blank) or BAD_TEXT.search(value)):
                return None
            out[f.name] = value
        return out
