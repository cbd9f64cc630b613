"""Shapes of tasks and their ledger events, and the inputs that create,
edit, rerun, repair and cancel tasks."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from missioncontrol.api.fields import StrictBooleanField, StrictCharField, StrictIntegerField, StrictUUIDField
from missioncontrol.api.validators import json_object, not_blank, slug
from planning.models import Agent, Event, PlanningTask, Procedure, Project
from retries.selectors import task_current_attempt, task_diagnostics
from retries.services import MAX_BULK_RERUN, REASON_MAX_LENGTH

from .attempts import AttemptSerializer
from .plans import DiagnosticsSerializer

# --- Output -------------------------------------------------------------------


class TaskSerializer(serializers.ModelSerializer):
    """Expects the task from ``retries.selectors.task_queryset``."""

    project: serializers.SlugRelatedField[Project] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    procedure: serializers.SlugRelatedField[Procedure] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    plan = serializers.UUIDField(source="plan_id", read_only=True, allow_null=True)
    params = serializers.DictField(read_only=True)
    assignee: serializers.SlugRelatedField[Agent] = serializers.SlugRelatedField(
        slug_field="name", read_only=True, allow_null=True
    )
    current_attempt = serializers.SerializerMethodField()
    diagnostics = serializers.SerializerMethodField()

    class Meta:
        model = PlanningTask
        fields = [
            "slug",
            "title",
            "project",
            "procedure",
            "plan",
            "status",
            "params",
            "assignee",
            "max_attempts",
            "attempt_count",
            "current_attempt",
            "diagnostics",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(AttemptSerializer(allow_null=True))
    def get_current_attempt(self, task: PlanningTask) -> dict | None:
        attempt = task_current_attempt(task)
        return AttemptSerializer(attempt, context=self.context).data if attempt is not None else None

    @extend_schema_field(DiagnosticsSerializer(allow_null=True))
    def get_diagnostics(self, task: PlanningTask) -> dict | None:
        diagnostics = task_diagnostics(task)
        return DiagnosticsSerializer(diagnostics).data if diagnostics is not None else None


class EventSerializer(serializers.ModelSerializer):
    task: serializers.SlugRelatedField[PlanningTask] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )
    # DRF's metaclass takes declared fields off the class, so this field does
    # not shadow Serializer.data as the stubs assume.
    data = serializers.DictField(read_only=True)  # type: ignore[assignment]

    class Meta:
        model = Event
        fields = ["id", "at", "type", "actor", "task", "attempt_id", "data"]
        read_only_fields = fields


# --- Input --------------------------------------------------------------------


class TaskCreateSerializer(serializers.Serializer):
    slug = StrictCharField(max_length=200, validators=[slug])
    title = StrictCharField(max_length=300)
    project = StrictCharField(max_length=100)
    procedure = StrictCharField(max_length=100)
    plan = StrictUUIDField(required=False, allow_null=True, default=None)
    params = serializers.DictField(required=False, default=dict, validators=[json_object])
    assignee = StrictCharField(max_length=100, required=False, allow_null=True, default=None)
    max_attempts = StrictIntegerField(min_value=1, required=False, allow_null=True, default=None)


class TaskUpdateSerializer(serializers.Serializer):
    title = StrictCharField(max_length=300, required=False)
    params = serializers.DictField(required=False, validators=[json_object])
    assignee = StrictCharField(max_length=100, required=False, allow_null=True)
    max_attempts = StrictIntegerField(min_value=1, required=False)


# Task fields a PATCH may not touch: named so the client learns why.
TASK_READ_ONLY = frozenset(TaskSerializer.Meta.fields) - set(TaskUpdateSerializer().fields)


class ReasonSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=REASON_MAX_LENGTH, validators=[not_blank])


class RerunSerializer(ReasonSerializer):
    assignee = StrictCharField(max_length=100, required=False, allow_null=True, default=None)
    override_budget = StrictBooleanField(default=False)
    supersede_active = StrictBooleanField(default=False)


class BulkRerunSerializer(RerunSerializer):
    tasks = serializers.ListField(
        child=StrictCharField(max_length=200),
        min_length=1,
        max_length=MAX_BULK_RERUN,
        help_text=f"Slugs of the tasks to rerun, each once, at most {MAX_BULK_RERUN}.",
    )
    # A slug given twice is refused by ``task_rerun_many`` with the same
    # error shape (400, ``errors.tasks``): one rule, in the service.


class BulkRerunResultSerializer(serializers.Serializer):
    results = AttemptSerializer(many=True)


class RepairSerializer(ReasonSerializer):
    assignee = StrictCharField(max_length=100, required=False, allow_null=True, default=None)
