"""Serializer fields that take only the JSON type the schema names.

DRF's defaults coerce: 1 becomes "1" or True, "5" becomes 5, a date alone
becomes midnight. A client that sends the wrong type gets a 400 instead,
so what the schema says is what the server accepts."""

from __future__ import annotations

import re
import uuid

from django.utils import timezone
from rest_framework import serializers

from .validators import MAX_INT, UUID_PATH_REGEX

# Matched with fullmatch: "$" would also match before a final newline, and
# uuid.UUID() then raised on the newline (a 500).
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_UUID = re.compile(UUID_PATH_REGEX)


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        # The schema's maxLength is about what was sent, before trimming.
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictIntegerField(serializers.IntegerField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_value", MAX_INT)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictUUIDField(serializers.UUIDField):
    def to_internal_value(self, data):
        if not isinstance(data, str) or not _UUID.fullmatch(data):
            self.fail("invalid", value=data)
        return uuid.UUID(data)


class StrictDateTimeField(serializers.DateTimeField):
    default_error_messages = {"invalid": "Give an ISO 8601 date and time with a zone, e.g. 2026-11-02T09:14:00Z."}

    def __init__(self, **kwargs):
        # The API speaks the default time zone and never activates another
        # one. Naming it spares DRF a lookup of the current one (asgiref
        # locals) for every value: most of a report's date validation.
        kwargs.setdefault("default_timezone", timezone.get_default_timezone())
        super().__init__(**kwargs)

    def to_internal_value(self, value):
        if not isinstance(value, str) or not _DATETIME.fullmatch(value):
            self.fail("invalid")
        # Python keeps microseconds; finer fractions are cut, not refused.
        value = re.sub(r"(\.\d{6})\d+", r"\1", value)
        try:
            return super().to_internal_value(value)
        except OverflowError:
            self.fail("invalid")
