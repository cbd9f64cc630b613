"""The shape of a rerun or repair preview (an extension of API.md): what the
action's own decision says it would do, or its refusal with the code the
action would answer."""

from __future__ import annotations

from rest_framework import serializers


class RefusalSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()


class BudgetSerializer(serializers.Serializer):
    used = serializers.IntegerField(help_text="Attempts counted once the new one exists.")
    max = serializers.IntegerField()
    left = serializers.IntegerField()
    over_budget = serializers.BooleanField(help_text="True when an override takes it past the budget.")


class SupersedesSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    number = serializers.IntegerField()
    cancels = serializers.BooleanField(help_text="The attempt is still active and is cancelled first.")


class RetiredIdSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["task", "run"])
    value = serializers.CharField()
    attempt_number = serializers.IntegerField()


class PlannedAttemptSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=["initial", "rerun", "retry", "repair"])
    requested_assignee = serializers.CharField(allow_null=True, help_text="The agent that will be frozen.")
    assignee_source = serializers.CharField(
        help_text='Where it comes from: "explicit", "previous attempt #n", "previous imported attempt #n", '
        '"task assignee", "project owner" or "nobody".'
    )
    resume_phase = serializers.CharField(allow_null=True)
    passed_phases = serializers.ListField(child=serializers.CharField())
    budget = BudgetSerializer()
    supersedes = SupersedesSerializer(allow_null=True)
    retires_native_ids = RetiredIdSerializer(many=True)
    reason = serializers.CharField()


class StatusRestoreSerializer(serializers.Serializer):
    to = serializers.CharField()

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.CharField()
        return fields


class ActionPreviewSerializer(serializers.Serializer):
    task = serializers.CharField()
    action = serializers.ChoiceField(choices=["rerun", "repair"])
    allowed = serializers.BooleanField()
    summary = serializers.CharField(help_text="One sentence for a person.")
    refusal = RefusalSerializer(allow_null=True)
    attempt = PlannedAttemptSerializer(allow_null=True)
    restores_status = StatusRestoreSerializer(
        allow_null=True, required=False, help_text="Repair: the row's status is first put back to the ledger's."
    )
