"""Admin list filters shared by the models that can expire and be revoked (share links,
API tokens): each has ``expires_at`` (null: never) and ``revoked_at`` (null: not revoked)."""

from django.contrib import admin
from django.db.models import Q
from django.utils import timezone


class RevocableStateFilter(admin.SimpleListFilter):
    """Live / expired / revoked, as the models' ``state`` says (revoked wins over expired)."""

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
