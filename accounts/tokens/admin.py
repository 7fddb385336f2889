"""Personal access tokens in the Django admin: read-only, with a revoke action. Neither the
secret (never stored) nor its hash is shown: the prefix is enough to tell tokens apart."""

from django.contrib import admin, messages
from django.utils import timezone

from accounts.tokens.models import AccessToken
from project.admin_filters import RevocableStateFilter


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    """Every team's API tokens, for an operator answering "a token leaked": find it by its
    prefix (secret scanners report the start of a ``kiln_pat_`` token) and revoke it."""

    list_display = ("name", "prefix_shown", "member", "team", "scopes_shown", "state", "last_used_at", "expires_at",
                    "created")
    list_filter = (RevocableStateFilter, "membership__team")
    list_select_related = ("membership__user", "membership__team", "revoked_by")
    search_fields = ("name", "prefix", "membership__user__email", "membership__team__name")
    date_hierarchy = "created"
    fields = ("name", "prefix_shown", "member", "team", "scopes_shown", "state", "created", "expires_at",
              "last_used_at", "revoked_at", "revoked_by")
    readonly_fields = fields
    actions = ("revoke_selected",)

    def has_add_permission(self, request):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Every field is read-only: nothing to save. (Revoking is the list's action.)
        extra_context = {**(extra_context or {}), "show_save": False, "show_save_and_continue": False}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="Token", ordering="prefix")
    def prefix_shown(self, obj):
        return f"{obj.prefix}…"

    @admin.display(description="Member", ordering="membership__user__email")
    def member(self, obj):
        return obj.membership.user.email

    @admin.display(description="Team", ordering="membership__team__name")
    def team(self, obj):
        return obj.membership.team.name

    @admin.display(description="Scopes")
    def scopes_shown(self, obj):
        return obj.get_scopes_display()

    @admin.display(description="State")
    def state(self, obj):
        return obj.state

    @admin.action(description="Revoke the selected tokens", permissions=["change"])
    def revoke_selected(self, request, queryset):
        revoked = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now(), revoked_by=request.user)
        self.message_user(request, f"Revoked {revoked} token{'s' if revoked != 1 else ''}; "
                                   "they no longer work.", messages.SUCCESS)
