"""Membership rules: wallets for every member, one-time password links, always an owner."""

import pytest
from django.test import Client

from accounts import services
from accounts.credits import grant, wallet_for
from accounts.models import LedgerEntry, Membership, Role, User
from tests.conftest import PASSWORD, make_member


def test_adding_a_new_person_creates_an_account_without_a_password_and_a_wallet(team, owner):
    added = services.add_member(team, "  New.Person@Acme.TEST ", Role.MEMBER)
    user = added.membership.user
    assert added.created_user
    assert user.email == "new.person@acme.test"
    assert not user.has_usable_password()
    assert added.membership.wallet.available == 0
    assert added.set_password_path.startswith("/accounts/set-password/")


def test_adding_someone_who_already_has_a_password_gives_no_link(team, outsider):
    added = services.add_member(team, outsider.email, Role.ADMIN)
    assert not added.created_user
    assert added.set_password_path == ""
    assert Membership.objects.active().filter(user=outsider).count() == 2


def test_adding_a_current_member_again_is_refused(team, teammate):
    with pytest.raises(services.MembershipError, match="already a member"):
        services.add_member(team, teammate.email)


def test_an_invalid_email_is_refused_before_anything_is_written(team):
    with pytest.raises(services.MembershipError, match="not a valid e-mail"):
        services.add_member(team, "not-an-address")
    assert not User.objects.filter(email="not-an-address").exists()


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
        services.add_member(team, "boss@acme.test", Role.OWNER, actor=admin)
    services.change_role(Membership.objects.get(user=teammate), Role.ADMIN, actor=admin)
    assert Membership.objects.get(user=teammate).role == Role.ADMIN


def test_removing_a_member_keeps_their_ledger_and_adding_them_back_restores_the_wallet(team, owner, teammate):
    membership = Membership.objects.get(user=teammate)
    entries = LedgerEntry.objects.filter(wallet__membership=membership).count()
    services.remove_member(membership, actor=Membership.objects.get(user=owner))
    assert not Membership.objects.active().filter(pk=membership.pk).exists()
    assert LedgerEntry.objects.filter(wallet__membership=membership).count() == entries

    again = services.add_member(team, teammate.email, Role.MEMBER)
    assert again.membership.pk == membership.pk
    assert again.membership.wallet.available == 1_000_000


def test_a_removed_member_can_no_longer_see_the_team(team, teammate, client):
    services.remove_member(Membership.objects.get(user=teammate))
    client.force_login(teammate)
    assert client.get("/accounts/team/").status_code == 404


def test_create_team_makes_the_owner_and_their_wallet(db):
    added = services.create_team("studio-9", "Studio Nine", "boss@nine.test")
    assert added.membership.role == Role.OWNER
    assert added.membership.team.slug == "studio-9"
    assert wallet_for(added.membership).available == 0
    grant(wallet_for(added.membership), 10, reason="test")
    with pytest.raises(services.MembershipError, match="already exists"):
        services.create_team("studio-9", "Again", "boss@nine.test")
    with pytest.raises(services.MembershipError, match="not a valid slug"):
        services.create_team("no spaces", "Bad", "boss@nine.test")


def test_the_set_password_link_works_once(team, db):
    added = services.add_member(team, "fresh@acme.test")
    client = Client()
    response = client.get(added.set_password_path)
    assert response.status_code == 302  # Django moves the token into the session
    form_url = response["Location"]
    response = client.post(form_url, {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert response.status_code == 302
    signed_in = Client().post("/accounts/login/", {"username": "fresh@acme.test", "password": PASSWORD})
    assert signed_in.status_code == 302

    again = Client().get(added.set_password_path, follow=True)
    assert b"This link no longer works" in again.content


def test_another_team_s_admin_is_never_handed_the_link_of_someone_invited_elsewhere(team, other_team, owner,
                                                                                   outsider):
    """Team B adding a person invited to team A (no password yet) must not let B choose it."""
    ours = Membership.objects.get(user=owner, team=team)
    theirs = Membership.objects.get(user=outsider, team=other_team)
    invited = services.add_member(team, "newhire@acme.test", actor=ours)
    assert invited.set_password_path  # their own team's admin passes it on

    grabbed = services.add_member(other_team, "newhire@acme.test", actor=theirs)
    assert grabbed.set_password_path == ""
    assert grabbed.membership.team == other_team  # still added

    # Once removed from team A, team A itself may not re-issue it either: team B has them now.
    services.remove_member(invited.membership, actor=ours)
    again = services.add_member(team, "newhire@acme.test", actor=ours)
    assert again.set_password_path == ""


def test_a_team_s_admin_may_re_issue_a_lost_link_for_someone_only_theirs(team, owner):
    ours = Membership.objects.get(user=owner, team=team)
    first = services.add_member(team, "lost@acme.test", actor=ours)
    services.remove_member(first.membership, actor=ours)
    again = services.add_member(team, "lost@acme.test", actor=ours)
    assert again.set_password_path.startswith("/accounts/set-password/")


def test_no_team_admin_gets_a_link_for_an_operator_account(team, owner, db):
    from accounts.models import User

    operator = User.objects.create_superuser("ops@kiln.test", None)  # no usable password
    ours = Membership.objects.get(user=owner, team=team)
    assert services.add_member(team, operator.email, actor=ours).set_password_path == ""
    # The operator's own CLI still may.
    other = services.create_team("ops-team", "Ops", "ops@kiln.test")
    assert other.set_password_path.startswith("/accounts/set-password/")
