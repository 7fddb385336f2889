"""Provider keys are encrypted at rest with MultiFernet over FIELD_ENCRYPTION_KEYS."""

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from generations.keys.crypto import DecryptionError, decrypt, encrypt
from generations.keys.models import ProviderKey
from generations.keys.services import rotate_all

CLEAR = "sk-live-0123456789abcdefWXYZ"


@pytest.fixture
def old_key():
    return Fernet.generate_key().decode()


@pytest.fixture
def new_key():
    return Fernet.generate_key().decode()


def test_a_key_survives_the_round_trip_and_is_not_stored_in_clear(settings, old_key):
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    token = encrypt(CLEAR)
    assert CLEAR not in token
    assert decrypt(token) == CLEAR


def test_the_model_keeps_only_ciphertext_and_the_last_four(settings, team, old_key):
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    key = ProviderKey(team=team, provider="shark", label="Main")
    key.set_api_key(f"  {CLEAR}\n")
    key.save()
    stored = ProviderKey.objects.values("api_key_encrypted", "api_key_last4").get(pk=key.pk)
    assert CLEAR not in stored["api_key_encrypted"]
    assert stored["api_key_last4"] == "WXYZ"
    assert ProviderKey.objects.get(pk=key.pk).get_api_key() == CLEAR
    assert key.masked == "••••WXYZ"


def test_a_wrong_key_raises_instead_of_handing_out_ciphertext(settings, old_key, new_key):
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    token = encrypt(CLEAR)
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    with pytest.raises(DecryptionError, match="cannot be decrypted"):
        decrypt(token)


def test_rotation_lets_the_old_key_be_dropped(settings, team, old_key, new_key):
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    key = ProviderKey(team=team, provider="shark", label="Main")
    key.set_api_key(CLEAR)
    key.save()

    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]  # the new key first: it encrypts
    assert rotate_all() == 1

    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key is gone
    assert ProviderKey.objects.get(pk=key.pk).get_api_key() == CLEAR


def test_rotation_stops_without_changing_anything_when_a_key_cannot_be_decrypted(settings, team, old_key, new_key):
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    readable = ProviderKey(team=team, provider="sealink", label="A")  # rotated first (ordering)
    readable.set_api_key(CLEAR)
    readable.save()
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    lost = ProviderKey(team=team, provider="shark", label="B")
    lost.set_api_key("sk-lost-1111")
    lost.save()
    before = ProviderKey.objects.get(pk=readable.pk).api_key_encrypted

    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    with pytest.raises(DecryptionError, match=str(lost.public_id)):
        rotate_all()
    assert ProviderKey.objects.get(pk=readable.pk).api_key_encrypted == before


def test_a_malformed_encryption_key_is_a_configuration_error(settings):
    settings.FIELD_ENCRYPTION_KEYS = ["not-a-fernet-key"]
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEYS entry 1"):
        encrypt(CLEAR)
