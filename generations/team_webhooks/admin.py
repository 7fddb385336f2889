"""Webhook endpoints and their deliveries in the Django admin. The signing secret is never
shown (not even encrypted); an endpoint made here gets one, which nobody sees: rotate it from
the team's page to get one to copy."""

from django import forms
from django.contrib import admin

from generations.team_webhooks.forms import clean_endpoint_url
from generations.team_webhooks.models import WebhookDelivery, WebhookEndpoint, new_secret


class EndpointAdminForm(forms.ModelForm):
    class Meta:
        model = WebhookEndpoint
        fields = ("team", "url", "events", "description", "is_active", "disabled_reason")

    def clean_url(self) -> str:
        return clean_endpoint_url(self.cleaned_data.get("url", ""))


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("url", "team", "is_active", "failing_since", "consecutive_failures", "created")
    list_filter = ("is_active", "team")
    list_select_related = ("team",)
    search_fields = ("url", "description", "team__name", "team__slug")
    autocomplete_fields = ("team",)
    form = EndpointAdminForm
    readonly_fields = ("public_id", "created_by", "created", "updated", "failing_since", "consecutive_failures",
                       "last_success_at", "disabled_at")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
            obj.set_secret(new_secret())
        super().save_model(request, obj, form, change)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("msg_id", "event_type", "endpoint", "status", "attempts", "last_status_code", "created")
    list_filter = ("status", "event_type")
    list_select_related = ("endpoint",)
    search_fields = ("msg_id", "event_key", "endpoint__url")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request):
        return False
