from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from django.contrib import admin

from accounts.oidc.models import DomainJoin, DomainRule, Identity


@admin.register(Identity)
class IdentityAdmin(admin.ModelAdmin):
    """Deleting an identity unlinks it: the person's next sign-in through the provider links
    again by verified address. Clearing "lost" lets a refused account in again."""

    list_display = ["email", "provider", "user", "last_login", "confirmed_at", "lost_at"]
    list_filter = ["provider", ("lost_at", admin.EmptyFieldListFilter)]
    search_fields = ["email", "user__email", "subject"]
    readonly_fields = ["user", "provider", "subject", "email", "created", "last_login", "confirmed_at", "lost_reason"]
    fields = [*readonly_fields, "lost_at"]

    def has_add_permission(self, request):
        return False


@admin.register(DomainRule)
class DomainRuleAdmin(admin.ModelAdmin):
    list_display = ["domain", "provider", "team", "role", "enabled", "created_by", "created"]
    list_filter = ["provider", "enabled", "role"]
    search_fields = ["domain", "team__name"]
    readonly_fields = ["team", "provider", "domain", "created_by", "created"]


@admin.register(DomainJoin)
class DomainJoinAdmin(admin.ModelAdmin):
    list_display = ["email", "team", "role", "provider", "created"]
    list_filter = ["provider"]
    search_fields = ["email", "team__name"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# allauth is installed for its protocol only: its models stay empty (the providers come from the
# environment, identities are Identity rows), so its admin pages would only mislead.
for _model in (EmailAddress, SocialAccount, SocialApp, SocialToken):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
