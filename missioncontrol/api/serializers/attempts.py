"""Shapes of attempts and their phases, and the input that reports a phase."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from missioncontrol.api.fields import StrictCharField
from planning.models import Agent
from retries.models import Attempt, PhaseOutcome


class FailureSerializer(serializers.Serializer):
    kind = serializers.CharField()
    phase = serializers.CharField(allow_null=True)
    message = serializers.CharField(allow_blank=True)


class PhaseSerializer(serializers.ModelSerializer):
    class Meta:
        model = PhaseOutcome
        fields = ["phase", "outcome", "at", "message"]
        read_only_fields = fields


class AttemptSerializer(serializers.ModelSerializer):
    task = serializers.CharField(source="task.slug", read_only=True)
    requested_assignee: serializers.SlugRelatedField[Agent] = serializers.SlugRelatedField(
        slug_field="name", read_only=True, allow_null=True
    )
    phases = PhaseSerializer(source="phase_outcomes", many=True, read_only=True)
    superseded_by = serializers.UUIDField(source="superseded_by_id", read_only=True, allow_null=True)
    failure = serializers.SerializerMethodField()

    class Meta:
        model = Attempt
        fields = [
            "id",
            "task",
            "number",
            "kind",
            "status",
            "requested_by",
            "requested_at",
            "reason",
            "requested_assignee",
            "resume_phase",
            "phases",
            "superseded_at",
            "superseded_by",
            "native_task_id",
            "native_run_id",
            "failure",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(FailureSerializer(allow_null=True))
    def get_failure(self, attempt: Attempt) -> dict | None:
        return attempt.failure


class PhaseReportSerializer(serializers.Serializer):
    phase = StrictCharField(max_length=100)
    outcome = serializers.ChoiceField(choices=PhaseOutcome.Outcome.choices)
    message = StrictCharField(required=False, allow_blank=True, default="", max_length=10_000)
