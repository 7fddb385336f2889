"""The team page, the team switcher, and member management."""

import pytest

from accounts.models import Membership, Role, Team
from accounts.teams import SESSION_KEY
from tests.conftest import make_member


@pytest.fixture
def second_team(owner):
    team = Team.objects.create(slug="side", name="Side Project")
    make_member(team, owner.email, Role.MEMBER)
    return team


def _membership(user, team=None):
    qs = Membership.objects.filter(user=user)
    return qs.get(team=team) if team else qs.get()


# -- the members page ---------------------------------------------------------

def test_a_member_sees_their_team_with_roles_and_no_management_forms(teammate_client, owner, outsider):
    response = teammate_client.get("/accounts/team/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Acme Studio" in html
    assert owner.email in html and "Owner" in html
    assert outsider.email not in html
    assert "Invite someone" not in html
    assert "/team/keys/" not in html


def test_an_owner_sees_the_management_forms(owner_client, teammate):
    html = owner_client.get("/accounts/team/").content.decode()
    assert "Invite someone" in html
    assert f"/accounts/team/members/{_membership(teammate).public_id}/remove/" in html


def test_an_outsider_sees_only_their_own_team(outsider_client, owner, teammate):
    html = outsider_client.get("/accounts/team/").content.decode()
    assert "Rival Films" in html
    assert "Acme Studio" not in html
    assert owner.email not in html and teammate.email not in html


def test_a_visitor_is_sent_to_sign_in(client, db):
    response = client.get("/accounts/team/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# -- switching team -------------------------------------------------------------

def test_the_header_offers_every_team_of_the_user(owner_client, second_team, other_team):
    html = owner_client.get("/accounts/team/").content.decode()
    assert 'action="/accounts/switch-team/"' in html
    assert f'value="{second_team.public_id}"' in html
    assert str(other_team.public_id) not in html


def test_switching_team_changes_the_current_team(owner_client, second_team):
    response = owner_client.post("/accounts/switch-team/", {"team": second_team.public_id, "next": "/accounts/team/"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/team/"
    assert owner_client.session[SESSION_KEY] == str(second_team.public_id)
    html = owner_client.get("/accounts/team/").content.decode()
    assert "<h1>Side Project</h1>" in html
    assert "You are member of this team." in html


def test_switching_from_an_object_page_lands_on_the_home_page(owner_client, second_team):
    response = owner_client.post("/accounts/switch-team/", {
        "team": second_team.public_id, "next": "/accounts/team/members/00000000-0000-0000-0000-000000000000/role/"})
    assert response["Location"] == "/"


def test_switching_never_redirects_off_site(owner_client, second_team):
    response = owner_client.post("/accounts/switch-team/", {"team": second_team.public_id, "next": "https://evil.test/"})
    assert response["Location"] == "/"


def test_switching_to_a_team_you_are_not_in_is_a_404(owner_client, other_team):
    response = owner_client.post("/accounts/switch-team/", {"team": other_team.public_id})
    assert response.status_code == 404
    assert SESSION_KEY not in owner_client.session


def test_switching_to_a_team_you_were_removed_from_is_a_404(owner_client, owner, second_team):
    Membership.objects.filter(user=owner, team=second_team).update(removed_at="2026-01-01T00:00Z")
    assert owner_client.post("/accounts/switch-team/", {"team": second_team.public_id}).status_code == 404


def test_switching_without_a_team_id_is_a_400(owner_client):
    assert owner_client.post("/accounts/switch-team/", {"team": "nope"}).status_code == 400


def test_switching_needs_a_post_with_a_csrf_token(csrf_client, second_team):
    assert csrf_client.get("/accounts/switch-team/").status_code == 405
    assert csrf_client.post("/accounts/switch-team/", {"team": second_team.public_id}).status_code == 403


# -- inviting: see test_invitations.py ------------------------------------------------

# -- roles and removal -----------------------------------------------------------

def test_an_owner_changes_a_role(owner_client, teammate):
    membership = _membership(teammate)
    response = owner_client.post(f"/accounts/team/members/{membership.public_id}/role/", {"role": "admin"})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN
    assert f"{teammate.email} is now an admin." in owner_client.get(response["Location"]).content.decode()


def test_demoting_the_last_owner_is_refused_with_a_clear_message(owner_client, owner):
    membership = _membership(owner)
    response = owner_client.post(f"/accounts/team/members/{membership.public_id}/role/", {"role": "member"}, follow=True)
    assert "A team must keep at least one owner" in response.content.decode()
    membership.refresh_from_db()
    assert membership.role == Role.OWNER


def test_an_unknown_role_is_a_400(owner_client, teammate):
    response = owner_client.post(f"/accounts/team/members/{_membership(teammate).public_id}/role/", {"role": "king"})
    assert response.status_code == 400


def test_a_member_cannot_change_roles(teammate_client, teammate):
    membership = _membership(teammate)
    response = teammate_client.post(f"/accounts/team/members/{membership.public_id}/role/", {"role": "owner"})
    assert response.status_code == 403
    membership.refresh_from_db()
    assert membership.role == Role.MEMBER


def test_an_outsider_cannot_reach_another_teams_members(outsider_client, teammate):
    membership = _membership(teammate)
    assert outsider_client.post(f"/accounts/team/members/{membership.public_id}/role/", {"role": "admin"}).status_code == 404
    assert outsider_client.post(f"/accounts/team/members/{membership.public_id}/remove/").status_code == 404
    membership.refresh_from_db()
    assert membership.role == Role.MEMBER and membership.removed_at is None


def test_changing_a_role_needs_a_csrf_token(csrf_client, teammate):
    membership = _membership(teammate)
    assert csrf_client.post(f"/accounts/team/members/{membership.public_id}/role/", {"role": "admin"}).status_code == 403


def test_an_owner_removes_a_member(owner_client, teammate):
    membership = _membership(teammate)
    response = owner_client.post(f"/accounts/team/members/{membership.public_id}/remove/", follow=True)
    assert f"{teammate.email} is no longer a member" in response.content.decode()
    membership.refresh_from_db()
    assert membership.removed_at is not None


def test_removing_the_last_owner_is_refused(owner_client, owner):
    membership = _membership(owner)
    response = owner_client.post(f"/accounts/team/members/{membership.public_id}/remove/", follow=True)
    assert "A team must keep at least one owner" in response.content.decode()
    membership.refresh_from_db()
    assert membership.removed_at is None


def test_an_admin_cannot_remove_an_owner(client, team, owner):
    admin = make_member(team, "admin@acme.test", Role.ADMIN)
    client.force_login(admin)
    response = client.post(f"/accounts/team/members/{_membership(owner).public_id}/remove/", follow=True)
    assert "Only an owner can grant, change or remove the owner role." in response.content.decode()
    assert _membership(owner).removed_at is None


def test_removing_needs_a_csrf_token(csrf_client, teammate):
    membership = _membership(teammate)
    assert csrf_client.post(f"/accounts/team/members/{membership.public_id}/remove/").status_code == 403
    membership.refresh_from_db()
    assert membership.removed_at is None
