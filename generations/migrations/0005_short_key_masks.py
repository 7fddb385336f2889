"""Forget the clear last four characters of short provider keys: of a key under
``MASK_HINT_MIN_LENGTH`` characters they were most of it, and the mask showed them.
A key that cannot be decrypted here loses its hint too (bullets alone are always safe)."""

from django.db import migrations


def forget_short_tails(apps, schema_editor):
    from generations.keys.crypto import DecryptionError, decrypt
    from generations.keys.models import last_four

    ProviderKey = apps.get_model("generations", "ProviderKey")
    for key in ProviderKey.objects.exclude(api_key_last4="").only("pk", "api_key_encrypted", "api_key_last4"):
        try:
            hint = last_four(decrypt(key.api_key_encrypted))
        except DecryptionError:
            hint = ""
        if hint != key.api_key_last4:
            ProviderKey.objects.filter(pk=key.pk).update(api_key_last4=hint)


class Migration(migrations.Migration):

    dependencies = [
        ('generations', '0004_webhook_token_index'),
    ]

    operations = [
        migrations.RunPython(forget_short_tails, migrations.RunPython.noop),
    ]
