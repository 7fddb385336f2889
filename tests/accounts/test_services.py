"""Membership rules: wallets for every member, always an owner."""

import pytest

from accounts import invitations, services
from accounts.credits.models import LedgerEntry
from accounts.credits.services import grant, wallet_for
from accounts.models import Membership, Role, Team, User
from tests.conftest import PASSWORD, make_member


def test_the_last_owner_cannot_be_demoted_or_removed(team, owner):
    only_owner = Membership.objects.get(team=team, user=owner)
    with pytest.raises(services.MembershipError, match="at least one owner"):
        services.change_role(only_owner, Role.ADMIN)
    with pytest.raises(services.MembershipError, match="at least one owner"):
        services.remove_member(only_owner)
    only_owner.refresh_from_db()
    assert only_owner.role == Role.OWNER and only_owner.removed_at is None


def test_an_owner_can_step_down_once_there_is_another_owner(team, owner, teammate):
    services.change_role(Membership.objects.get(user=teammate), Role.OWNER)
    services.change_role(Membership.objects.get(user=owner), Role.MEMBER)
    assert list(Membership.objects.filter(team=team, role=Role.OWNER).values_list("user__email", flat=True)) == [teammate.email]


def test_an_admin_cannot_touch_the_owner_role(team, owner, teammate):
    admin_user = make_member(team, "admin@acme.test", Role.ADMIN)
    admin = Membership.objects.get(user=admin_user)
    with pytest.raises(services.MembershipError, match="Only an owner"):
        services.change_role(Membership.objects.get(user=teammate), Role.OWNER, actor=admin)
    with pytest.raises(services.MembershipError, match="Only an owner"):
        services.remove_member(Membership.objects.get(user=owner), actor=admin)
    with pytest.raises(services.MembershipError, match="Only an owner"):
        invitations.invite(team, "boss@acme.test", Role.OWNER, actor=admin)
    services.change_role(Membership.objects.get(user=teammate), Role.ADMIN, actor=admin)
    assert Membership.objects.get(user=teammate).role == Role.ADMIN


def test_removing_a_member_keeps_their_ledger_and_inviting_them_back_restores_the_wallet(team, owner, teammate,
                                                                                       mailbox):
    membership = Membership.objects.get(user=teammate)
    entries = LedgerEntry.objects.filter(wallet__membership=membership).count()
    services.remove_member(membership, actor=Membership.objects.get(user=owner))
    assert not Membership.objects.active().filter(pk=membership.pk).exists()
    assert LedgerEntry.objects.filter(wallet__membership=membership).count() == entries

    sent = invitations.invite(team, teammate.email, Role.MEMBER)
    again = invitations.accept(sent.link.rsplit("/", 2)[1], teammate)
    assert again.pk == membership.pk
    assert again.wallet.available == 1_000_000


def test_a_removed_member_can_no_longer_see_the_team(team, teammate, client):
    services.remove_member(Membership.objects.get(user=teammate))
    client.force_login(teammate)
    assert client.get("/accounts/team/").status_code == 404


def test_create_team_invites_the_owner_who_joins_with_a_wallet(db, mailbox):
    sent = invitations.create_team("studio-9", "Studio Nine", "boss@nine.test")
    assert (sent.invitation.role, sent.invitation.team.slug) == (Role.OWNER, "studio-9")
    assert not User.objects.filter(email="boss@nine.test").exists()  # nobody is pre-claimed
    assert mailbox.wait(1)[0]["To"] == "boss@nine.test"
    membership = invitations.accept_with_password(sent.link.rsplit("/", 2)[1], PASSWORD)
    assert membership.role == Role.OWNER
    assert wallet_for(membership).available == 0
    grant(wallet_for(membership), 10, reason="test")
    with pytest.raises(services.MembershipError, match="already exists"):
        services.create_team("studio-9", "Again", "boss@nine.test")
    with pytest.raises(services.MembershipError, match="not a valid slug"):
        services.create_team("no spaces", "Bad", "boss@nine.test")
    with pytest.raises(services.MembershipError, match="not a valid e-mail"):
        services.create_team("fresh", "Fresh", "nope")
    assert not Team.objects.filter(slug="fresh").exists()


