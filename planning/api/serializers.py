"""Shapes of agents, projects, procedures, plans, tasks and events (API.md),
and the inputs the services take. Inputs only check types and sizes; the
services decide everything else."""

from __future__ import annotations

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from missioncontrol.api.fields import StrictBooleanField, StrictCharField, StrictIntegerField, StrictUUIDField
from missioncontrol.api.validators import SLUG_PATTERN, json_object
from planning.models import Agent, Event, Plan, PlanningTask, Procedure, Project
from planning.selectors import task_current_attempt, task_diagnostics
from retries.api.serializers import AttemptSerializer
from retries.services import MAX_BULK_RERUN

slug = RegexValidator(SLUG_PATTERN, "Use lowercase letters, digits, dots, dashes and underscores; start with a letter or digit.")
# Search semantics, as in the schema's `pattern`: at least one visible character.
not_blank = RegexValidator(r"\S", "Give a reason: it is kept in the ledger.")


# --- Output -------------------------------------------------------------------


class AgentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Agent
        fields = ["name", "kind", "active"]
        read_only_fields = fields


class ProjectSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = Project
        fields = ["slug", "name", "owner"]
        read_only_fields = fields


class ProcedureSerializer(serializers.ModelSerializer):
    phases = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Procedure
        fields = ["slug", "name", "phases", "executor", "max_attempts", "stall_timeout_seconds"]
        read_only_fields = fields


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
    ``planning.selectors.plan_list_with_projection``."""

    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    counts = serializers.DictField(child=serializers.IntegerField(), read_only=True)
    failed_tasks = DiagnosticsSerializer(many=True, read_only=True)

    class Meta:
        model = Plan
        fields = ["id", "name", "project", "status", "on_error", "counts", "failed_tasks"]
        read_only_fields = fields


class TaskSerializer(serializers.ModelSerializer):
    """Expects the task from ``planning.selectors.task_queryset``."""

    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    procedure = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    plan = serializers.UUIDField(source="plan_id", read_only=True, allow_null=True)
    params = serializers.DictField(read_only=True)
    assignee = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    current_attempt = serializers.SerializerMethodField()
    diagnostics = serializers.SerializerMethodField()

    class Meta:
        model = PlanningTask
        fields = [
            "slug", "title", "project", "procedure", "plan", "status", "params", "assignee",
            "max_attempts", "attempt_count", "current_attempt", "diagnostics", "created_at", "updated_at",
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
    task = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    data = serializers.DictField(read_only=True)

    class Meta:
        model = Event
        fields = ["id", "at", "type", "actor", "task", "attempt_id", "data"]
        read_only_fields = fields


# --- Input --------------------------------------------------------------------


class AgentCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100, validators=[slug])
    kind = serializers.ChoiceField(choices=Agent.Kind.choices, default=Agent.Kind.AI)
    active = StrictBooleanField(default=True)


class AgentUpdateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Agent.Kind.choices, required=False)
    active = StrictBooleanField(required=False)


class ProjectCreateSerializer(serializers.Serializer):
    slug = StrictCharField(max_length=100, validators=[slug])
    name = StrictCharField(max_length=200)
    owner = StrictCharField(max_length=100)


class ProjectUpdateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=200, required=False)
    owner = StrictCharField(max_length=100, required=False)


class ProcedureCreateSerializer(serializers.Serializer):
    slug = StrictCharField(max_length=100, validators=[slug])
    name = StrictCharField(max_length=200)
    phases = serializers.ListField(child=StrictCharField(max_length=100), min_length=1, max_length=100)
    executor = serializers.ChoiceField(choices=Procedure.Executor.choices, default=Procedure.Executor.EXTERNAL)
    max_attempts = StrictIntegerField(min_value=1, default=3)
    stall_timeout_seconds = StrictIntegerField(min_value=1, default=300)


class ProcedureUpdateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=200, required=False)
    phases = serializers.ListField(child=StrictCharField(max_length=100), min_length=1, max_length=100, required=False)
    executor = serializers.ChoiceField(choices=Procedure.Executor.choices, required=False)
    max_attempts = StrictIntegerField(min_value=1, required=False)
    stall_timeout_seconds = StrictIntegerField(min_value=1, required=False)


class PlanCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=200)
    project = StrictCharField(max_length=100)
    on_error = serializers.ChoiceField(choices=Plan.OnError.choices, default=Plan.OnError.CONTINUE)


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
    reason = StrictCharField(max_length=10_000, validators=[not_blank])


class RerunSerializer(ReasonSerializer):
    assignee = StrictCharField(max_length=100, required=False, allow_null=True, default=None)
    override_budget = StrictBooleanField(default=False)
    supersede_active = StrictBooleanField(default=False)


class BulkRerunSerializer(RerunSerializer):
    tasks = serializers.ListField(
        child=StrictCharField(max_length=200), min_length=1, max_length=MAX_BULK_RERUN,
        help_text=f"Slugs of the tasks to rerun, each once, at most {MAX_BULK_RERUN}.",
    )
    # A slug given twice is refused by ``task_rerun_many`` with the same
    # error shape (400, ``errors.tasks``): one rule, in the service.


class BulkRerunResultSerializer(serializers.Serializer):
    results = AttemptSerializer(many=True)


class RepairSerializer(ReasonSerializer):
    assignee = StrictCharField(max_length=100, required=False, allow_null=True, default=None)
