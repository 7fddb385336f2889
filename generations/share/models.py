"""Public share links: a hashed token that shows chosen generations to anyone holding it."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class ShareLink(models.Model):
    """A public link to one or more generations. Only the SHA-256 of the token
    is stored; the token itself is shown once, when the link is created."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="share_links")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    title = models.CharField(max_length=200, blank=True)
    generations = models.ManyToManyField("generations.Generation", related_name="share_links")
    # A board's link shares the board as it is when it is opened (results added later too),
    # not the results it held when shared; ``generations`` stays empty. A deleted board's
    # link opens nothing.
    board = models.ForeignKey("generations.Board", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="share_links")
    show_prompt = models.BooleanField(default=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    view_count = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["team", "-created"], name="share_team_created")]

    def __str__(self):
        return self.title or str(self.public_id)

    def is_live(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @property
    def state(self) -> str:
        """"live", "expired" or "revoked" (revoked wins over expired)."""
        if self.revoked_at is not None:
            return "revoked"
        return "live" if self.is_live() else "expired"
