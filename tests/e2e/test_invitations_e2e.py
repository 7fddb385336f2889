"""Browser: an owner invites someone; the e-mail arrives over SMTP (loopback server); the
invitee follows its link in another browser, chooses a password and lands in the studio
of the team, signed in. Screenshots of the team page and the accept page, desktop and phone."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Membership, Role
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = "/tmp/shots-i14"
NEW_PASSWORD = "a fresh browser passphrase 58"
PHONE = {"width": 390, "height": 844}


def test_invite_e_mail_accept_studio(browser, page, live_server, login, shot, owner, team, mailbox):
    login(page, live_server, owner.email, PASSWORD, next_path="/accounts/team/")
    page.fill("input[name=email]", "newbie@corp.example")
    page.select_option("#id_role", "admin")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator(".messages")).to_contain_text("Invitation sent to newbie@corp.example")
    row = page.locator("#invitations tr", has_text="newbie@corp.example")
    expect(row).to_contain_text("Pending")
    expect(row).to_contain_text(owner.email)
    expect(row.get_by_role("button", name="Re-send")).to_be_visible()
    # A second, revoked invitation so the list shows more than one state.
    page.fill("input[name=email]", "changed-mind@corp.example")
    page.get_by_role("button", name="Send invitation").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#invitations tr", has_text="changed-mind@corp.example").get_by_role("button", name="Revoke").click()
    expect(page.locator("#invitations tr", has_text="changed-mind@corp.example")).to_contain_text("Revoked")
    assert "/accounts/invitation/" not in page.content()
    shot(page, "team-invitations-desktop", SHOTS)
    page.set_viewport_size(PHONE)
    shot(page, "team-invitations-phone", SHOTS)

    message = next(m for m in mailbox.wait(2) if m["To"] == "newbie@corp.example")
    link = mailbox.link(message, "/accounts/invitation/")
    assert link.startswith(live_server.url)

    invitee = browser.new_context(viewport=PHONE)
    try:
        phone = invitee.new_page()
        phone.set_default_timeout(15_000)
        errors = []
        phone.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        phone.goto(link)
        expect(phone.locator("h1")).to_have_text("Join Acme Studio")
        expect(phone.locator(".invitation-page")).to_contain_text("newbie@corp.example")
        shot(phone, "accept-phone", SHOTS)
        phone.set_viewport_size({"width": 1280, "height": 860})
        shot(phone, "accept-desktop", SHOTS)
        phone.fill("input[name=new_password1]", NEW_PASSWORD)
        phone.fill("input[name=new_password2]", NEW_PASSWORD)
        phone.get_by_role("button", name="Join Acme Studio").click()
        phone.wait_for_url(re.compile(r"/$"))
        expect(phone.locator(".messages")).to_contain_text("Welcome to Acme Studio")
        expect(phone.locator(".user-email")).to_have_text("newbie@corp.example")
        shot(phone, "studio-after-accept", SHOTS)

        phone.goto(link)  # the link works once
        expect(phone.locator("h1")).to_have_text("This invitation has already been used")
        assert [e for e in errors if "410 (Gone)" not in e] == []  # the used link answers 410, nothing else failed
    finally:
        invitee.close()

    assert Membership.objects.get(team=team, user__email="newbie@corp.example").role == Role.ADMIN
    page.set_viewport_size({"width": 1280, "height": 860})
    page.goto(f"{live_server.url}/accounts/team/")
    expect(page.locator("#invitations tr", has_text="newbie@corp.example")).to_contain_text("Accepted")
    expect(page.locator("table.members")).to_contain_text("newbie@corp.example")
    assert page.problems == []
