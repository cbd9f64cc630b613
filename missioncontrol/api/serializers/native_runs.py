"""Shapes of native runs and the inputs that report them, one by one or in
a batch (executors, role ``executor``)."""

from __future__ import annotations

import functools
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from missioncontrol.api.fields import (
    StrictCharField,
    StrictDateTimeField,
    StrictUUIDField,
)
from missioncontrol.api.plain import Plain
from retries.models import NativeRun


class BindingSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=NativeRun.Binding.choices, source="binding")
    attempt_id = serializers.UUIDField(allow_null=True)
    reason = serializers.CharField(source="binding_reason", allow_null=True)
    # One sentence from the binding decision's facts (extension of API.md).
    explanation = serializers.CharField(source="binding_explanation", read_only=True)


class NativeRunSerializer(serializers.ModelSerializer):
    task = serializers.SerializerMethodField()
    attempt_id = serializers.UUIDField(source="claimed_attempt_id", read_only=True, allow_null=True)
    binding = BindingSerializer(source="*", read_only=True)

    class Meta:
        model = NativeRun
        fields = [
            "executor",
            "native_task_id",
            "native_run_id",
            "task",
            "attempt_id",
            "status",
            "phase",
            "created_at",
            "last_seen_at",
            "message",
            "binding",
            # Extension of API.md: the user whose report last changed the run.
            "reported_by",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_task(self, run: NativeRun) -> str | None:
        # The slug the run claims; null when it named none.
        return run.task_slug or None


class NativeRunReportSerializer(serializers.Serializer):
    executor = StrictCharField(max_length=50)
    native_task_id = StrictCharField(max_length=200)
    native_run_id = StrictCharField(max_length=200)
    task = StrictCharField(max_length=200)
    attempt_id = StrictUUIDField(required=False, allow_null=True, default=None)
    status = serializers.ChoiceField(choices=NativeRun.Status.choices)
    created_at = StrictDateTimeField(required=False, allow_null=True, default=None)
    phase = StrictCharField(required=False, allow_blank=True, default="", max_length=100)
    message = StrictCharField(required=False, allow_blank=True, default="", max_length=10_000)


MAX_BATCH = 500


class NativeRunBatchSerializer(serializers.Serializer):
    """For the schema only; the view validates each report on its own so
    the errors are keyed by index."""

    # many=True hands max_length to the ListSerializer it makes; the stubs
    # check it against the child's own arguments.
    reports = NativeRunReportSerializer(many=True, max_length=MAX_BATCH)  # type: ignore[call-arg]


class NativeRunBatchResultSerializer(serializers.Serializer):
    results = NativeRunSerializer(many=True)


# One instance of each per process. Building a serializer deep-copies its
# declared fields, which cost more than a heartbeat's SQL (issue 14's
# profile); validating and representing with a built instance touch no
# state of it, so threads share them.
@functools.cache
def _shared() -> tuple[NativeRunReportSerializer, NativeRunSerializer]:
    report, run = NativeRunReportSerializer(), NativeRunSerializer()
    _ = report.fields, run.fields  # built once, here
    return report, run


@functools.cache
def _plain() -> Plain:
    return Plain(_shared()[0])


def report_data(data: Any) -> dict[str, Any]:
    """One report's validated data; a 400 (``ValidationError``) otherwise."""
    plain = _plain()(data)
    return plain if plain is not None else dict(_shared()[0].run_validation(data))


def plain_reports(reports: list[Any]) -> list[dict[str, Any]] | None:
    """Every report's validated data when all are plainly valid (see
    ``missioncontrol.api.plain``); None when DRF must validate the list and
    key its errors by index."""
    plain = _plain()
    out = []
    for report in reports:
        data = plain(report)
        if data is None:
            return None
        out.append(data)
    return out


def run_body(run: NativeRun) -> dict[str, Any]:
    """What the API shows of one native run: ``NativeRunSerializer``'s
    representation, written out. DRF's walk over the fields (sources,
    nested serializer, ordered dicts) was a sixth of a report batch's Python
    in cProfile, as much as its validation; ``tests/api/test_run_body.py``
    keeps the two equal over runs of every shape."""
    at = _datetime
    return {
        "executor": run.executor,
        "native_task_id": run.native_task_id,
        "native_run_id": run.native_run_id,
        "task": run.task_slug or None,
        "attempt_id": _uuid(run.claimed_attempt_id),
        "status": run.status,
        "phase": run.phase,
        "created_at": at(run.created_at),
        "last_seen_at": at(run.last_seen_at),
        "message": run.message,
        "binding": {
            "state": run.binding,
            "attempt_id": _uuid(run.attempt_id),
            "reason": run.binding_reason,
            "explanation": run.binding_explanation,
        },
        "reported_by": run.reported_by,
    }


def _uuid(value: Any) -> str | None:
    return None if value is None else str(value)


def _datetime(value: Any) -> str | None:
    # DRF's own formatting (time zone, ISO 8601 with "Z"), one field shared.
    return None if value is None else _DATETIME.to_representation(value)


# The default time zone named, as StrictDateTimeField does (no lookup of the current one per value).
_DATETIME = serializers.DateTimeField(default_timezone=timezone.get_default_timezone())
