"""Provider keys: validation and the changes made from the team page, the admin and
``manage.py providerkeys``. The clear key goes in once and is only ever decrypted
for the provider (``ProviderKey.get_api_key``)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404

from accounts.models import Membership, Team
from generations.keys.crypto import DecryptionError, rotate
from generations.keys.models import ProviderKey
from generations.models import TERMINAL
from generations.providers import http
from generations.providers.registry import PROVIDER_NAMES, PROVIDERS

MAX_KEY_LENGTH = 500
_url_validator = URLValidator(schemes=["http", "https"])


def validate_provider(provider: str) -> None:
    if provider not in PROVIDERS:
        raise ValidationError(
            f"Unknown provider {provider!r}; known: {', '.join(sorted(PROVIDERS))}.", code="provider")


def validate_base_url(url: str) -> None:
    """An http(s) URL with a host, or empty (the provider's own API); not a private address
    unless the operator allows it (``http.check_base_url``)."""
    if not url:
        return
    try:
        _url_validator(url)
    except ValidationError:
        raise ValidationError(f"{url!r} is not an http(s) URL.", code="base_url") from None
    try:
        http.check_base_url(url)
    except http.DownloadError as exc:
        raise ValidationError(exc.message, code="base_url") from None


def validate_api_key(raw: str) -> str:
    key = (raw or "").strip()
    if not key:
        raise ValidationError("The API key is empty.", code="api_key")
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError(f"The API key is longer than {MAX_KEY_LENGTH} characters.", code="api_key")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise ValidationError("The API key must not contain spaces or control characters.", code="api_key")
    return key


def provider_name(provider: str) -> str:
    return PROVIDER_NAMES.get(provider, provider)


def team_keys(team: Team):
    return ProviderKey.objects.filter(team=team).select_related("created_by")


def get_key_for_manager(membership: Membership, public_id) -> ProviderKey:
    """The team's key, or 404 (another team's key looks the same as a missing one)."""
    return get_object_or_404(ProviderKey, team_id=membership.team_id, public_id=public_id)


def create_key(*, team: Team, provider: str, label: str, api_key: str, base_url: str = "",
               models_override: str = "", created_by=None) -> ProviderKey:
    """Validate and store a new key (encrypted). Raises ValidationError with a message per field."""
    errors: dict[str, str] = {}
    label = (label or "").strip()
    base_url = (base_url or "").strip()
    for field, check in (("provider", lambda: validate_provider(provider)),
                         ("base_url", lambda: validate_base_url(base_url)),
                         ("api_key", lambda: validate_api_key(api_key))):
        try:
            check()
        except ValidationError as exc:
            errors[field] = exc.messages[0]
    if not label:
        errors["label"] = "A key needs a label."
    elif len(label) > 100:
        errors["label"] = "The label is longer than 100 characters."
    if not errors.get("provider") and label and ProviderKey.objects.filter(
            team=team, provider=provider, label=label).exists():
        errors["label"] = f"This team already has a {provider_name(provider)} key labelled {label!r}."
    if errors:
        raise ValidationError(errors)
    key = ProviderKey(team=team, provider=provider, label=label, base_url=base_url,
                      models_override="\n".join(line.strip() for line in models_override.splitlines() if line.strip()),
                      created_by=created_by)
    key.set_api_key(api_key)
    try:
        with transaction.atomic():
            key.save()
    except IntegrityError:
        raise ValidationError({"label": f"This team already has a {provider_name(provider)} key labelled {label!r}."}) from None
    return key


def set_active(key: ProviderKey, active: bool) -> None:
    ProviderKey.objects.filter(pk=key.pk).update(is_active=active)
    key.is_active = active


def delete_key(key: ProviderKey) -> None:
    """Delete a key no unfinished generation needs (they poll and download with it)."""
    with transaction.atomic():
        key = ProviderKey.objects.select_for_update().get(pk=key.pk)
        in_flight = key.generations.exclude(status__in=TERMINAL).count()
        if in_flight:
            raise ValidationError(
                f"{in_flight} unfinished generation{'s' if in_flight != 1 else ''} still use{'s' if in_flight == 1 else ''} "
                "this key. Disable it instead (running jobs still finish), and delete it later.")
        key.delete()


def rotate_all() -> int:
    """Re-encrypt every key under the first FIELD_ENCRYPTION_KEYS key; the number re-encrypted.
    Raises DecryptionError (naming nothing secret) if a key cannot be decrypted; nothing is
    half-done because it runs in one transaction."""
    count = 0
    with transaction.atomic():
        for key in ProviderKey.objects.select_for_update().only("pk", "public_id", "label", "api_key_encrypted"):
            try:
                token = rotate(key.api_key_encrypted)
            except DecryptionError as exc:
                raise DecryptionError(f"Key {key.public_id} ({key.label}): {exc}. Nothing was re-encrypted.") from None
            ProviderKey.objects.filter(pk=key.pk).update(api_key_encrypted=token)
            count += 1
    return count
