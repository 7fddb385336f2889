"""Personal access tokens: how a script acts as one member of one team over the JSON API."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Scope(models.TextChoices):
    READ = "read", "Read: models, the gallery, generations, balance and usage"
    GENERATE = "generate", "Generate: create, cancel, retry, archive and favourite generations"
    SHARE = "share", "Share: create, list and revoke share links"


class AccessTokenQuerySet(models.QuerySet):
    def live(self):
        """Not revoked and not expired (a removed or demoted member is checked at use)."""
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now))


class AccessToken(models.Model):
    """A member's token for one team. Only the SHA-256 of the secret is stored; the secret
    (``kiln_pat_`` + 43 URL-safe characters) is shown once, when the token is made.
    ``prefix`` (the first 16 characters) is kept to tell tokens apart in lists."""

    membership = models.ForeignKey("accounts.Membership", on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(max_length=100)
    scopes = models.JSONField(default=list)
    prefix = models.CharField(max_length=16)
    token_hash = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    objects = AccessTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]
        verbose_name = "personal access token"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None and not self.is_expired

    @property
    def state(self) -> str:
        """"revoked", "expired" or "live", in that order: a revoked token that has also expired
        was stopped by someone, which is what a list should say."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.is_expired else "live"

    def get_scopes_display(self) -> str:
        return ", ".join(sorted(self.scopes)) or "none"
