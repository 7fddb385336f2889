"""The Django admin for superusers: users by e-mail, teams, memberships, masked keys, invitations."""

import socket
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.utils import timezone

from accounts import invitations
from accounts.models import Invitation, InvitationState, Membership, Role, User
from generations.keys.models import ProviderKey

CLEAR = "sk-admin-ClearValue-0123456789-K3Y9"


@pytest.fixture
def admin_client(client, db):
    superuser = User.objects.create_superuser("root@kiln.test", "pw-not-used-here-123")
    client.force_login(superuser)
    return client


@pytest.fixture
def key(team):
    key = ProviderKey(team=team, provider="shark", label="Main")
    key.set_api_key(CLEAR)
    key.save()
    return key


def test_the_key_list_and_form_show_only_the_last_four(admin_client, key):
    for url in ("/admin/generations/providerkey/", f"/admin/generations/providerkey/{key.pk}/change/"):
        body = admin_client.get(url).content.decode()
        assert "••••K3Y9" in body
        assert CLEAR not in body
        assert key.api_key_encrypted not in body
        assert "api_key_encrypted" not in body


def test_a_new_key_entered_in_the_admin_is_encrypted(admin_client, team):
    response = admin_client.post("/admin/generations/providerkey/add/", {
        "team": team.pk, "provider": "sealink", "label": "Ops", "new_api_key": CLEAR,
        "base_url": "", "models_override": "", "is_active": "on", "last_error": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    key = ProviderKey.objects.get(label="Ops")
    assert key.get_api_key() == CLEAR
    assert key.api_key_last4 == "K3Y9"
    assert key.created_by.email == "root@kiln.test"


def test_saving_a_key_without_a_new_value_keeps_the_old_one(admin_client, key, team):
    response = admin_client.post(f"/admin/generations/providerkey/{key.pk}/change/", {
        "team": team.pk, "provider": "shark", "label": "Renamed", "new_api_key": "",
        "base_url": "https://api.example.com", "models_override": "", "is_active": "on", "last_error": ""})
    assert response.status_code == 302
    key.refresh_from_db()
    assert (key.label, key.get_api_key()) == ("Renamed", CLEAR)


def test_the_admin_refuses_a_malformed_base_url(admin_client, key, team):
    response = admin_client.post(f"/admin/generations/providerkey/{key.pk}/change/", {
        "team": team.pk, "provider": "shark", "label": "Main", "new_api_key": "",
        "base_url": "javascript:alert(1)", "models_override": "", "is_active": "on", "last_error": ""})
    assert response.status_code == 200
    assert "is not an http(s) URL" in response.content.decode()


def test_the_key_search_and_filters_work(admin_client, key):
    assert "Main" in admin_client.get("/admin/generations/providerkey/?q=acme").content.decode()
    assert "Main" not in admin_client.get("/admin/generations/providerkey/?is_active__exact=0").content.decode()


def test_users_are_listed_and_created_by_email(admin_client, owner):
    assert owner.email in admin_client.get("/admin/accounts/user/?q=owner").content.decode()
    response = admin_client.post("/admin/accounts/user/add/", {
        "email": "Someone@Kiln.TEST", "usable_password": "false", "password1": "", "password2": ""})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert User.objects.filter(email="someone@kiln.test").exists()


def test_teams_and_memberships_have_their_admin_pages(admin_client, owner, teammate, team):
    assert "Acme Studio" in admin_client.get("/admin/accounts/team/?q=acme").content.decode()
    body = admin_client.get("/admin/accounts/membership/?role__exact=owner").content.decode()
    assert owner.email in body and teammate.email not in body


def test_a_membership_added_in_the_admin_gets_a_wallet(admin_client, team, outsider):
    response = admin_client.post("/admin/accounts/membership/add/", {
        "team": team.pk, "user": outsider.pk, "role": "member", "removed_at_0": "", "removed_at_1": ""})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Membership.objects.get(team=team, user=outsider).wallet.available == 0


def test_the_admin_keeps_the_last_owner(admin_client, owner, team):
    membership = Membership.objects.get(team=team, user=owner)
    response = admin_client.post(f"/admin/accounts/membership/{membership.pk}/change/", {
        "role": "member", "removed_at_0": "", "removed_at_1": ""})
    assert "A team must keep at least one owner" in response.content.decode()
    membership.refresh_from_db()
    assert membership.role == Role.OWNER
    assert admin_client.post(f"/admin/accounts/membership/{membership.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_the_admin_says_it_is_kiln(admin_client):
    body = admin_client.get("/admin/").content.decode()
    assert "<title>Teams, provider keys and credits | Kiln admin</title>" in body
    assert "Kiln administration" in body and "Django administration" not in body


# -- invitations -----------------------------------------------------------------------------

INVITATIONS = "/admin/accounts/invitation/"


def _token(sent: invitations.Sent) -> str:
    return urlsplit(sent.link).path.rstrip("/").rsplit("/", 1)[1]


@pytest.fixture
def invited(mailbox, team, owner, other_team, outsider):
    """Acme: pending (by its owner), accepted, revoked, expired; Rival Films: pending. All e-mailed."""
    ours = Membership.objects.get(team=team, user=owner)
    sent = {
        "pending": invitations.invite(team, "new@corp.example", Role.ADMIN, actor=ours),
        "accepted": invitations.invite(team, "joined@corp.example", actor=ours),
        "revoked": invitations.invite(team, "withdrawn@corp.example", actor=ours),
        "expired": invitations.invite(team, "late@corp.example", actor=ours),
        "theirs": invitations.invite(other_team, "editor@rivals.example",
                                     actor=Membership.objects.get(team=other_team, user=outsider)),
    }
    mailbox.wait(5)
    assert not any(s.error for s in sent.values())
    invitations.accept_with_password(_token(sent["accepted"]), "a long and fresh passphrase 2026")
    invitations.revoke(sent["revoked"].invitation)
    Invitation.objects.filter(pk=sent["expired"].invitation.pk).update(expires=timezone.now() - timedelta(minutes=1))
    mailbox.clear()
    return sent


def _rows(body: str) -> set[str]:
    return {e for e in ("new@", "joined@", "withdrawn@", "late@", "editor@") if e in body}


def test_every_team_s_invitations_are_listed_without_their_token(admin_client, invited, owner):
    body = admin_client.get(INVITATIONS).content.decode()
    assert _rows(body) == {"new@", "joined@", "withdrawn@", "late@", "editor@"}
    assert "Acme Studio" in body and "Rival Films" in body
    assert owner.email in body  # invited by
    assert ">Pending<" in body and ">Accepted<" in body and ">Revoked<" in body and ">Expired<" in body
    pending = invited["pending"].invitation
    page = admin_client.get(f"{INVITATIONS}{pending.pk}/change/").content.decode()
    assert "new@corp.example" in page and "Admin" in page
    for sent in invited.values():
        invitation = Invitation.objects.get(pk=sent.invitation.pk)
        for text in (body, page):
            assert _token(sent) not in text and invitation.token_hash not in text
    assert "token_hash" not in page and 'name="_save"' not in page  # read-only: nothing to save


def test_invitations_are_not_added_or_edited_in_the_admin(admin_client, invited, team):
    assert admin_client.get(f"{INVITATIONS}add/").status_code == 403
    pending = invited["pending"].invitation
    admin_client.post(f"{INVITATIONS}{pending.pk}/change/", {
        "email": "someone.else@corp.example", "team": team.pk, "role": "owner", "state": "accepted"})
    pending.refresh_from_db()
    assert (pending.email, pending.role, pending.state) == ("new@corp.example", Role.ADMIN, InvitationState.PENDING)


def test_invitations_filter_by_state_and_team_and_search_by_email_and_team(admin_client, invited, other_team):
    expected = {"pending": {"new@", "editor@"}, "accepted": {"joined@"}, "revoked": {"withdrawn@"},
                "expired": {"late@"}}
    for state, rows in expected.items():
        assert _rows(admin_client.get(INVITATIONS, {"state": state}).content.decode()) == rows, state
    assert _rows(admin_client.get(INVITATIONS, {"team__id__exact": other_team.pk}).content.decode()) == {"editor@"}
    assert _rows(admin_client.get(INVITATIONS, {"q": "rivals"}).content.decode()) == {"editor@"}
    assert _rows(admin_client.get(INVITATIONS, {"q": "late@corp"}).content.decode()) == {"late@"}


def test_the_revoke_action_kills_the_links_at_once(admin_client, invited):
    links = {name: urlsplit(sent.link).path for name, sent in invited.items()}
    assert Client().get(links["pending"]).status_code == 200
    assert Client().get(links["theirs"]).status_code == 200

    selected = [invited[name].invitation.pk for name in ("pending", "theirs", "accepted", "revoked")]
    response = admin_client.post(INVITATIONS, {"action": "revoke_selected", ACTION_CHECKBOX_NAME: selected},
                                 follow=True)
    page = response.content.decode()
    assert "Revoked 2 invitations; their links no longer work." in page
    assert "joined@corp.example has already accepted: remove them from the team instead." in page

    for name in ("pending", "theirs"):
        answer = Client().get(links[name])
        assert answer.status_code == 410 and "This invitation was withdrawn" in answer.content.decode()
    assert Invitation.objects.get(pk=invited["accepted"].invitation.pk).state == InvitationState.ACCEPTED


def test_the_resend_action_e_mails_a_new_link_and_kills_the_old_one(admin_client, invited, mailbox):
    # An upgraded member's invitation was never sent: the operator sends it from here.
    expired = invited["expired"].invitation
    Invitation.objects.filter(pk=invited["theirs"].invitation.pk).update(sent=None)
    never_sent = admin_client.get(INVITATIONS, {"sent__isempty": "1"}).content.decode()
    assert _rows(never_sent) == {"editor@"}

    selected = [invited["theirs"].invitation.pk, expired.pk, invited["revoked"].invitation.pk]
    response = admin_client.post(INVITATIONS, {"action": "resend_selected", ACTION_CHECKBOX_NAME: selected},
                                 follow=True)
    page = response.content.decode()
    assert "Sent 2 new invitations; the earlier links no longer work." in page
    assert "withdrawn@corp.example was revoked: invite them again instead." in page

    received = {message["To"]: message for message in mailbox.wait(2)}
    assert set(received) == {"editor@rivals.example", "late@corp.example"}
    assert "Rival Films" in mailbox.text(received["editor@rivals.example"])
    for name, address in (("theirs", "editor@rivals.example"), ("expired", "late@corp.example")):
        new_link = mailbox.link(received[address], "/accounts/invitation/")
        assert Client().get(urlsplit(invited[name].link).path).status_code == 404  # the old link is dead
        assert Client().get(urlsplit(new_link).path).status_code == 200
        invitation = Invitation.objects.get(pk=invited[name].invitation.pk)
        assert invitation.status == InvitationState.PENDING and invitation.sent is not None


def test_a_resend_the_mail_server_refuses_is_reported(admin_client, invited, settings):
    with socket.socket() as probe:  # a loopback port nobody listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                                    "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 5}}}
    pending = invited["pending"].invitation
    response = admin_client.post(INVITATIONS, {"action": "resend_selected", ACTION_CHECKBOX_NAME: [pending.pk]},
                                 follow=True)
    page = response.content.decode()
    assert "the e-mail could not be sent (1): new@corp.example (Acme Studio):" in page
    assert "Re-send once the mail server works." in page and "Sent 0" not in page
