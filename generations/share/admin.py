"""Share links in the Django admin."""

from django.contrib import admin, messages
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html_join

from generations.share import services as sharing
from generations.share.models import ShareLink
from project.admin_filters import RevocableStateFilter


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    """Public share links across teams, for an operator answering "take this down": see what a
    link shows and revoke it (it stops working on the next request; the row stays, with its view
    count). Links are created by members, who alone ever see the token; only its hash is stored,
    and not shown here."""

    list_display = ("__str__", "team", "created_by", "state_label", "items", "view_count", "expires_at", "created")
    list_filter = (RevocableStateFilter, "show_prompt", "team")
    list_select_related = ("team", "created_by")
    search_fields = ("title", "=public_id", "created_by__email", "=generations__public_id")
    date_hierarchy = "created"
    fields = ("public_id", "team", "title", "board", "shared", "show_prompt", "created_by", "created", "expires_at",
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
