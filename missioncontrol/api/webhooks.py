"""Alert webhook subscriptions and their deliveries (README, "Alerts"): an
extension of the contract, for the admin role only, reads included (a
receiver URL may carry the receiver's own token)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from missioncontrol.alerts import services
from missioncontrol.alerts.events import ALERT_EVENTS
from missioncontrol.alerts.models import WebhookDelivery, WebhookSubscription
from missioncontrol.roles import ADMIN, has_role
from planning.models import Project

from .fields import StrictBooleanField, StrictCharField
from .validators import storable_json
from .views import ApiViewSet, validated

UUID_PATH_REGEX = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


class AdminOnly(BasePermission):
    message = "Only the admin role manages alert webhooks."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and has_role(request.user, ADMIN))


def _events(**kwargs) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.ChoiceField(choices=ALERT_EVENTS), allow_empty=False, max_length=20, **kwargs
    )


class WebhookSerializer(serializers.ModelSerializer):
    project: serializers.SlugRelatedField[Project] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )
    events = serializers.ListField(child=serializers.ChoiceField(choices=ALERT_EVENTS))

    class Meta:
        model = WebhookSubscription
        fields = ("id", "url", "events", "project", "active", "format", "created_by", "created_at")
        read_only_fields = fields


class WebhookCreateSerializer(serializers.Serializer):
    url = StrictCharField(max_length=2000, validators=[storable_json], help_text="https, on a public address.")
    secret = StrictCharField(
        min_length=services.SECRET_MIN_LENGTH,
        max_length=200,
        trim_whitespace=False,
        write_only=True,
        validators=[storable_json],
        help_text="Signs every delivery (X-MC-Signature); never shown back.",
    )
    events = _events()
    project = StrictCharField(max_length=100, required=False, allow_null=True, help_text="Project slug, or null.")
    active = StrictBooleanField(default=True)
    format = serializers.ChoiceField(choices=WebhookSubscription.Format.choices, default="json")


class WebhookUpdateSerializer(serializers.Serializer):
    url = StrictCharField(max_length=2000, required=False, validators=[storable_json])
    secret = StrictCharField(
        min_length=services.SECRET_MIN_LENGTH,
        max_length=200,
        trim_whitespace=False,
        write_only=True,
        required=False,
        validators=[storable_json],
    )
    events = _events(required=False)
    project = StrictCharField(max_length=100, required=False, allow_null=True)
    active = StrictBooleanField(required=False)
    format = serializers.ChoiceField(choices=WebhookSubscription.Format.choices, required=False)


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = (
            "id",
            "event",
            "state",
            "tries",
            "last_status",
            "last_error",
            "next_try_at",
            "delivered_at",
            "created_at",
            "body",
        )
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(summary="List alert webhook subscriptions"),
    retrieve=extend_schema(summary="One alert webhook subscription"),
    create=extend_schema(
        summary="Subscribe a URL to alert events", request=WebhookCreateSerializer, responses={201: WebhookSerializer}
    ),
    partial_update=extend_schema(
        summary="Change a subscription", request=WebhookUpdateSerializer, responses={200: WebhookSerializer}
    ),
    destroy=extend_schema(
        summary="Delete a subscription and its delivery records",
        responses={204: OpenApiResponse(description="Deleted.")},
    ),
    deliveries=extend_schema(
        summary="A subscription's deliveries, newest first", responses={200: DeliverySerializer(many=True)}
    ),
)
class WebhookViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    queryset = WebhookSubscription.objects.select_related("project").order_by("-created_at", "id")
    serializer_class = WebhookSerializer
    permission_classes = [AdminOnly]
    http_method_names = ["get", "post", "patch", "delete", "head"]
    lookup_value_regex = UUID_PATH_REGEX

    def create(self, request):
        subscription = services.subscription_create(**validated(WebhookCreateSerializer, request), actor=self.actor)
        return Response(WebhookSerializer(subscription).data, status=201)

    def partial_update(self, request, pk):
        subscription = services.subscription_update(id=pk, **validated(WebhookUpdateSerializer, request))
        return Response(WebhookSerializer(subscription).data)

    def destroy(self, request, pk):
        services.subscription_delete(id=pk)
        return Response(status=204)

    @action(detail=True, methods=["get"], serializer_class=DeliverySerializer)
    def deliveries(self, request, pk):
        subscription = self.get_object()
        page = self.paginate_queryset(
            WebhookDelivery.objects.filter(subscription=subscription).order_by("-created_at", "-id")
        )
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)
