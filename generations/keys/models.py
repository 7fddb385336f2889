"""A team's provider keys: encrypted at rest, write-only, shown by their last four characters."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from generations.keys.crypto import decrypt, encrypt
from generations.providers.redaction import MASK_HINT_MIN_LENGTH


def last_four(raw: str) -> str:
    """What of a clear key may be kept and shown beside its bullets: its last four
    characters, or nothing for a short key."""
    return raw[-4:] if len(raw) >= MASK_HINT_MIN_LENGTH else ""


class ProviderKey(models.Model):
    """A team's API key for one provider. The key is encrypted at rest and
    write-only: only its last four characters are ever displayed (none of a short key)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="provider_keys")
    provider = models.CharField(max_length=40)
    label = models.CharField(max_length=100)
    api_key_encrypted = models.TextField(editable=False)
    api_key_last4 = models.CharField(max_length=4, editable=False)  # empty for a short key (last_four)
    base_url = models.URLField(blank=True, help_text="Leave empty for the provider's own API.")
    # Gateways expose different models: an operator may list them (one id per line).
    models_override = models.TextField(blank=True, help_text="Model ids this key serves, one per line; empty for the defaults.")
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(default=timezone.now)
    last_used = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["provider", "label"]
        constraints = [models.UniqueConstraint(fields=["team", "provider", "label"], name="unique_key_label")]

    def __str__(self):
        return f"{self.label} ({self.provider}, {self.masked})"

    def set_api_key(self, raw: str) -> None:
        raw = raw.strip()
        self.api_key_encrypted = encrypt(raw)
        self.api_key_last4 = last_four(raw)

    def get_api_key(self) -> str:
        """The clear key, for the provider only. Raises if no configured key decrypts it."""
        return decrypt(self.api_key_encrypted)

    @property
    def masked(self) -> str:
        return f"••••{self.api_key_last4}" if self.api_key_last4 else "••••••••"

    @property
    def model_ids(self) -> list[str]:
        return [line.strip() for line in self.models_override.splitlines() if line.strip()]
