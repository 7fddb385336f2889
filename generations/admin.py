"""Django admin for the generations app.

Provider keys: the API key is write-only. The form has a "new API key" field
(never rendered back); saving it encrypts through ``ProviderKey.set_api_key``.
Only ``••••last4`` is ever displayed (bullets alone for a short key); the ciphertext is never shown.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import Count, Q
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from generations import gallery, sharing
from generations.keys import provider_name, validate_api_key, validate_base_url
from generations.models import Generation, Media, ProviderKey, ShareLink
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


# ---------------------------------------------------------------------------
# Generations, media and share links (R4/R6/R8) are registered below this line.
# ---------------------------------------------------------------------------


# ---- Generations and their media (R6): read-mostly ----------------------------


class MediaInline(admin.TabularInline):
    model = Media
    extra = 0
    can_delete = False
    fields = ("position", "open_link", "kind", "mime_type", "bytes", "width", "height", "duration", "sha256")
    readonly_fields = fields
    ordering = ("position",)

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="File")
    def open_link(self, obj):
        # Through the access-checked view: staff see it only if they are in the team.
        return format_html('<a href="{}">{}</a>', reverse("generations:media", args=[obj.public_id]), obj.public_id)


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    """Jobs as the engine sees them. Nothing is edited here but ``archived``; a delete
    removes the files too (``generations.gallery.delete_generation``); the ledger stays."""

    list_display = ("public_id", "short_prompt", "team", "author", "provider", "model", "status", "needs_review",
                    "progress", "estimated_cost", "actual_cost", "created")
    list_filter = ("status", "provider", "kind", "needs_review", "archived", "team")
    list_select_related = ("team", "author", "prompt")
    search_fields = ("prompt__text", "=public_id", "=provider_job_id", "author__email", "model")
    date_hierarchy = "created"
    ordering = ("-created", "-public_id")
    inlines = (MediaInline,)
    show_full_result_count = False  # no COUNT(*) over a large table on every page
    fieldsets = (
        (None, {"fields": ("public_id", "team", "author", "prompt_text", "negative_prompt_text", "archived")}),
        ("Job", {"fields": ("provider", "model", "kind", "operation", "params", "provider_key", "status",
                            "provider_status", "provider_job_id", "progress", "error", "needs_review")}),
        ("Timing", {"fields": ("created", "claimed_at", "submitted_at", "started_at", "finished_at", "deadline",
                               "next_poll_at", "poll_count", "error_count")}),
        ("Cost", {"fields": ("estimated_cost", "actual_cost")}),
        ("Lineage", {"fields": ("parent", "parent_relation", "batch")}),
        ("Provider payload", {"classes": ("collapse",), "fields": ("output_urls", "raw_payload")}),
    )
    readonly_fields = tuple(
        f for fs in fieldsets for f in fs[1]["fields"] if f != "archived"
    )

    def has_add_permission(self, request):
        return False

    @admin.display(description="Prompt")
    def short_prompt(self, obj):
        return obj.prompt.text[:60]

    @admin.display(description="Prompt")
    def prompt_text(self, obj):
        return obj.prompt.text

    @admin.display(description="Negative prompt")
    def negative_prompt_text(self, obj):
        return obj.prompt.negative_prompt

    def delete_view(self, request, object_id, extra_context=None):
        # Not while a job or credits are in play: say why instead of asking to confirm.
        obj = self.get_object(request, unquote(object_id))
        if obj is not None and (reason := gallery.why_not_deletable(obj)):
            self.message_user(request, f"Not deleted: {reason}", messages.WARNING)
            return redirect("admin:generations_generation_change", obj.pk)
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request, obj):
        gallery.delete_generation(obj)

    def delete_queryset(self, request, queryset):
        kept = []
        for obj in queryset:
            try:
                gallery.delete_generation(obj)
            except gallery.CannotDelete as exc:
                kept.append(f"{obj.public_id}: {exc}")
        if kept:
            self.message_user(request, f"Not deleted ({len(kept)}): " + "; ".join(kept), messages.WARNING)


class ShareStateFilter(admin.SimpleListFilter):
    """Live / expired / revoked, as ``ShareLink.state`` says (revoked wins over expired)."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return (("live", "Live"), ("expired", "Expired"), ("revoked", "Revoked"))

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "live":
            return queryset.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now), revoked_at__isnull=True)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    """Public share links across teams, for an operator answering "take this down": see what a
    link shows and revoke it (it stops working on the next request; the row stays, with its view
    count). Links are created by members, who alone ever see the token; only its hash is stored,
    and not shown here."""

    list_display = ("__str__", "team", "created_by", "state_label", "items", "view_count", "expires_at", "created")
    list_filter = (ShareStateFilter, "show_prompt", "team")
    list_select_related = ("team", "created_by")
    search_fields = ("title", "=public_id", "created_by__email", "=generations__public_id")
    date_hierarchy = "created"
    fields = ("public_id", "team", "title", "shared", "show_prompt", "created_by", "created", "expires_at",
              "revoked_at", "revoked_by", "view_count", "state_label")
    readonly_fields = fields
    actions = ("revoke_selected",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(item_count=Count("generations"))

    def has_add_permission(self, request):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Every field is read-only: nothing to save. (Revoking is the list's action.)
        extra_context = {**(extra_context or {}), "show_save": False, "show_save_and_continue": False}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="Items", ordering="item_count")
    def items(self, obj):
        return obj.item_count

    @admin.display(description="State")
    def state_label(self, obj):
        return obj.state

    @admin.display(description="Shares")
    def shared(self, obj):
        return format_html_join(
            ", ", '<a href="{}">{}</a>',
            ((reverse("admin:generations_generation_change", args=[g.pk]), g.public_id)
             for g in obj.generations.order_by("created", "pk")))

    @admin.action(description="Revoke the selected links", permissions=["change"])
    def revoke_selected(self, request, queryset):
        revoked = sharing.revoke_links(queryset, request.user.pk)
        self.message_user(request, f"Revoked {revoked} link{'s' if revoked != 1 else ''}; "
                                   "they no longer open anything.", messages.SUCCESS)
