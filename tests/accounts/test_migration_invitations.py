"""The upgrade (accounts 0008): members who never chose a password become pending
invitations, keeping their memberships' roles, credits and generations."""

import io
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.hashers import make_password
from django.contrib.auth.tokens import default_token_generator
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import Invitation, Membership, User
from tests.conftest import PASSWORD

BEFORE = [("accounts", "0007_invitation")]
AFTER = [("accounts", "0008_pending_invitations_for_members_without_password")]


@pytest.fixture
def latest_schema_afterwards():
    """The test steps the schema back to accounts 0007, which also unapplies any migration of another
    app that depends on accounts 0008, and ``migrate(AFTER)`` brings back accounts alone: the tests
    after this one find the whole schema again whatever comes to depend on it."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("latest_schema_afterwards")
def test_members_without_a_password_become_pending_invitations_and_keep_everything(mailbox):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    Team, OldUser = old.get_model("accounts", "Team"), old.get_model("accounts", "User")
    OldMembership, Wallet = old.get_model("accounts", "Membership"), old.get_model("accounts", "Wallet")
    team = Team.objects.create(slug="acme", name="Acme Studio")
    other = Team.objects.create(slug="rivals", name="Rival Films")
    boss = OldUser.objects.create(email="boss@acme.test", password=make_password(PASSWORD))
    never = OldUser.objects.create(email="never@acme.test", password=make_password(None))
    lone = OldUser.objects.create(email="lone@acme.test", password=make_password(None))  # only a removed membership
    OldMembership.objects.create(team=team, user=boss, role="owner")
    kept = OldMembership.objects.create(team=team, user=never, role="admin")
    OldMembership.objects.create(team=other, user=never, role="member")
    Wallet.objects.create(membership=kept, available=12_345)
    OldMembership.objects.create(team=team, user=lone, role="member", removed_at="2026-01-01T00:00Z")
    # A set-password link handed out before the upgrade (the old flow's Django reset token).
    stale = default_token_generator.make_token(User.objects.get(pk=never.pk))
    stale_path = f"/accounts/password/reset/{urlsafe_base64_encode(force_bytes(never.pk))}/{stale}/"

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)

    invites = {(i.team.slug, i.email): i for i in Invitation.objects.select_related("team")}
    assert set(invites) == {("acme", "never@acme.test"), ("rivals", "never@acme.test")}
    assert invites[("acme", "never@acme.test")].role == "admin" and invites[("rivals", "never@acme.test")].role == "member"
    assert all(i.state == "pending" and i.sent is None and i.invited_by is None for i in invites.values())
    membership = Membership.objects.get(team__slug="acme", user__email="never@acme.test")
    assert membership.removed_at is None and membership.role == "admin" and membership.wallet.available == 12_345
    assert User.objects.get(email="boss@acme.test").check_password(PASSWORD)
    # What follows is today's code at work, which reads tables newer than 0008 (a sign-in looks
    # up provider identities): the rest of the schema, as a real upgrade applies it.
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    # The old link no longer works: the unusable password it was derived from changed.
    assert "This link no longer works" in Client().get(stale_path, follow=True).content.decode()

    # A re-send (here from the command line) e-mails a working link; accepting keeps the row.
    call_command("teams", "invite", "acme", "never@acme.test", "--role", "admin", stdout=io.StringIO())
    link = mailbox.link(mailbox.wait(1)[0])
    response = Client().post(urlsplit(link).path, {"new_password1": PASSWORD + "!", "new_password2": PASSWORD + "!"})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == "admin" and membership.wallet.available == 12_345
    assert Membership.objects.filter(user__email="never@acme.test").count() == 2
    assert Invitation.objects.get(team__slug="rivals").state == "pending"  # that team's stays for its own link
