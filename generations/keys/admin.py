"""Provider keys in the Django admin.

The API key is write-only. The form has a "new API key" field (never rendered back); saving
it encrypts through ``ProviderKey.set_api_key``. Only ``••••last4`` is ever displayed
(bullets alone for a short key); the ciphertext is never shown.
"""

from django import forms
from django.contrib import admin

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
                               help_text="Leave empty for the provider's own API.")

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
    list_display = ("label", "team", "provider_display", "masked_key", "is_active", "last_used", "created")
    list_filter = ("provider", "is_active", "team")
    list_select_related = ("team",)
    search_fields = ("label", "team__name", "team__slug", "provider", "api_key_last4", "base_url")
    readonly_fields = ("public_id", "masked_key", "created_by", "created", "last_used")
    autocomplete_fields = ("team",)
    actions = ("disable_keys", "enable_keys")
    fieldsets = (
        (None, {"fields": ("team", "provider", "label", "masked_key", "new_api_key")}),
        ("Endpoint", {"fields": ("base_url", "models_override")}),
        ("State", {"fields": ("is_active", "last_used", "last_error", "created_by", "created", "public_id")}),
    )

    @admin.display(description="API key")
    def masked_key(self, obj):
        return obj.masked if obj.api_key_encrypted else "—"

    @admin.display(description="Provider", ordering="provider")
    def provider_display(self, obj):
        return provider_name(obj.provider)

    def save_model(self, request, obj, form, change):
        if form.cleaned_data.get("new_api_key"):
            obj.set_api_key(form.cleaned_data["new_api_key"])
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description="Disable the selected keys")
    def disable_keys(self, request, queryset):
        self.message_user(request, f"Disabled {queryset.update(is_active=False)} key(s).")

    @admin.action(description="Enable the selected keys")
    def enable_keys(self, request, queryset):
        self.message_user(request, f"Enabled {queryset.update(is_active=True)} key(s).")
