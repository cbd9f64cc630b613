"""Admin site: subscriptions for the admin role (saved through the services,
so the URL is checked as the API checks it and the secret is never shown
back); deliveries read-only, with their status."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect

from missioncontrol.errors import ServiceError
from missioncontrol.roles import ADMIN, actor_name, has_role

from . import services
from .events import ALERT_EVENTS
from .models import WebhookDelivery, WebhookSubscription


class AdminRoleOnly(admin.ModelAdmin):
    """Alerts are the admin role's: other roles do not even see them (a
    subscription's URL may carry a receiver's token)."""

    def has_module_permission(self, request):
        return has_role(request.user, ADMIN)

    def has_view_permission(self, request, obj=None):
        return has_role(request.user, ADMIN)

    def has_add_permission(self, request):
        return has_role(request.user, ADMIN)

    def has_change_permission(self, request, obj=None):
        return has_role(request.user, ADMIN)

    def has_delete_permission(self, request, obj=None):
        return has_role(request.user, ADMIN)


class SubscriptionForm(forms.ModelForm):
    secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        min_length=services.SECRET_MIN_LENGTH,
        help_text=f"Write-only, at least {services.SECRET_MIN_LENGTH} characters; leave empty to keep the current one.",
    )
    events = forms.MultipleChoiceField(choices=[(e, e) for e in ALERT_EVENTS], widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookSubscription
        fields = ("url", "secret", "events", "project", "active", "format")

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            services.check_webhook_url(url)
        except ServiceError as exc:
            raise forms.ValidationError((exc.errors or {}).get("url") or exc.detail) from exc
        return url

    def clean_secret(self):
        secret = self.cleaned_data.get("secret") or ""
        if not secret and self.instance._state.adding:
            raise forms.ValidationError("Give the secret receivers will verify signatures with.")
        return secret


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(AdminRoleOnly):
    form = SubscriptionForm
    list_display = ("url", "event_list", "project", "format", "active", "created_by", "created_at")
    list_filter = ("active", "format", "project")
    search_fields = ("url",)
    readonly_fields = ("created_by", "created_at")

    @admin.display(description="events")
    def event_list(self, obj):
        return ", ".join(obj.events)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceError as exc:
            self.message_user(request, f"Nothing was saved: {exc.detail} {exc.errors or ''}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        project = data["project"].slug if data.get("project") else None
        if not change:
            saved = services.subscription_create(
                url=data["url"],
                secret=data["secret"],
                events=data["events"],
                project=project,
                active=data["active"],
                format=data["format"],
                actor=actor_name(request.user),
            )
        else:
            changes = {f: data[f] for f in form.changed_data if f in ("url", "events", "active", "format")}
            if "project" in form.changed_data:
                changes["project"] = project
            if data.get("secret"):
                changes["secret"] = data["secret"]
            saved = services.subscription_update(id=obj.pk, **changes)
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.subscription_delete(id=obj.pk)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(AdminRoleOnly):
    list_display = ("id", "event", "subscription", "state", "tries", "last_status", "next_try_at", "created_at")
    list_select_related = ("subscription",)
    list_filter = ("state", "event")
    search_fields = ("id",)
    readonly_fields = (
        "id",
        "subscription",
        "event",
        "body",
        "state",
        "tries",
        "last_status",
        "last_error",
        "next_try_at",
        "delivered_at",
        "created_at",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
