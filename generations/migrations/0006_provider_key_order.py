"""Provider keys get an explicit order: one default per (team, provider), the others fallbacks.

Until now the newest active key of a provider served every job. Each provider's keys are
numbered in that old order, so nothing changes for a job on the day this runs: the newest
active key becomes the default (position 0), the other active keys follow newest first, and
the disabled ones come last (newest first). A provider with only disabled keys gets its
newest as the default.

Also: when a key's last error happened, the cached model list of a gateway key, and the
note a job carries when it moved to another key."""

from django.db import migrations, models


def number_keys(apps, schema_editor):
    ProviderKey = apps.get_model("generations", "ProviderKey")
    groups: dict[tuple[int, str], list] = {}
    for key in ProviderKey.objects.order_by("-is_active", "-created", "-id").only("pk", "team_id", "provider"):
        groups.setdefault((key.team_id, key.provider), []).append(key.pk)
    for pks in groups.values():
        for position, pk in enumerate(pks):
            ProviderKey.objects.filter(pk=pk).update(position=position)


class Migration(migrations.Migration):

    dependencies = [
        ('generations', '0005_short_key_masks'),
    ]

    operations = [
        migrations.AddField(
            model_name='providerkey',
            name='position',
            field=models.PositiveIntegerField(default=0),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='providerkey',
            name='last_error_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='providerkey',
            name='listed_models',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name='providerkey',
            name='models_listed_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='generation',
            name='key_note',
            field=models.TextField(blank=True),
        ),
        # Last: the table is not altered after its rows are updated in this transaction (the
        # one-default constraint comes in 0007, on its own).
        migrations.RunPython(number_keys, migrations.RunPython.noop),
    ]
