"""Encryption of provider API keys at rest (MultiFernet over FIELD_ENCRYPTION_KEYS).

The first key encrypts; every key decrypts, so keys can be rotated: put the new
key first, run ``manage.py providerkeys rotate``, then drop the old one.
A key that no configured key decrypts raises ``DecryptionError``: ciphertext is
never handed to a provider.
"""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class DecryptionError(Exception):
    pass


@cache
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty")
    fernets = []
    for index, key in enumerate(keys):
        try:
            fernets.append(Fernet(key.encode()))
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS entry {index + 1} is not a valid Fernet key "
                "(32 url-safe base64-encoded bytes; make one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)"
            ) from None
    return MultiFernet(fernets)


def _fernet() -> MultiFernet:
    return _fernet_for(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            "This provider key cannot be decrypted with FIELD_ENCRYPTION_KEYS "
            "(was it encrypted with a key that has since been removed?)"
        ) from None


def rotate(token: str) -> str:
    """Re-encrypt under the first key."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("This provider key cannot be decrypted with FIELD_ENCRYPTION_KEYS") from None
