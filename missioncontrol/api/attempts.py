"""REST views of attempts: every role reads one; executors report its phase
outcomes with their own token (role ``executor``)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from missioncontrol.api.permissions import check_report_as
from missioncontrol.api.schema import error
from missioncontrol.api.validators import UUID_PATH_REGEX
from missioncontrol.api.views import ApiViewSet, validated
from missioncontrol.roles import EXECUTOR
from retries import services
from retries.models import Attempt
from retries.selectors.attempts import attempt_executor

from .serializers import attempts as s


def attempt_queryset():
    return Attempt.objects.select_related("task", "requested_assignee").prefetch_related("phase_outcomes")


@extend_schema_view(retrieve=extend_schema(summary="One attempt"))
class AttemptViewSet(mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = s.AttemptSerializer
    lookup_value_regex = UUID_PATH_REGEX
    write_role = EXECUTOR

    def get_queryset(self):
        return attempt_queryset()

    @extend_schema(
        summary="Record a phase outcome of the attempt",
        request=s.PhaseReportSerializer,
        responses={
            201: OpenApiResponse(s.AttemptSerializer, description="Recorded; the attempt after it."),
            200: OpenApiResponse(s.AttemptSerializer, description="Already recorded: nothing changed."),
            403: error("`executor_not_allowed`: the token may not report as the attempt's executor."),
            409: error("superseded, attempt_finished or phase_conflict."),
        },
    )
    @action(detail=True, methods=["post"])
    def phases(self, request, pk):
        data = validated(s.PhaseReportSerializer, request)
        executor = attempt_executor(self.kwargs["pk"])
        if executor is not None:  # no such attempt: the service answers 404
            check_report_as(request.user, [executor])
        _, created = services.attempt_record_phase(attempt_id=self.kwargs["pk"], actor=self.actor, **data)
        attempt = attempt_queryset().get(pk=self.kwargs["pk"])
        return Response(s.AttemptSerializer(attempt).data, status=201 if created else 200)
