"""Shapes of plans (with their counts and failure diagnostics) and the input
that creates one."""

from __future__ import annotations

from rest_framework import serializers

from missioncontrol.api.fields import StrictCharField
from planning.models import Plan, Project


class DiagnosticsSerializer(serializers.Serializer):
    task = serializers.CharField()
    attempt_number = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    failed_phase = serializers.CharField(allow_null=True)
    failure_kind = serializers.CharField()
    message = serializers.CharField(allow_blank=True)
    at = serializers.DateTimeField(allow_null=True)


class PlanSerializer(serializers.ModelSerializer):
    """Needs ``counts`` and ``failed_tasks`` attached by
    ``retries.selectors.plan_list_with_projection``."""

    project: serializers.SlugRelatedField[Project] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    counts = serializers.DictField(child=serializers.IntegerField(), read_only=True)
    failed_tasks = DiagnosticsSerializer(many=True, read_only=True)

    class Meta:
        model = Plan
        fields = ["id", "name", "project", "status", "on_error", "counts", "failed_tasks"]
        read_only_fields = fields


class PlanCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=200)
    project = StrictCharField(max_length=100)
    on_error = serializers.ChoiceField(choices=Plan.OnError.choices, default=Plan.OnError.CONTINUE)
