"""Members who never chose a password become pending invitations (issue 14).

Before invitations, a team's admin added an address and was handed a link to choose
its password; whoever opened it first owned the account. For everyone who never
chose one:

- Their unusable password is replaced by a new unusable one. Django's set-password
  tokens are derived from the stored password, so every link handed out before this
  migration stops working: a team admin who kept one can no longer use it.
- Each of their current memberships gets a pending invitation with the same role,
  whose token nobody knows (it is never sent): a new link must be sent, from the team
  page (Re-send) or with ``manage.py teams invite SLUG EMAIL``.
- The membership itself is KEPT, not removed. What "pending" means for such a row:
  the person cannot sign in (no password) until they accept the new invitation,
  which is then the only way to choose one. Removing the row instead would hide
  their wallet and generations from the team and, for a team whose only owner never
  chose a password, leave the team with no owner at all (breaking the rule every
  membership change keeps). Keeping it loses nothing: role, wallet, ledger and
  generations stay exactly as they were.
"""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import is_password_usable, make_password
from django.db import migrations
from django.utils import timezone


def forward(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    Membership = apps.get_model("accounts", "Membership")
    Invitation = apps.get_model("accounts", "Invitation")
    now = timezone.now()
    days = getattr(settings, "KILN_INVITATION_DAYS", 7)
    for user in User.objects.all().only("pk", "password", "email"):
        if is_password_usable(user.password):
            continue
        User.objects.filter(pk=user.pk).update(password=make_password(None))
        memberships = Membership.objects.filter(user_id=user.pk, removed_at__isnull=True)
        for membership in memberships:
            if Invitation.objects.filter(team_id=membership.team_id, email=user.email, state="pending").exists():
                continue
            unknown = hashlib.sha256(secrets.token_urlsafe(32).encode()).hexdigest()
            Invitation.objects.create(team_id=membership.team_id, email=user.email, role=membership.role,
                                      invited_by=None, created=now, sent=None,
                                      expires=now + timedelta(days=days), token_hash=unknown, state="pending")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_invitation"),
    ]

    operations = [
        # Backwards: the invitations go with the table; the old links stay dead.
        migrations.RunPython(forward, migrations.RunPython.noop),
    ]
