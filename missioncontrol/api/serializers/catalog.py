"""Shapes of agents, projects and procedures, and their inputs (admin writes)."""

from __future__ import annotations

from rest_framework import serializers

from missioncontrol.api.fields import StrictBooleanField, StrictCharField, StrictIntegerField
from missioncontrol.api.validators import slug
from planning.models import Agent, Procedure, Project

# --- Output -------------------------------------------------------------------


class AgentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Agent
        fields = ["name", "kind", "active"]
        read_only_fields = fields


class ProjectSerializer(serializers.ModelSerializer):
    owner: serializers.SlugRelatedField[Agent] = serializers.SlugRelatedField(slug_field="name", read_only=True)

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
