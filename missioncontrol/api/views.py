"""Base classes of the API views and the schema and docs pages."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.csp import CSP
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import serializers, viewsets
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from missioncontrol.roles import actor_name

from .permissions import RolePermission


def validated(serializer_class: type[serializers.Serializer], request, **kwargs: Any) -> dict[str, Any]:
    """The request body checked by ``serializer_class``; 400 with field errors otherwise."""
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class ApiViewSet(viewsets.GenericViewSet):
    """Reads for every role, writes for ``write_role``; no PUT or DELETE."""

    permission_classes = [RolePermission]
    http_method_names = ["get", "post", "patch", "head"]
    write_role: str | None = None

    @property
    def actor(self) -> str:
        return actor_name(self.request.user)


class _JsonErrors(APIView):
    """The schema and docs pages render YAML or HTML; their errors are the
    API's JSON error shape all the same."""

    permission_classes = [RolePermission]
    # Pages to read, like the view sets' reads: OPTIONS had the docs page
    # render DRF's metadata through its HTML template (a 500).
    http_method_names = ["get", "head"]

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


class SchemaView(_JsonErrors, SpectacularAPIView):
    pass


class DocsView(_JsonErrors, SpectacularSwaggerSplitView):
    """Swagger UI with its start-up script served from this URL (``?script``)
    instead of inline, so the page keeps the site's script-src 'self'. Only
    its styles need more: the page and Swagger UI set inline styles, and its
    icons are data: images."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response._csp_config = {
            **settings.SECURE_CSP,
            "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
            "img-src": [CSP.SELF, "data:"],
        }
        return response
