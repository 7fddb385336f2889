"""A team's provider keys: encrypted at rest, write-only, shown by their last four characters.

The keys of one provider in a team are in an explicit order (``position``): position 0 is
the **default**, the one every job starts with; 1, 2, … are **fallbacks**, tried in that
order when a key is refused (``generations.engine``) or does not serve the model asked for.
A new key joins at the end unless it is made the default; ``generations.keys.services``
keeps the positions dense (0, 1, 2…) as keys are added, moved and deleted."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Max, Q
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
    # 0: the default key of its provider; 1, 2, …: the fallbacks, in the order they are tried.
    # No default: ``save`` puts a new key last (or first, when its provider has no key yet).
    position = models.PositiveIntegerField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(default=timezone.now)
    last_used = models.DateTimeField(null=True, blank=True)
    # Only problems of the key itself: refused (401/402/403), out of quota, its base URL
    # unreachable or answering no route. A member's mistake (an unknown template) is not one.
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    # An OpenAI-compatible gateway's own list of its video models (GET /v1/models), cached:
    # fetched by "Test key" or "Refresh models", used when ``models_override`` is empty.
    listed_models = models.JSONField(default=list, blank=True)
    models_listed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["provider", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "provider", "label"], name="unique_key_label"),
            models.UniqueConstraint(fields=["team", "provider"], condition=Q(position=0), name="one_default_key"),
        ]

    def __str__(self):
        return f"{self.label} ({self.provider}, {self.masked})"

    def save(self, *args, **kwargs):
        if self.position is None:
            # A key made outside the services (a fixture, the demo): after its provider's others.
            last = ProviderKey.objects.filter(team_id=self.team_id, provider=self.provider).aggregate(
                last=Max("position"))["last"]
            self.position = 0 if last is None else last + 1
        super().save(*args, **kwargs)

    @property
    def is_default(self) -> bool:
        return self.position == 0

    @property
    def role(self) -> str:
        """"Default" or "Fallback 1", "Fallback 2"…: its place among its provider's keys."""
        return "Default" if self.position == 0 else f"Fallback {self.position}"

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
    def override_ids(self) -> list[str]:
        """The model ids an admin listed on the key by hand."""
        return [line.strip() for line in self.models_override.splitlines() if line.strip()]

    @property
    def model_ids(self) -> list[str]:
        """The models this key serves, for ``Provider.models``: the ids listed by hand, else the
        gateway's own list as last fetched, else none (the provider's documented catalog)."""
        return self.override_ids or [str(m) for m in self.listed_models or [] if isinstance(m, str) and m]
