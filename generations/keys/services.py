"""Provider keys: validation and the changes made from the team page, the admin and
``manage.py providerkeys``. The clear key goes in once and is only ever decrypted
for the provider (``ProviderKey.get_api_key``).

The order of a provider's keys (``ProviderKey.position``: 0 the default, then the
fallbacks) changes only here: adding (last, unless made the default), making a key the
default, moving a fallback up, deleting. Each change locks the team's row, so two admins
reordering at once queue one behind the other, and leaves the positions dense (0, 1, 2…).

"Test key" (``test_key``) calls the provider from the web request, as "cancel" does: an
admin asked and waits for the answer (15 s at most).
"""

from __future__ import annotations

import dataclasses

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import Membership, Team
from generations.keys.crypto import DecryptionError, rotate
from generations.keys.models import ProviderKey
from generations.models import TERMINAL
from generations.providers import http
from generations.providers.base import Credentials, KeyCheck, ProviderError, Verdict
from generations.providers.registry import PROVIDERS, UnknownProvider, get_provider, provider_name

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


def team_keys(team: Team):
    """The team's keys, each provider's in their order (default first)."""
    return ProviderKey.objects.filter(team=team).select_related("created_by").order_by("provider", "position", "id")


@dataclasses.dataclass
class ProviderGroup:
    """One provider's keys on the keys page, in order, and which of them serves it now."""

    provider: str
    name: str
    keys: list[ProviderKey] = dataclasses.field(default_factory=list)

    @property
    def serving(self) -> ProviderKey | None:
        """The key a new job starts with: the first active one in order."""
        return next((key for key in self.keys if key.is_active), None)


def provider_groups(team: Team) -> list[ProviderGroup]:
    """The team's keys grouped by provider, in the registry's order of providers."""
    groups: dict[str, ProviderGroup] = {}
    for key in team_keys(team):
        groups.setdefault(key.provider, ProviderGroup(key.provider, provider_name(key.provider))).keys.append(key)
    order = {pid: index for index, pid in enumerate(PROVIDERS)}
    return sorted(groups.values(), key=lambda g: (order.get(g.provider, 99), g.provider))


def effective_base_url(key: ProviderKey) -> str:
    """Where the key's requests go (the documented path added to a bare host), or "" when
    the provider module is not there or the key needs a base URL it has not got."""
    try:
        return get_provider(key.provider).base_url(Credentials(api_key="", base_url=key.base_url))
    except (UnknownProvider, ImportError, AttributeError, ProviderError):
        return ""  # ProviderError: a gateway key without a base URL


def _lock_team(team_id: int) -> None:
    """Serialise changes to a team's key order (PostgreSQL; SQLite serialises writers anyway)."""
    list(Team.objects.select_for_update().filter(pk=team_id).values_list("pk", flat=True))


def _ordered(team_id: int, provider: str) -> list[ProviderKey]:
    return list(ProviderKey.objects.filter(team_id=team_id, provider=provider).order_by("position", "id"))


def _renumber(keys: list[ProviderKey]) -> None:
    """Give ``keys`` the positions 0, 1, 2… in this order. Whoever holds 0 and is not
    first moves out of the way first: one default per provider is a database constraint."""
    if not keys:
        return
    ProviderKey.objects.filter(team_id=keys[0].team_id, provider=keys[0].provider, position=0).exclude(
        pk=keys[0].pk).update(position=len(keys) + 1_000)
    for position, key in enumerate(keys):
        if key.position != position:
            ProviderKey.objects.filter(pk=key.pk).update(position=position)
            key.position = position


def get_key_for_manager(membership: Membership, public_id) -> ProviderKey:
    """The team's key, or 404 (another team's key looks the same as a missing one)."""
    return get_object_or_404(ProviderKey, team_id=membership.team_id, public_id=public_id)


def create_key(*, team: Team, provider: str, label: str, api_key: str, base_url: str = "",
               models_override: str = "", created_by=None, make_default: bool = False) -> ProviderKey:
    """Validate and store a new key (encrypted). Raises ValidationError with a message per field.

    The new key is a fallback, tried after the provider's other keys, unless ``make_default``
    (or it is the provider's first key): adding a key never silently changes which key
    serves the provider."""
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
            _lock_team(team.pk)
            others = _ordered(team.pk, provider)
            key.position = len(others) + 1_000 if make_default and others else len(others)
            key.save()
            if make_default and others:
                _renumber([key, *others])
    except IntegrityError:
        raise ValidationError({"label": f"This team already has a {provider_name(provider)} key labelled {label!r}."}) from None
    return key


def make_default(key: ProviderKey) -> None:
    """Make ``key`` its provider's default; the others keep their order after it."""
    with transaction.atomic():
        _lock_team(key.team_id)
        others = [k for k in _ordered(key.team_id, key.provider) if k.pk != key.pk]
        _renumber([key, *others])
    key.position = 0


def move_up(key: ProviderKey) -> None:
    """Swap ``key`` with the key before it (the first fallback moving up becomes the default)."""
    with transaction.atomic():
        _lock_team(key.team_id)
        keys = _ordered(key.team_id, key.provider)
        index = next((i for i, k in enumerate(keys) if k.pk == key.pk), 0)
        if index > 0:
            keys[index - 1], keys[index] = keys[index], keys[index - 1]
            _renumber(keys)
        key.position = max(0, index - 1)


def set_active(key: ProviderKey, active: bool) -> None:
    ProviderKey.objects.filter(pk=key.pk).update(is_active=active)
    key.is_active = active


def delete_key(key: ProviderKey) -> None:
    """Delete a key no unfinished generation needs (they poll and download with it). The
    keys after it move up: deleting the default makes the first fallback the default."""
    with transaction.atomic():
        _lock_team(key.team_id)
        key = ProviderKey.objects.select_for_update().get(pk=key.pk)
        in_flight = key.generations.exclude(status__in=TERMINAL).count()
        if in_flight:
            raise ValidationError(
                f"{in_flight} unfinished generation{'s' if in_flight != 1 else ''} still use{'s' if in_flight == 1 else ''} "
                "this key. Disable it instead (running jobs still finish), and delete it later.")
        key.delete()
        _renumber(_ordered(key.team_id, key.provider))


def test_key(key: ProviderKey) -> KeyCheck:
    """"Test key": one harmless call to the provider with this key (``Provider.check_key``).

    What it proves is written on the key: a key problem (refused, out of quota, the base URL
    unreachable or not the API) becomes its error; a working key loses its old error; a
    gateway's list of video models is cached on the key, and the studio offers those."""
    name = provider_name(key.provider)
    try:
        provider = get_provider(key.provider)
    except (UnknownProvider, ImportError, AttributeError):
        return KeyCheck(Verdict.FAILED, f"Kiln has no adapter for {name} any more.")
    try:
        credentials = Credentials(api_key=key.get_api_key(), base_url=key.base_url)
    except DecryptionError as exc:
        return KeyCheck(Verdict.FAILED, str(exc), problem=str(exc))
    try:
        check = provider.check_key(credentials)
    except ProviderError as exc:  # refused before any request (a gateway key without a base URL)
        return KeyCheck(Verdict.FAILED, exc.message, problem=exc.message)
    now = timezone.now()
    changes: dict = {}
    if check.problem:
        changes.update(last_error=check.problem[:1000], last_error_at=now)
    elif check.verdict == Verdict.WORKS:
        changes.update(last_error="", last_error_at=None)
    if check.models is not None:
        changes.update(listed_models=check.models, models_listed_at=now)
    if changes:
        ProviderKey.objects.filter(pk=key.pk).update(**changes)
        for name_, value in changes.items():
            setattr(key, name_, value)
    return check


def refresh_models(key: ProviderKey) -> KeyCheck:
    """Fetch a gateway key's model list again (the same call as "Test key")."""
    if key.provider != "gateway":
        raise ValidationError(f"{provider_name(key.provider)} has no model list to fetch: its models are the ones "
                              "its docs name.")
    return test_key(key)


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
