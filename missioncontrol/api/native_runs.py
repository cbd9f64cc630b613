"""REST views of native runs: every role lists them; executors report them,
one by one or in a batch, with their own token (role ``executor``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from missioncontrol.api.errors import flatten_errors
from missioncontrol.api.filters import NativeRunFilter
from missioncontrol.api.permissions import check_report_as
from missioncontrol.api.schema import error
from missioncontrol.api.views import ApiViewSet
from missioncontrol.errors import ServiceError
from missioncontrol.roles import EXECUTOR
from retries import services
from retries.models import NativeRun

from .serializers import native_runs as s


def run_report(data: dict) -> services.RunReport:
    return services.RunReport(**data)


@extend_schema_view(
    list=extend_schema(summary="List native runs"),
    create=extend_schema(
        summary="Report a native run (or a heartbeat)",
        request=s.NativeRunReportSerializer,
        responses={
            201: OpenApiResponse(s.NativeRunSerializer, description="A run not seen before."),
            200: OpenApiResponse(s.NativeRunSerializer, description="A known run: updated or a heartbeat."),
            403: error(
                "`executor_not_allowed`: the token may not report as this executor (see create_api_token --executor)."
            ),
        },
    ),
)
class NativeRunViewSet(mixins.ListModelMixin, ApiViewSet):
    queryset = NativeRun.objects.order_by("-last_seen_at", "-id")
    serializer_class = s.NativeRunSerializer
    filterset_class = NativeRunFilter
    write_role = EXECUTOR

    def create(self, request):
        report = run_report(s.report_data(request.data))
        check_report_as(request.user, [report.executor])
        # Most reports only say "still running": one statement, no locks.
        run, created = services.native_run_report_one(report=report, actor=self.actor)
        return Response(s.run_body(run), status=201 if created else 200)

    @extend_schema(
        summary=f"Report up to {s.MAX_BATCH} native runs at once, all or nothing",
        request=s.NativeRunBatchSerializer,
        responses={
            200: s.NativeRunBatchResultSerializer,
            400: error("`errors` maps each invalid report's index to its field errors; nothing was applied."),
            403: error(
                "`executor_not_allowed`: `errors` maps each report naming an executor the token may not report as; nothing was applied."
            ),
        },
    )
    @action(detail=False, methods=["post"])
    def batch(self, request):
        body = request.data
        reports = body.get("reports") if isinstance(body, dict) else None
        if not isinstance(reports, list):
            raise ServiceError(
                "invalid", "The request has invalid fields.", errors={"reports": ["Give a list of reports."]}
            )
        if len(reports) > s.MAX_BATCH:
            raise ServiceError(
                "invalid",
                "The request has invalid fields.",
                errors={"reports": [f"Send at most {s.MAX_BATCH} reports; got {len(reports)}."]},
            )
        # Plainly valid reports skip DRF's per-field walk (same rules, same
        # field objects; see missioncontrol.api.plain). Otherwise one list
        # serializer validates every report with the same field objects: a
        # serializer per report deep-copied its fields each time, which cost
        # more than applying the report.
        plain = s.plain_reports(reports)
        errors: dict[str, Any] = {}
        if plain is not None:
            parsed = [run_report(item) for item in plain]
        else:
            serializer = s.NativeRunReportSerializer(data=reports, many=True)
            if serializer.is_valid():
                parsed = [run_report(dict(item)) for item in serializer.validated_data]
            else:
                found = serializer.errors
                # DRF keys a list's errors by index (older releases: a list with
                # an empty dict per valid item); both become {"index": errors}.
                pairs = found.items() if isinstance(found, dict) else enumerate(found)
                errors = {str(i): flatten_errors(e) for i, e in pairs if e}
        if errors:
            raise ServiceError(
                "invalid",
                f"{len(errors)} of {len(reports)} reports are invalid; none was applied.",
                errors=errors,
            )
        check_report_as(request.user, [r.executor for r in parsed], indexed=True)
        results = services.native_run_report_batch(reports=parsed, actor=self.actor)
        return Response({"results": [s.run_body(run) for run, _ in results]})
