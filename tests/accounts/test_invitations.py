"""Invitations (issue 14): the only way into a team is the link e-mailed to the address.

Every e-mail here goes over SMTP to a real server on loopback (``mailbox``) and the tests
follow the link found in the message they received."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import invitations
from accounts.models import Invitation, InvitationState, Membership, Role, User
from accounts.teams import SESSION_KEY
from tests.conftest import PASSWORD, make_member

NEW_PASSWORD = "a long and fresh passphrase 2026"
ATTACKER_PASSWORD = "attacker chose this one 99"


def _path(url: str) -> str:
    return urlsplit(url).path


def _invite(client, email, role="member"):
    return client.post("/accounts/team/members/add/", {"email": email, "role": role}, follow=True)


def _accept_with_password(link: str, password: str = NEW_PASSWORD) -> tuple[Client, object]:
    client = Client()
    response = client.post(_path(link), {"new_password1": password, "new_password2": password})
    return client, response


# -- the four steps ----------------------------------------------------------------

def test_the_four_step_cross_team_takeover_no_longer_works(client, mailbox, team, owner, other_team, outsider):
    """1. Acme's owner adds victim@corp.example; 2. opens the link and chooses the password;
    3. Demo's (here: Rival Films') owner adds the same address as an admin; 4. Acme's owner
    signs in as the victim and reads the other team. Today: no step gets anywhere."""
    victim = "victim@corp.example"
    client.force_login(owner)
    page = _invite(client, victim, "member").content.decode()
    # 1. No link of any kind for the admin: not on the page, and no account was made.
    assert "/accounts/set-password/" not in page and "/accounts/invitation/" not in page
    assert not User.objects.filter(email=victim).exists()
    acme_mail = mailbox.wait(1)[0]
    assert acme_mail["To"] == victim
    # 2. Nothing to open: the only link went to the victim's mailbox. A guessed link fails.
    assert Client().get("/accounts/invitation/guessed-token/").status_code == 404

    # 3. Rival Films' owner invites the same address as an admin: again only an e-mail.
    client.force_login(outsider)
    page = _invite(client, victim, "admin").content.decode()
    assert "/accounts/invitation/" not in page
    rival_mail = mailbox.wait(2)[1]

    # 4. Acme's owner cannot sign in as the victim: there is no account until the victim acts.
    attacker = Client()
    attacker.post("/accounts/login/", {"username": victim, "password": ATTACKER_PASSWORD})
    assert attacker.get("/accounts/team/").status_code == 302  # still asked to sign in

    # The victim joins Rival Films through their own link; Acme's invitation stays theirs to use.
    _, response = _accept_with_password(mailbox.link(rival_mail), NEW_PASSWORD)
    assert response.status_code == 302
    account = User.objects.get(email=victim)
    assert [m.team for m in Membership.objects.active().filter(user=account)] == [other_team]
    assert account.check_password(NEW_PASSWORD) and not account.check_password(ATTACKER_PASSWORD)
    assert Invitation.objects.get(team=team, email=victim).state == InvitationState.PENDING
    assert mailbox.link(acme_mail) != mailbox.link(rival_mail)


# -- no existence leak ---------------------------------------------------------------------

def test_inviting_answers_the_same_whether_or_not_the_address_has_an_account(client, mailbox, owner, outsider):
    """The page, the message shown, the queries run and the e-mail are the same for an
    address with an account (outsider's, with a password, in another team) and without."""
    client.force_login(owner)
    answers = []
    for email in (outsider.email, "nobody-yet@corp.example"):
        with CaptureQueriesContext(connection) as queries:
            response = client.post("/accounts/team/members/add/", {"email": email, "role": "member"})
        page = client.get(response["Location"]).content.decode()
        tables = sorted({q["sql"].split(" FROM ", 1)[1].split()[0] for q in queries.captured_queries
                         if " FROM " in q["sql"]})
        message = page.split('class="messages"', 1)[1].split("</ul>", 1)[0]
        answers.append((response.status_code, response["Location"], len(queries.captured_queries), tables,
                        message.replace(email, "ADDRESS")))
    assert answers[0] == answers[1]
    first, second = mailbox.wait(2)
    assert mailbox.text(first).replace(outsider.email, "ADDRESS").split("http")[0] == \
        mailbox.text(second).replace("nobody-yet@corp.example", "ADDRESS").split("http")[0]
    assert not User.objects.filter(email="nobody-yet@corp.example").exists()
    # The team page lists both the same way: pending, who invited, when.
    page = client.get("/accounts/team/").content.decode()
    for email in (outsider.email, "nobody-yet@corp.example"):
        row = page.split(email, 1)[1].split("</tr>", 1)[0]
        assert "Pending" in row and owner.email in row


def test_no_team_admin_ever_sees_the_token_or_link(client, mailbox, owner, team):
    client.force_login(owner)
    _invite(client, "new@corp.example")
    link = mailbox.link(mailbox.wait(1)[0], "/accounts/invitation/")
    token = _path(link).rstrip("/").rsplit("/", 1)[1]
    assert len(token) >= 43  # 32 random bytes, url-safe base64: 256 bits
    invitation = Invitation.objects.get(email="new@corp.example")
    assert token not in invitation.token_hash and invitation.token_hash == invitations.hash_token(token)
    page = client.get("/accounts/team/").content.decode()
    assert token not in page and "/accounts/invitation/" not in page
    client.post(f"/accounts/team/invitations/{invitation.public_id}/resend/")
    page = client.get("/accounts/team/").content.decode()
    new_token = _path(mailbox.link(mailbox.wait(2)[1], "/accounts/invitation/")).rstrip("/").rsplit("/", 1)[1]
    assert new_token not in page and token not in page


# -- the e-mail ----------------------------------------------------------------------------

def test_the_invitation_e_mail_says_which_team_invited_whom_in_text_and_html(client, mailbox, owner, team, settings):
    settings.KILN_PUBLIC_URL = "https://kiln.example.com"
    owner.name = "Olive Owner"
    owner.save()
    client.force_login(owner)
    _invite(client, "New.Person@Corp.example", "admin")
    message = mailbox.wait(1)[0]
    assert message["To"] == "new.person@corp.example"
    assert message["From"] == settings.DEFAULT_FROM_EMAIL
    assert message["Subject"] == "Acme Studio invites you to Kiln"
    text, html = mailbox.text(message), mailbox.html(message)
    for part in (text, html):
        assert "Olive Owner" in part and "Acme Studio" in part and "new.person@corp.example" in part
        assert "as admin" in part
    link = mailbox.link(message)
    assert link.startswith("https://kiln.example.com/accounts/invitation/")
    assert f'href="{link}"' in html


def test_a_mail_server_that_refuses_is_reported_and_the_invitation_can_be_re_sent(client, mailbox, owner, settings):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                                    "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 5}}}
    client.force_login(owner)
    page = _invite(client, "new@corp.example").content.decode()
    assert "is saved, but the e-mail could not be sent" in page
    invitation = Invitation.objects.get(email="new@corp.example")
    assert invitation.state == InvitationState.PENDING and invitation.sent is None
    assert "not sent yet" in client.get("/accounts/team/").content.decode()

    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                                    "OPTIONS": {"host": "127.0.0.1", "port": mailbox.port, "timeout": 10}}}
    page = client.post(f"/accounts/team/invitations/{invitation.public_id}/resend/", follow=True).content.decode()
    assert "A new invitation was sent" in page
    _, response = _accept_with_password(mailbox.link(mailbox.wait(1)[0]))
    assert response.status_code == 302


# -- accepting -----------------------------------------------------------------------------

def test_a_new_person_chooses_a_password_and_lands_signed_in_in_the_team(client, mailbox, owner, team):
    client.force_login(owner)
    _invite(client, "new@corp.example", "admin")
    link = mailbox.link(mailbox.wait(1)[0])
    guest = Client()
    page = guest.get(_path(link))
    assert page.status_code == 200 and page["Cache-Control"].startswith("max-age=0")
    assert "no-store" in page["Cache-Control"]
    html = page.content.decode()
    assert "Join Acme Studio" in html and "new@corp.example" in html and 'name="new_password1"' in html

    short = guest.post(_path(link), {"new_password1": "short", "new_password2": "short"})
    assert short.status_code == 400 and "too short" in short.content.decode()
    assert not User.objects.filter(email="new@corp.example").exists()

    response = guest.post(_path(link), {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    studio = guest.get("/").content.decode()
    assert "Welcome to Acme Studio" in studio
    membership = Membership.objects.get(team=team, user__email="new@corp.example")
    assert membership.role == Role.ADMIN and membership.wallet.available == 0
    assert guest.session[SESSION_KEY] == str(team.public_id)
    signed_in = Client().post("/accounts/login/", {"username": "new@corp.example", "password": NEW_PASSWORD})
    assert signed_in.status_code == 302


def test_an_invitation_link_works_once(client, mailbox, owner, team):
    client.force_login(owner)
    _invite(client, "new@corp.example")
    link = mailbox.link(mailbox.wait(1)[0])
    _accept_with_password(link)
    again = Client().post(_path(link), {"new_password1": ATTACKER_PASSWORD, "new_password2": ATTACKER_PASSWORD})
    assert again.status_code == 410
    assert "already been used" in again.content.decode()
    user = User.objects.get(email="new@corp.example")
    assert user.check_password(NEW_PASSWORD) and not user.check_password(ATTACKER_PASSWORD)
    assert Membership.objects.filter(user=user).count() == 1
    assert "Accepted" in client.get("/accounts/team/").content.decode()


def test_an_expired_link_says_so_and_a_re_send_gives_a_working_one(client, mailbox, owner, team, settings):
    settings.KILN_INVITATION_DAYS = 3
    client.force_login(owner)
    _invite(client, "late@corp.example")
    invitation = Invitation.objects.get(email="late@corp.example")
    assert timedelta(days=2, hours=23) < invitation.expires - timezone.now() <= timedelta(days=3)
    old = mailbox.link(mailbox.wait(1)[0])
    Invitation.objects.filter(pk=invitation.pk).update(expires=timezone.now() - timedelta(seconds=1))

    response = Client().get(_path(old))
    assert response.status_code == 410
    assert "This invitation has expired" in response.content.decode()
    assert "owner@acme.test" in response.content.decode()  # who to ask
    invitation.refresh_from_db()
    assert invitation.state == InvitationState.EXPIRED
    assert "Expired" in client.get("/accounts/team/").content.decode()
    _, refused = _accept_with_password(old)
    assert refused.status_code == 410 and not User.objects.filter(email="late@corp.example").exists()

    client.post(f"/accounts/team/invitations/{invitation.public_id}/resend/")
    new = mailbox.link(mailbox.wait(2)[1])
    assert new != old
    assert Client().get(_path(old)).status_code == 404  # replaced
    _, response = _accept_with_password(new)
    assert response.status_code == 302
    assert Membership.objects.filter(team=team, user__email="late@corp.example").exists()


def test_re_sending_invalidates_the_earlier_link(client, mailbox, owner, team):
    client.force_login(owner)
    _invite(client, "new@corp.example")
    first = mailbox.link(mailbox.wait(1)[0])
    invitation = Invitation.objects.get(email="new@corp.example")
    response = client.post(f"/accounts/team/invitations/{invitation.public_id}/resend/", follow=True)
    assert "the earlier link no longer works" in response.content.decode()
    second = mailbox.link(mailbox.wait(2)[1])
    dead = Client().get(_path(first))
    assert dead.status_code == 404 and "newer invitation" in dead.content.decode()
    assert Client().get(_path(second)).status_code == 200
    # Inviting the same address again is a re-send too (one pending invitation per address).
    _invite(client, "new@corp.example", "admin")
    third = mailbox.link(mailbox.wait(3)[2])
    assert Client().get(_path(second)).status_code == 404
    assert Invitation.objects.filter(email="new@corp.example").count() == 1
    _accept_with_password(third)
    assert Membership.objects.get(user__email="new@corp.example").role == Role.ADMIN


def test_a_revoked_invitation_s_link_says_so_and_joins_no_one(client, mailbox, owner, team):
    client.force_login(owner)
    _invite(client, "gone@corp.example")
    link = mailbox.link(mailbox.wait(1)[0])
    invitation = Invitation.objects.get(email="gone@corp.example")
    page = client.post(f"/accounts/team/invitations/{invitation.public_id}/revoke/", follow=True).content.decode()
    assert "is revoked" in page
    assert "Revoked" in page.split('id="invitations"', 1)[1]
    response = Client().get(_path(link))
    assert response.status_code == 410 and "This invitation was withdrawn" in response.content.decode()
    _, refused = _accept_with_password(link)
    assert refused.status_code == 410
    assert not User.objects.filter(email="gone@corp.example").exists()
    # Revoked is final: re-send refuses, inviting again makes a new invitation.
    page = client.post(f"/accounts/team/invitations/{invitation.public_id}/resend/", follow=True).content.decode()
    assert "invite them again instead" in page


def test_acceptance_across_teams_needs_the_token_and_the_right_account(client, mailbox, owner, team, outsider,
                                                                       teammate):
    """Rival Films' owner (an account with a password) is invited to Acme. Being signed in
    with that e-mail is not enough; the link alone is not enough either (sign in first);
    and another signed-in account cannot use the link."""
    client.force_login(owner)
    _invite(client, outsider.email, "admin")
    link = mailbox.link(mailbox.wait(1)[0])

    theirs = Client()
    theirs.force_login(outsider)
    assert theirs.post("/accounts/switch-team/", {"team": team.public_id}).status_code == 404  # not a member yet
    assert theirs.get("/accounts/invitation/not-the-token/").status_code == 404

    anonymous = Client()
    page = anonymous.get(_path(link)).content.decode()
    assert "Sign in to accept" in page and 'name="new_password1"' not in page
    grab = anonymous.post(_path(link), {"new_password1": ATTACKER_PASSWORD, "new_password2": ATTACKER_PASSWORD})
    assert grab.status_code == 200 and "Sign in to accept" in grab.content.decode()
    outsider.refresh_from_db()
    assert outsider.check_password(PASSWORD)  # the link never sets an existing account's password

    wrong = Client()
    wrong.force_login(teammate)
    response = wrong.post(_path(link))
    assert response.status_code == 403 and "This invitation is for another account" in response.content.decode()
    assert not Membership.objects.filter(team=team, user=outsider).exists()

    response = theirs.get(_path(link))
    assert "Join Acme Studio" in response.content.decode()
    response = theirs.post(_path(link))
    assert response.status_code == 302
    assert Membership.objects.get(team=team, user=outsider).role == Role.ADMIN
    assert theirs.session[SESSION_KEY] == str(team.public_id)
    assert Membership.objects.active().filter(user=outsider).count() == 2


def test_signing_in_from_the_invitation_comes_back_to_it(client, mailbox, owner, outsider, team):
    client.force_login(owner)
    _invite(client, outsider.email)
    path = _path(mailbox.link(mailbox.wait(1)[0]))
    guest = Client()
    page = guest.get(path).content.decode()
    sign_in = f"/accounts/login/?next={path}"
    assert sign_in in page
    response = guest.post(sign_in, {"username": outsider.email, "password": PASSWORD, "next": path})
    assert response["Location"] == path
    assert guest.post(path).status_code == 302
    assert Membership.objects.filter(team=team, user=outsider).exists()


def test_a_removed_member_comes_back_through_an_invitation_with_their_wallet(client, mailbox, owner, teammate, team):
    membership = Membership.objects.get(user=teammate)
    client.force_login(owner)
    client.post(f"/accounts/team/members/{membership.public_id}/remove/")
    _invite(client, teammate.email, "admin")
    guest = Client()
    guest.force_login(teammate)
    guest.post(_path(mailbox.link(mailbox.wait(1)[0])))
    membership.refresh_from_db()
    assert membership.removed_at is None and membership.role == Role.ADMIN
    assert membership.wallet.available == 1_000_000


# -- who may do what -----------------------------------------------------------------------

def test_a_member_cannot_invite_resend_or_revoke(teammate_client, mailbox, team, owner):
    assert teammate_client.post("/accounts/team/members/add/", {"email": "x@corp.example",
                                                                 "role": "member"}).status_code == 403
    invitation = invitations.invite(team, "y@corp.example", actor=Membership.objects.get(user=owner)).invitation
    mailbox.wait(1)
    assert teammate_client.post(f"/accounts/team/invitations/{invitation.public_id}/resend/").status_code == 403
    assert teammate_client.post(f"/accounts/team/invitations/{invitation.public_id}/revoke/").status_code == 403
    invitation.refresh_from_db()
    assert invitation.state == InvitationState.PENDING and len(mailbox.messages) == 1
    assert "y@corp.example" not in teammate_client.get("/accounts/team/").content.decode()


def test_an_outsider_cannot_touch_another_team_s_invitations(outsider_client, mailbox, team, owner):
    invitation = invitations.invite(team, "y@corp.example", actor=Membership.objects.get(user=owner)).invitation
    for action in ("resend", "revoke"):
        assert outsider_client.post(f"/accounts/team/invitations/{invitation.public_id}/{action}/").status_code == 404
    invitation.refresh_from_db()
    assert invitation.state == InvitationState.PENDING
    assert "y@corp.example" not in outsider_client.get("/accounts/team/").content.decode()


def test_an_admin_cannot_invite_an_owner(client, mailbox, team, owner):
    admin = make_member(team, "admin@acme.test", Role.ADMIN)
    client.force_login(admin)
    response = _invite(client, "boss@corp.example", "owner")
    assert "Only an owner can grant" in response.content.decode()
    assert not Invitation.objects.exists() and mailbox.messages == []


def test_inviting_a_current_member_or_a_bad_address_is_refused(owner_client, mailbox, teammate):
    response = owner_client.post("/accounts/team/members/add/", {"email": teammate.email, "role": "member"})
    assert response.status_code == 400 and "already a member of Acme Studio" in response.content.decode()
    response = owner_client.post("/accounts/team/members/add/", {"email": "nope", "role": "member"})
    assert response.status_code == 400 and "Enter a valid email address." in response.content.decode()
    assert not Invitation.objects.exists() and mailbox.messages == []


@pytest.mark.parametrize("action", ["resend", "revoke"])
def test_resend_and_revoke_need_a_csrf_token(csrf_client, mailbox, team, owner, action):
    invitation = invitations.invite(team, "y@corp.example", actor=Membership.objects.get(user=owner)).invitation
    mailbox.wait(1)
    assert csrf_client.post(f"/accounts/team/invitations/{invitation.public_id}/{action}/").status_code == 403
    assert csrf_client.post("/accounts/team/members/add/", {"email": "z@corp.example"}).status_code == 403
    invitation.refresh_from_db()
    assert invitation.state == InvitationState.PENDING and len(mailbox.messages) == 1


def test_accepting_needs_a_csrf_token(mailbox, team, owner):
    sent = invitations.invite(team, "y@corp.example", actor=Membership.objects.get(user=owner))
    browser = Client(enforce_csrf_checks=True)
    response = browser.post(_path(sent.link), {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 403
    assert not User.objects.filter(email="y@corp.example").exists()
