"""Provider keys in the Django admin.

The API key is write-only. The form has a "new API key" field (never rendered back); saving
it encrypts through ``ProviderKey.set_api_key``. Only ``••••last4`` is ever displayed
(bullets alone for a short key); the ciphertext is never shown.

The order of a provider's keys is shown ("Default", "Fallback 1"…) and changed only through
``generations.keys.services`` (the "Make default" action; a new key joins as a fallback
unless "Make it the default" is ticked), so the positions stay dense and one default per
provider. A key's team and provider are fixed once it is saved: moving it would break two
orders at once; add a key there instead.
"""

from django import forms
from django.contrib import admin
from django.db import transaction

from generations.keys import services
from generations.keys.models import ProviderKey
from generations.keys.services import provider_name, validate_api_key, validate_base_url
from generations.providers.registry import provider_choices


class ProviderKeyAdminForm(forms.ModelForm):
    provider = forms.ChoiceField(choices=provider_choices)
    new_api_key = forms.CharField(
        label="New API key", required=False, max_length=500, strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Write-only. Leave empty to keep the current key.")
    base_url = forms.CharField(label="Base URL", required=False, max_length=200, validators=[validate_base_url],
                               help_text="Leave empty for the provider's own API; the host alone works too.")
    make_default = forms.BooleanField(
        label="Make it the default", required=False,
        help_text="A new key is a fallback unless ticked: the provider's default keeps serving it.")

    class Meta:
        model = ProviderKey
        fields = ("team", "provider", "label", "new_api_key", "base_url", "models_override", "is_active", "last_error")

    def clean_new_api_key(self):
        raw = self.cleaned_data.get("new_api_key", "")
        if not raw:
            if not self.instance.pk:
                raise forms.ValidationError("A new key needs its API key.")
            return ""
        return validate_api_key(raw)


@admin.register(ProviderKey)
class ProviderKeyAdmin(admin.ModelAdmin):
    form = ProviderKeyAdminForm
    list_display = ("label", "team", "provider_display", "order", "masked_key", "is_active", "last_used", "created")
    list_filter = ("provider", "is_active", "team")
    list_select_related = ("team",)
    ordering = ("team", "provider", "position", "id")
    search_fields = ("label", "team__name", "team__slug", "provider", "api_key_last4", "base_url")
    readonly_fields = ("public_id", "masked_key", "order", "created_by", "created", "last_used", "last_error_at",
                       "models_listed_at")
    autocomplete_fields = ("team",)
    actions = ("make_default_action", "disable_keys", "enable_keys")
    fieldsets = (
        (None, {"fields": ("team", "provider", "label", "masked_key", "new_api_key")}),
        ("Order", {"fields": ("order", "make_default")}),
        ("Endpoint", {"fields": ("base_url", "models_override", "models_listed_at")}),
        ("State", {"fields": ("is_active", "last_used", "last_error", "last_error_at", "created_by", "created",
                              "public_id")}),
    )

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return (*fields, "team", "provider") if obj is not None else fields

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:  # the order is the services' to give; a new key only says whether it is the default
            return [(name, {**opts, "fields": tuple(f for f in opts["fields"] if f != "order")})
                    for name, opts in fieldsets]
        return [(name, {**opts, "fields": tuple(f for f in opts["fields"] if f != "make_default")})
                for name, opts in fieldsets]

    @admin.display(description="Order", ordering="position")
    def order(self, obj):
        return obj.role if obj.position is not None else "—"

    @admin.display(description="API key")
    def masked_key(self, obj):
        return obj.masked if obj.api_key_encrypted else "—"

    @admin.display(description="Provider", ordering="provider")
    def provider_display(self, obj):
        return provider_name(obj.provider)

    def save_model(self, request, obj, form, change):
        if form.cleaned_data.get("new_api_key"):
            obj.set_api_key(form.cleaned_data["new_api_key"])
        if change:
            super().save_model(request, obj, form, change)
            return
        obj.created_by = request.user
        with transaction.atomic():
            super().save_model(request, obj, form, change)  # last of its provider's keys (ProviderKey.save)
            if form.cleaned_data.get("make_default"):
                services.make_default(obj)

    @admin.action(description="Make the selected key its provider's default")
    def make_default_action(self, request, queryset):
        keys = list(queryset.select_related("team"))
        if len(keys) != 1:
            self.message_user(request, "Choose exactly one key: each provider has one default.", level="error")
            return
        services.make_default(keys[0])
        self.message_user(request, f"“{keys[0].label}” is now the default {provider_name(keys[0].provider)} key "
                                   f"of {keys[0].team}.")

    @admin.action(description="Disable the selected keys")
    def disable_keys(self, request, queryset):
        self.message_user(request, f"Disabled {queryset.update(is_active=False)} key(s).")

    @admin.action(description="Enable the selected keys")
    def enable_keys(self, request, queryset):
        self.message_user(request, f"Enabled {queryset.update(is_active=True)} key(s).")
