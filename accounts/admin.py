"""Django admin for superusers: users (e-mail sign-in), teams, memberships and invitations.

Membership changes keep the rules of ``accounts.services``: every membership has
a wallet, and a team always keeps at least one owner. Invitations are only revoked or
re-sent here, through ``accounts.invitations`` like the team page.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import Count, Q
from django.utils import timezone

from accounts import invitations, mail
from accounts.credits.services import wallet_for
from accounts.models import Invitation, InvitationState, Membership, Role, Team, User
from accounts.services import LAST_OWNER, MembershipError
from accounts.tokens.services import revoke_member_tokens


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
        if obj.removed_at is not None:  # removed here as on the team page: their API tokens stop for good
            revoke_member_tokens(obj, by=request.user)

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


class InvitationStateFilter(admin.SimpleListFilter):
    """The state a person sees (``Invitation.status``): a pending invitation past its expiry
    is expired, whether or not anyone has opened its link since."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return InvitationState.choices

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == InvitationState.PENDING:
            return queryset.filter(state=InvitationState.PENDING, expires__gt=now)
        if self.value() == InvitationState.EXPIRED:
            return queryset.filter(Q(state=InvitationState.EXPIRED) | Q(state=InvitationState.PENDING,
                                                                         expires__lte=now))
        if self.value() in (InvitationState.ACCEPTED, InvitationState.REVOKED):
            return queryset.filter(state=self.value())
        return queryset


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Every team's invitations, for an operator answering "I never got the e-mail" or "withdraw
    that one": revoke (the link stops working at once) or re-send (a new e-mail, the old link
    dies), both through ``accounts.invitations``. Nothing is added or edited by hand: an
    invitation whose e-mail was never sent is one nobody can accept. The token exists only in
    the e-mail; its hash is not shown."""

    list_display = ("email", "team", "role", "state_label", "invited_by", "created", "expires", "sent")
    list_filter = (InvitationStateFilter, "role", ("sent", admin.EmptyFieldListFilter), "team")
    list_select_related = ("team", "invited_by")
    search_fields = ("email", "team__name", "team__slug")
    search_help_text = "An e-mail address, or a team's name or slug."
    date_hierarchy = "created"
    fields = ("public_id", "email", "team", "role", "state_label", "invited_by", "created", "sent", "expires",
              "ended", "accepted_by")
    readonly_fields = fields
    actions = ("revoke_selected", "resend_selected")

    def has_add_permission(self, request):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Every field is read-only: nothing to save. (Revoking and re-sending are the list's actions.)
        extra_context = {**(extra_context or {}), "show_save": False, "show_save_and_continue": False}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="State", ordering="state")
    def state_label(self, obj):
        return obj.get_status_display()

    def _refused(self, request, refused: list[str], what: str) -> None:
        if refused:
            self.message_user(request, f"Not {what} ({len(refused)}): " + " ".join(refused), messages.WARNING)

    @admin.action(description="Revoke the selected invitations", permissions=["change"])
    def revoke_selected(self, request, queryset):
        revoked, refused = 0, []
        for invitation in queryset.select_related("team"):
            if invitation.state == InvitationState.REVOKED:
                continue
            try:
                invitations.revoke(invitation)
            except MembershipError as exc:
                refused.append(f"{invitation.team.name}: {exc}")
            else:
                revoked += 1
        if revoked or not refused:
            self.message_user(request, f"Revoked {_plural(revoked, 'invitation')}; their links no longer work.",
                              messages.SUCCESS)
        self._refused(request, refused, "revoked")

    @admin.action(description="Re-send the selected invitations (new link; the old one stops working)",
                  permissions=["change"])
    def resend_selected(self, request, queryset):
        sent, refused, failed = 0, [], []
        base_url = mail.site_url(request)
        for invitation in queryset.select_related("team"):
            try:
                result = invitations.resend(invitation, base_url=base_url)
            except MembershipError as exc:
                refused.append(f"{invitation.team.name}: {exc}")
                continue
            if result.error:
                failed.append(f"{invitation.email} ({invitation.team.name}): {result.error}.")
            else:
                sent += 1
        if sent or not (refused or failed):
            self.message_user(request, f"Sent {_plural(sent, 'new invitation')}; the earlier links no longer work.",
                              messages.SUCCESS)
        self._refused(request, refused, "re-sent")
        if failed:
            self.message_user(request, f"Saved with a new link, but the e-mail could not be sent ({len(failed)}): "
                                       + " ".join(failed) + " Re-send once the mail server works.", messages.ERROR)


# Wallets and the ledger (R7) are registered below this line.
from accounts.credits import admin as credits_admin  # noqa: E402, F401 (registers Wallet, LedgerEntry, reviews)
from accounts.oidc import admin as oidc_admin  # noqa: E402, F401 (registers Identity, DomainRule, DomainJoin)
from accounts.tokens import admin as tokens_admin  # noqa: E402, F401 (registers AccessToken)
