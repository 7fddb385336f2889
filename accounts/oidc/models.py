"""An account's identities at the providers, and the teams' domain rules."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from generations.keys.crypto import decrypt, encrypt

# The roles a domain rule may give (accounts.models.Role's values; never "owner"). Spelled out
# here because accounts.models imports this module to register it.
RULE_ROLES = [("member", "Member"), ("admin", "Admin")]


class Identity(models.Model):
    """A person at one provider (its ``sub``), and the account it signs in as.

    ``confirmed_at`` is when the provider last vouched for them (a sign-in or a refresh);
    ``lost_at`` when it last refused them: from then on the account's sessions end and its
    API tokens are refused, until the person signs in through the provider again."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="identities")
    provider = models.CharField(max_length=40)
    subject = models.CharField(max_length=255)
    # The address the provider asserted (verified) at the last sign-in.
    email = models.EmailField()
    refresh_token_encrypted = models.TextField(blank=True, editable=False)
    created = models.DateTimeField(default=timezone.now)
    last_login = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(default=timezone.now)
    lost_at = models.DateTimeField(null=True, blank=True)
    lost_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name_plural = "identities"
        ordering = ["provider", "email"]
        constraints = [models.UniqueConstraint(fields=["provider", "subject"], name="unique_identity")]

    def __str__(self):
        return f"{self.email} at {self.provider}"

    @property
    def refresh_token(self) -> str:
        return decrypt(self.refresh_token_encrypted) if self.refresh_token_encrypted else ""

    def set_refresh_token(self, value: str) -> None:
        self.refresh_token_encrypted = encrypt(value) if value else ""


class DomainRule(models.Model):
    """Anyone who signs in through ``provider`` with a verified address at ``domain`` joins
    ``team`` as ``role`` (member or admin, never owner). Made by an owner, off until enabled."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="domain_rules")
    provider = models.CharField(max_length=40)
    domain = models.CharField(max_length=253)
    role = models.CharField(max_length=10, choices=RULE_ROLES, default="member")
    enabled = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["domain", "provider"]
        constraints = [models.UniqueConstraint(fields=["team", "provider", "domain"], name="unique_domain_rule")]

    def __str__(self):
        return f"@{self.domain} through {self.provider} → {self.team} ({self.role})"


class DomainJoin(models.Model):
    """Who joined a team through one of its domain rules, and when (the team page lists them)."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="domain_joins")
    membership = models.OneToOneField("accounts.Membership", on_delete=models.CASCADE, related_name="domain_join")
    rule = models.ForeignKey(DomainRule, null=True, on_delete=models.SET_NULL, related_name="joins")
    provider = models.CharField(max_length=40)
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=RULE_ROLES)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return f"{self.email} joined {self.team} through {self.provider}"
