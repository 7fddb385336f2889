"""Users, teams, memberships and invitations (the credits they spend are in ``accounts.credits``)."""

import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models import Q
from django.utils import timezone


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra):
        if not email:
            raise ValueError("An e-mail address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in by e-mail."""

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        ordering = ["email"]

    def __str__(self):
        return self.email

    def get_full_name(self):
        return self.name or self.email

    def get_short_name(self):
        return self.name or self.email.split("@")[0]


class Team(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    created = models.DateTimeField(default=timezone.now)
    # Optional controls, in credits; null means no limit / no allowance.
    monthly_budget = models.BigIntegerField(null=True, blank=True,
        help_text="Most credits the whole team may spend in a calendar month.")
    monthly_allowance = models.BigIntegerField(null=True, blank=True,
        help_text="Credits each member's wallet is topped up to on the first of each month.")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


class MembershipQuerySet(models.QuerySet):
    def active(self):
        """Memberships that have not been removed (see ``removed_at``)."""
        return self.filter(removed_at__isnull=True)


class Membership(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created = models.DateTimeField(default=timezone.now)
    # A removed member keeps the row (and so its wallet and append-only ledger);
    # adding them again restores it. Null means a current member.
    removed_at = models.DateTimeField(null=True, blank=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="unique_membership")]
        ordering = ["team__name", "user__email"]

    def __str__(self):
        return f"{self.user} in {self.team} ({self.role})"

    @property
    def is_manager(self) -> bool:
        """Owners and admins manage members, keys and credits."""
        return self.role in (Role.OWNER, Role.ADMIN)


class InvitationState(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"


class Invitation(models.Model):
    """An e-mailed offer to join a team with a role: the only way a membership is created.

    The link's token is random (256 bits) and stored only as its sha256, so neither the
    database nor any page can give it back; a re-send replaces it, so the old link stops
    working. Only a pending invitation before ``expires`` can be accepted, once.
    (``accounts.invitations`` holds the rules.)"""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    # Null: the operator (manage.py teams) or the upgrade that made it.
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(default=timezone.now)
    # When the current link was e-mailed; null: never (an upgraded member: re-send it).
    sent = models.DateTimeField(null=True, blank=True)
    expires = models.DateTimeField()
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    state = models.CharField(max_length=10, choices=InvitationState.choices, default=InvitationState.PENDING)
    ended = models.DateTimeField(null=True, blank=True, help_text="When it was accepted, revoked or found expired.")
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created"]
        constraints = [
            # One open invitation per address and team: inviting again re-sends it.
            models.UniqueConstraint(fields=["team", "email"], condition=Q(state="pending"),
                                    name="one_pending_invitation_per_team_and_email"),
        ]

    def __str__(self):
        return f"{self.email} to {self.team} ({self.role}, {self.status})"

    @property
    def status(self) -> str:
        """The state a person sees: a pending invitation past ``expires`` is expired."""
        if self.state == InvitationState.PENDING and self.expires <= timezone.now():
            return InvitationState.EXPIRED
        return self.state

    def get_status_display(self) -> str:
        return InvitationState(self.status).label


# The credits room's models: imported here so Django registers them with this app.
from accounts.credits.models import LedgerEntry, LedgerKind, Wallet  # noqa: E402, F401
from accounts.oidc.models import DomainJoin, DomainRule, Identity  # noqa: E402, F401
from accounts.tokens.models import AccessToken  # noqa: E402, F401
