import uuid

from django.db import migrations


def fill_public_ids(apps, schema_editor):
    # AddField gave every existing row the same default value: give each its own.
    Membership = apps.get_model("accounts", "Membership")
    for pk in Membership.objects.values_list("pk", flat=True):
        Membership.objects.filter(pk=pk).update(public_id=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_membership_public_id_removed_at"),
    ]

    operations = [
        migrations.RunPython(fill_public_ids, migrations.RunPython.noop),
    ]
