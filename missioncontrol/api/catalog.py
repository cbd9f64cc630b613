"""REST views of agents, projects and procedures: every role reads, admins
write. Each one parses, checks the role (RolePermission), calls one service
and serializes."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.response import Response

from missioncontrol.api.validators import SLUG_PATH_REGEX
from missioncontrol.api.views import ApiViewSet, validated
from missioncontrol.roles import ADMIN
from planning import services
from planning.models import Agent, Procedure, Project

from .serializers import catalog as s


@extend_schema_view(
    list=extend_schema(summary="List agents"),
    retrieve=extend_schema(summary="One agent"),
    create=extend_schema(
        summary="Create an agent", request=s.AgentCreateSerializer, responses={201: s.AgentSerializer}
    ),
    partial_update=extend_schema(
        summary="Change an agent's kind or active flag",
        request=s.AgentUpdateSerializer,
        responses={200: s.AgentSerializer},
    ),
)
class AgentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    queryset = Agent.objects.all()
    serializer_class = s.AgentSerializer
    lookup_field = "name"
    lookup_value_regex = SLUG_PATH_REGEX
    write_role = ADMIN

    def create(self, request):
        agent = services.agent_create(**validated(s.AgentCreateSerializer, request), actor=self.actor)
        return Response(s.AgentSerializer(agent).data, status=201)

    def partial_update(self, request, name):
        agent = services.agent_update(name=name, **validated(s.AgentUpdateSerializer, request), actor=self.actor)
        return Response(s.AgentSerializer(agent).data)


@extend_schema_view(
    list=extend_schema(summary="List projects"),
    retrieve=extend_schema(summary="One project"),
    create=extend_schema(
        summary="Create a project", request=s.ProjectCreateSerializer, responses={201: s.ProjectSerializer}
    ),
    partial_update=extend_schema(
        summary="Rename a project or change its owner (future defaults only)",
        request=s.ProjectUpdateSerializer,
        responses={200: s.ProjectSerializer},
    ),
)
class ProjectViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    queryset = Project.objects.select_related("owner")
    serializer_class = s.ProjectSerializer
    lookup_field = "slug"
    lookup_value_regex = SLUG_PATH_REGEX
    write_role = ADMIN

    def create(self, request):
        project = services.project_create(**validated(s.ProjectCreateSerializer, request), actor=self.actor)
        return Response(s.ProjectSerializer(project).data, status=201)

    def partial_update(self, request, slug):
        project = services.project_update(slug=slug, **validated(s.ProjectUpdateSerializer, request), actor=self.actor)
        return Response(s.ProjectSerializer(project).data)


@extend_schema_view(
    list=extend_schema(summary="List procedures"),
    retrieve=extend_schema(summary="One procedure"),
    create=extend_schema(
        summary="Create a procedure", request=s.ProcedureCreateSerializer, responses={201: s.ProcedureSerializer}
    ),
    partial_update=extend_schema(
        summary="Change a procedure", request=s.ProcedureUpdateSerializer, responses={200: s.ProcedureSerializer}
    ),
)
class ProcedureViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    queryset = Procedure.objects.all()
    serializer_class = s.ProcedureSerializer
    lookup_field = "slug"
    lookup_value_regex = SLUG_PATH_REGEX
    write_role = ADMIN

    def create(self, request):
        procedure = services.procedure_create(**validated(s.ProcedureCreateSerializer, request), actor=self.actor)
        return Response(s.ProcedureSerializer(procedure).data, status=201)

    def partial_update(self, request, slug):
        procedure = services.procedure_update(
            slug=slug, **validated(s.ProcedureUpdateSerializer, request), actor=self.actor
        )
        return Response(s.ProcedureSerializer(procedure).data)
