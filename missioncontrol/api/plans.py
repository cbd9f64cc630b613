"""REST views of plans: counts and failure diagnostics for every role;
operators create plans and lift an ``on_error`` pause."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from missioncontrol.api.filters import PlanFilter
from missioncontrol.api.validators import UUID_PATH_REGEX
from missioncontrol.api.views import ApiViewSet, validated
from missioncontrol.roles import OPERATOR
from planning import services
from planning.models import Plan
from retries.selectors import plan_list_with_projection

from .serializers import plans as s


@extend_schema_view(
    list=extend_schema(summary="List plans with counts and failure diagnostics"),
    retrieve=extend_schema(summary="One plan"),
    create=extend_schema(summary="Create a plan", request=s.PlanCreateSerializer, responses={201: s.PlanSerializer}),
)
class PlanViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    queryset = Plan.objects.select_related("project").order_by("-created_at", "id")
    serializer_class = s.PlanSerializer
    filterset_class = PlanFilter
    lookup_value_regex = UUID_PATH_REGEX
    write_role = OPERATOR

    def list(self, request):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        data = s.PlanSerializer(plan_list_with_projection(queryset if page is None else page), many=True).data
        return Response(data) if page is None else self.get_paginated_response(data)

    def retrieve(self, request, pk):
        return Response(self._plan_data(self.get_object()))

    def create(self, request):
        plan = services.plan_create(**validated(s.PlanCreateSerializer, request), actor=self.actor)
        return Response(self._plan_data(plan), status=201)

    @extend_schema(summary="Lift an on_error pause", request=None, responses={200: s.PlanSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk):
        plan = services.plan_resume(plan_id=self.kwargs["pk"], actor=self.actor)
        return Response(self._plan_data(plan))

    def _plan_data(self, plan: Plan) -> dict:
        plan = Plan.objects.select_related("project").get(pk=plan.pk)
        return s.PlanSerializer(plan_list_with_projection([plan])[0]).data
