"""One default key per (team, provider), now that 0006 numbered them; keys list in that order."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('generations', '0006_provider_key_order'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='providerkey',
            options={'ordering': ['provider', 'position', 'id']},
        ),
        migrations.AddConstraint(
            model_name='providerkey',
            constraint=models.UniqueConstraint(condition=models.Q(('position', 0)), fields=('team', 'provider'), name='one_default_key'),
        ),
    ]
