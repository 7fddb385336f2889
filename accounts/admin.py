"""Django admin for superusers: users (e-mail sign-in), teams and memberships.

Membership changes keep the rules of ``accounts.services``: every membership has
a wallet, and a team always keeps at least one owner.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import Count, Q

from accounts.credits import wallet_for
from accounts.models import Membership, Role, Team, User
from accounts.services import LAST_OWNER


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)

    def clean_email(self):
        email = User.objects.normalize_email(self.cleaned_data["email"]).lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("A user with this e-mail address already exists.")
        return email


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserEditForm
    add_form = UserCreationForm
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("name",)}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "usable_password", "password1", "password2")}),
    )
    list_display = ("email", "name", "team_list", "is_staff", "is_superuser", "is_active", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active", "memberships__team")
    search_fields = ("email", "name")
    ordering = ("email",)
    readonly_fields = ("last_login", "date_joined")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("memberships__team")

    @admin.display(description="Teams")
    def team_list(self, obj):
        return ", ".join(m.team.name for m in obj.memberships.all() if m.removed_at is None) or "—"


class MembershipInline(admin.TabularInline):
    """Members at a glance; changes go through the Membership admin (wallets, owner rule)."""

    model = Membership
    fields = ("user", "role", "created", "removed_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "member_count", "monthly_budget", "monthly_allowance", "created")
    search_fields = ("name", "slug")
    readonly_fields = ("public_id", "created")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            _members=Count("memberships", filter=Q(memberships__removed_at__isnull=True)))

    @admin.display(description="Members", ordering="_members")
    def member_count(self, obj):
        return obj._members


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ("team", "user", "role", "removed_at")

    def clean(self):
        cleaned = super().clean()
        instance = self.instance
        if instance.pk and instance.role == Role.OWNER and instance.removed_at is None:
            stays_owner = cleaned.get("role") == Role.OWNER and not cleaned.get("removed_at")
            others = Membership.objects.active().filter(team_id=instance.team_id, role=Role.OWNER).exclude(pk=instance.pk)
            if not stays_owner and not others.exists():
                raise forms.ValidationError(LAST_OWNER)
        return cleaned


class CurrentFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("current", "Current members"), ("removed", "Removed")]

    def queryset(self, request, queryset):
        if self.value() == "current":
            return queryset.filter(removed_at__isnull=True)
        if self.value() == "removed":
            return queryset.filter(removed_at__isnull=False)
        return queryset


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    form = MembershipForm
    list_display = ("user", "team", "role", "is_current", "created")
    list_filter = ("role", CurrentFilter, "team")
    list_select_related = ("user", "team")
    search_fields = ("user__email", "user__name", "team__name", "team__slug")
    autocomplete_fields = ("user", "team")
    readonly_fields = ("public_id", "created")

    @admin.display(boolean=True, description="Current")
    def is_current(self, obj):
        return obj.removed_at is None

    def get_readonly_fields(self, request, obj=None):
        # Moving a membership to another team or person would move its wallet and ledger.
        return (*self.readonly_fields, "team", "user") if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        wallet_for(obj)

    def _is_last_owner(self, obj) -> bool:
        return (obj.role == Role.OWNER and obj.removed_at is None and not Membership.objects.active()
                .filter(team_id=obj.team_id, role=Role.OWNER).exclude(pk=obj.pk).exists())

    def has_delete_permission(self, request, obj=None):
        if obj is not None and self._is_last_owner(obj):
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset):
        doomed = list(queryset.select_related("team"))
        orphaned = {m.team.name for m in doomed if m.role == Role.OWNER and m.removed_at is None
                    and not Membership.objects.active().filter(team_id=m.team_id, role=Role.OWNER)
                    .exclude(pk__in=[d.pk for d in doomed]).exists()}
        if orphaned:
            teams = ", ".join(sorted(orphaned))
            self.message_user(request, f"Nothing deleted: it would leave {teams} without an owner.", messages.ERROR)
            return
        super().delete_queryset(request, queryset)


# Wallets and the ledger (R7) are registered below this line.
from accounts import admin_credits  # noqa: E402, F401 (registers Wallet, LedgerEntry, reviews)
