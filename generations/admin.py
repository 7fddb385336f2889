"""Django admin for generations and their media; provider keys and share links register
from their rooms (``generations.keys.admin``, ``generations.share.admin``), imported below."""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html

from generations.gallery import queries as gallery
from generations.models import Generation, Media

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
    removes the files too (``generations.gallery.queries.delete_generation``); the ledger stays."""

    list_display = ("public_id", "short_prompt", "team", "author", "provider", "model", "status", "needs_review",
                    "progress", "estimated_cost", "actual_cost", "created")
    list_filter = ("status", "provider", "kind", "error_kind", "needs_review", "archived", "team")
    list_select_related = ("team", "author", "prompt")
    search_fields = ("prompt__text", "=public_id", "=provider_job_id", "author__email", "model")
    date_hierarchy = "created"
    ordering = ("-created", "-public_id")
    inlines = (MediaInline,)
    show_full_result_count = False  # no COUNT(*) over a large table on every page
    fieldsets = (
        (None, {"fields": ("public_id", "team", "author", "prompt_text", "negative_prompt_text", "archived")}),
        ("Job", {"fields": ("provider", "model", "kind", "operation", "params", "provider_key", "key_note", "status",
                            "provider_status", "provider_job_id", "progress", "error", "error_kind", "needs_review")}),
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


from generations.boards import admin as boards_admin  # noqa: E402, F401 (registers Board)
from generations.keys import admin as keys_admin  # noqa: E402, F401 (registers ProviderKey)
from generations.prompt_templates import admin as templates_admin  # noqa: E402, F401 (registers PromptTemplate)
from generations.share import admin as share_admin  # noqa: E402, F401 (registers ShareLink)
from generations.team_webhooks import admin as webhooks_admin  # noqa: E402, F401 (registers WebhookEndpoint)
