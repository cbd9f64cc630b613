"""REST views of tasks: list, create and edit them, launch, rerun (one or
many at once), repair and cancel them, and read their attempts and ledger.
Every role reads; operators write. Each view parses, checks the role
(RolePermission), calls one service and serializes."""

from __future__ import annotations

from django.db.models import Prefetch, prefetch_related_objects
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, mixins
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from missioncontrol.api.filters import TaskFilter
from missioncontrol.api.idempotency import (
    IDEMPOTENCY_PARAMETER,
    attempt_response,
    bulk_attempt_response,
    idempotency_key,
)
from missioncontrol.api.permissions import RolePermission
from missioncontrol.api.schema import error
from missioncontrol.api.validators import SLUG_PATH_REGEX
from missioncontrol.api.views import ApiViewSet, validated
from missioncontrol.errors import not_found
from missioncontrol.roles import OPERATOR
from planning import services
from planning.models import Event, PlanningTask
from planning.services import agent_get
from retries import services as retry_services
from retries.models import PhaseOutcome
from retries.selectors import attempts_for_task, task_queryset

from .serializers import tasks as s
from .serializers.attempts import AttemptSerializer
from .serializers.previews import ActionPreviewSerializer

CONFLICT = error("The transition is not allowed now (see `code`).")


def tasks_with_attempts():
    """task_queryset plus the current attempt's phases: a fixed number of queries."""
    return task_queryset().prefetch_related(
        # current_attempts is the to_attr of task_queryset's own Prefetch,
        # which the django-stubs plugin cannot follow.
        Prefetch("current_attempts__phase_outcomes", queryset=PhaseOutcome.objects.order_by("at", "id"))  # type: ignore[misc]
    )


def _agent(name: str | None):
    """The explicit assignee, checked as the action checks it (400 when
    unknown or inactive)."""
    return agent_get(name=name, active_only=True) if name else None


def _preview_response(preview) -> Response:
    if preview.task is None:
        raise not_found("task", preview.slug)
    return Response(preview.as_dict())


def attempt_data(attempt) -> dict:
    return AttemptSerializer(attempt).data


def attempts_data(attempts: list) -> list:
    """Many attempts, their phases read in one query, not one per attempt."""
    prefetch_related_objects(attempts, "phase_outcomes", "task", "requested_assignee")
    # many=True makes a ListSerializer, whose data is a list; the stubs type
    # the call as the item serializer.
    return AttemptSerializer(attempts, many=True).data  # type: ignore[return-value]


TASK_ACTION_ERRORS = {
    400: error("Bad input: `errors` maps each field to its messages; nothing changed."),
    404: error("Unknown task."),
    409: CONFLICT,
    422: error("idempotency_key_reused: the key was used for this task with a different body."),
}


@extend_schema_view(
    list=extend_schema(summary="List tasks"),
    retrieve=extend_schema(summary="One task with its current attempt and diagnostics"),
    create=extend_schema(
        summary="Create a task in draft", request=s.TaskCreateSerializer, responses={201: s.TaskSerializer}
    ),
    partial_update=extend_schema(
        summary="Edit title, params, assignee or max_attempts (never status)",
        request=s.TaskUpdateSerializer,
        responses={200: s.TaskSerializer},
    ),
)
class TaskViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    serializer_class = s.TaskSerializer
    filterset_class = TaskFilter
    lookup_field = "slug"
    lookup_value_regex = SLUG_PATH_REGEX
    write_role = OPERATOR

    def get_queryset(self):
        return tasks_with_attempts()

    def create(self, request):
        task = services.task_create(**validated(s.TaskCreateSerializer, request), actor=self.actor)
        return Response(self._task_data(task.slug), status=201)

    def partial_update(self, request, slug):
        if isinstance(request.data, dict):
            fixed = sorted(set(request.data) & s.TASK_READ_ONLY)
            if fixed:
                raise ValidationError(
                    {
                        f: [
                            "This field cannot be changed here; status moves only through launch, rerun, "
                            "repair and cancel."
                        ]
                        for f in fixed
                    }
                )
        changes = validated(s.TaskUpdateSerializer, request)
        task = services.task_update(slug=slug, **changes, actor=self.actor)
        return Response(self._task_data(task.slug))

    @extend_schema(
        summary="Launch a draft task: attempt 1",
        request=None,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            201: OpenApiResponse(AttemptSerializer, description="Attempt 1 was created."),
            200: OpenApiResponse(AttemptSerializer, description="Already launched: the initial attempt."),
            **TASK_ACTION_ERRORS,
        },
    )
    @action(detail=True, methods=["post"])
    def launch(self, request, slug):
        key = idempotency_key(request)
        return attempt_response(
            lambda: retry_services.task_launch(slug=slug, actor=self.actor, idempotency_key=key), attempt_data
        )

    @extend_schema(
        summary="Rerun: a fresh attempt of a failed, blocked or cancelled task",
        request=s.RerunSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: AttemptSerializer, **TASK_ACTION_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def rerun(self, request, slug):
        data = validated(s.RerunSerializer, request)
        key = idempotency_key(request)
        return attempt_response(
            lambda: retry_services.task_rerun(slug=slug, actor=self.actor, idempotency_key=key, **data), attempt_data
        )

    @extend_schema(
        summary="Repair: reopen or fix a task with a reason",
        request=s.RepairSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: AttemptSerializer, **TASK_ACTION_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def repair(self, request, slug):
        data = validated(s.RepairSerializer, request)
        key = idempotency_key(request)
        return attempt_response(
            lambda: retry_services.task_repair(slug=slug, actor=self.actor, idempotency_key=key, **data), attempt_data
        )

    @extend_schema(
        summary="Preview a rerun: what it would do, or the refusal and its code; writes nothing",
        description="Same body and role as `rerun/`. Answers 200 with `allowed` false and the `refusal` the rerun "
        "would answer (its `code` as in the 409) when the task cannot be rerun now.",
        request=s.RerunSerializer,
        responses={200: ActionPreviewSerializer, 400: TASK_ACTION_ERRORS[400], 404: TASK_ACTION_ERRORS[404]},
    )
    @action(detail=True, methods=["post"], url_path="rerun/preview", url_name="rerun-preview")
    def rerun_preview(self, request, slug):
        data = validated(s.RerunSerializer, request)
        (preview,) = retry_services.task_rerun_previews(
            slugs=[slug],
            reason=data["reason"],
            assignee=_agent(data["assignee"]),
            override_budget=data["override_budget"],
            supersede_active=data["supersede_active"],
        )
        return _preview_response(preview)

    @extend_schema(
        summary="Preview a repair: what it would do, or the refusal and its code; writes nothing",
        description="Same body and role as `repair/`.",
        request=s.RepairSerializer,
        responses={200: ActionPreviewSerializer, 400: TASK_ACTION_ERRORS[400], 404: TASK_ACTION_ERRORS[404]},
    )
    @action(detail=True, methods=["post"], url_path="repair/preview", url_name="repair-preview")
    def repair_preview(self, request, slug):
        data = validated(s.RepairSerializer, request)
        (preview,) = retry_services.task_repair_previews(
            slugs=[slug], reason=data["reason"], assignee=_agent(data["assignee"])
        )
        return _preview_response(preview)

    @extend_schema(
        summary="Cancel the task and its current attempt",
        request=s.ReasonSerializer,
        responses={200: s.TaskSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, slug):
        data = validated(s.ReasonSerializer, request)
        task = retry_services.task_cancel(slug=slug, actor=self.actor, **data)
        return Response(self._task_data(task.slug))

    def _task_data(self, slug: str) -> dict:
        return s.TaskSerializer(tasks_with_attempts().get(slug=slug)).data


@extend_schema_view(
    create=extend_schema(
        summary="Rerun many tasks at once, all or nothing",
        description=(
            "Each task gets what `POST /tasks/{slug}/rerun/` would give it, with the same rules and the same "
            "options for all. If any task is unknown (404) or cannot be rerun now (409 `rerun_refused`), "
            "nothing changes and `errors` maps each such slug to its reason. With an Idempotency-Key, a repeat "
            "of the same request returns the first response and creates nothing."
        ),
        request=s.BulkRerunSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            201: OpenApiResponse(s.BulkRerunResultSerializer, description="One new attempt per task, in order."),
            400: error("Bad input: `errors` maps each field to its messages; nothing changed."),
            404: error("`errors` maps each unknown slug to a message; nothing changed."),
            409: error("rerun_refused: `errors` maps each task that cannot be rerun to its reason; nothing changed."),
            422: error("idempotency_key_reused: the key was used for these tasks with a different body."),
        },
    )
)
class BulkRerunViewSet(ApiViewSet):
    """``POST /reruns/``: an extension of the API for operators who rerun the
    failed tasks of a plan together (one transaction instead of one request
    per task)."""

    write_role = OPERATOR
    serializer_class = s.BulkRerunSerializer

    def create(self, request):
        data = validated(s.BulkRerunSerializer, request)
        key = idempotency_key(request)
        slugs = data.pop("tasks")
        return bulk_attempt_response(
            lambda: retry_services.task_rerun_many(slugs=slugs, actor=self.actor, idempotency_key=key, **data),
            attempts_data,
        )


class _TaskChildList(generics.ListAPIView):
    permission_classes = [RolePermission]
    http_method_names = ["get", "head"]
    filter_backends: list = []

    def task(self) -> PlanningTask:
        return get_object_or_404(PlanningTask.objects.only("id", "slug"), slug=self.kwargs["slug"])


@extend_schema(
    summary="The task's attempts, newest first",
    parameters=[OpenApiParameter("slug", str, OpenApiParameter.PATH, pattern=f"^{SLUG_PATH_REGEX}$")],
)
class TaskAttemptList(_TaskChildList):
    serializer_class = AttemptSerializer

    def get_queryset(self):
        return attempts_for_task(self.task()).select_related("task")


@extend_schema(
    summary="The task's ledger, oldest first",
    parameters=[OpenApiParameter("slug", str, OpenApiParameter.PATH, pattern=f"^{SLUG_PATH_REGEX}$")],
)
class TaskEventList(_TaskChildList):
    serializer_class = s.EventSerializer

    def get_queryset(self):
        return Event.objects.filter(task=self.task()).select_related("task").order_by("id")
