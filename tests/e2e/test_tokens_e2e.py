"""Browser: personal access tokens (issue 17, point 1).

A member makes a token, sees it once (with a curl line), and after a reload sees only its
prefix; revokes it. An admin revokes a member's token from the team's API tokens tab, and
the list says who did it. The header's link and the team tabs fit a 390 px phone.
Screenshots at 1280 px and 390 px go to $KILN_SHOTS_DIR (default /tmp/shots-tokens17/).
"""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from accounts.models import Membership, Role
from accounts.tokens.models import AccessToken
from accounts.tokens.services import create_token, find_token
from tests.conftest import PASSWORD, make_member

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("KILN_SHOTS_DIR", "/tmp/shots-tokens17"))
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}
SECRET = re.compile(r"^kiln_pat_[A-Za-z0-9_-]{43}$")


def both_widths(page, shot, name):
    """A screenshot at 1280 px and at 390 px; the phone page never scrolls sideways."""
    page.set_viewport_size(DESKTOP)
    page.evaluate("() => window.scrollTo(0, 0)")
    shot(page, f"{name}-1280", SHOTS)
    page.set_viewport_size(PHONE)
    page.evaluate("() => window.scrollTo(0, 0)")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"], name
    shot(page, f"{name}-390", SHOTS)
    page.set_viewport_size(DESKTOP)


def test_a_member_makes_a_token_sees_it_once_and_revokes_it(page, live_server, login, shot, team, owner, teammate):
    page.on("dialog", lambda dialog: dialog.accept())
    login(page, live_server, teammate.email, PASSWORD)
    page.get_by_role("link", name="API tokens").click()
    page.wait_for_url(re.compile(r"/accounts/tokens/$"))
    expect(page.locator(".token-team")).to_contain_text("Tokens act as you in Acme Studio")
    both_widths(page, shot, "1-empty")

    # A wrong form is refused at the form, with what was typed kept.
    page.fill("input[name=name]", "Release videos")
    page.get_by_label("On a date").check()
    page.get_by_role("button", name="Create token").click()
    expect(page.locator(".token-expiry .error")).to_have_text("Choose the date the token expires.")
    expect(page.locator("input[name=name]")).to_have_value("Release videos")
    assert not AccessToken.objects.exists()

    page.get_by_label("In 30 days").check()
    page.locator("input[name=scopes][value=read]").check()
    page.locator("input[name=scopes][value=generate]").check()
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#token-secret").input_value()
    assert SECRET.match(secret)
    expect(page.locator(".token-warning")).to_contain_text("you will not see it again")
    expect(page.locator("#token-example")).to_have_text(
        f'curl -H "Authorization: Bearer {secret}" {live_server.url}/api/v1/me')
    token = AccessToken.objects.get()
    row = page.locator(f"#token-{token.pk}")
    expect(row).to_contain_text(f"{secret[:16]}…")
    expect(row.locator(".token-state")).to_have_text("Live")
    expect(row.locator("td.token-when").last).to_have_text("Last used never")
    both_widths(page, shot, "2-created-once")
    assert find_token(secret) == token and token.scopes == ["generate", "read"]  # a use, as the API makes

    # A reload is a plain GET (the page replaced the POST in the history): no second token, no secret.
    page.reload()
    expect(page.locator("#token-secret")).to_have_count(0)
    assert secret not in page.content() and secret[16:] not in page.content()
    expect(row).to_contain_text(f"{secret[:16]}…")
    expect(row.locator("td.token-when").last).to_have_text("Last used just now")
    assert AccessToken.objects.count() == 1

    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(".messages")).to_contain_text("Revoked “Release videos”")
    expect(row.locator(".token-state")).to_contain_text("Revoked")
    expect(row.locator(".token-state")).to_contain_text("by you")
    assert find_token(secret) is None
    both_widths(page, shot, "3-revoked")
    # The one 400 is the refused form's answer, on purpose.
    assert [p for p in page.problems if "400 (Bad Request)" not in p] == []


def test_an_admin_revokes_a_member_s_token_from_the_team_tab(page, live_server, login, shot, team, owner, teammate):
    page.on("dialog", lambda dialog: dialog.accept())
    admin = make_member(team, "admin@acme.test", Role.ADMIN)
    mate = Membership.objects.get(user=teammate)
    token, secret = create_token(mate, "Slack bot", ["read", "share"])
    create_token(Membership.objects.get(user=owner), "Owner CI", ["generate"])
    login(page, live_server, admin.email, PASSWORD, next_path="/accounts/team/")
    page.locator("nav.tabs").get_by_role("link", name="API tokens").click()
    page.wait_for_url(re.compile(r"/accounts/team/tokens/$"))
    row = page.locator(f"#token-{token.pk}")
    expect(row).to_contain_text("mate@acme.test")
    expect(row).to_contain_text(f"{token.prefix}…")
    expect(page.locator("table.team-tokens tbody tr")).to_have_count(2)
    both_widths(page, shot, "4-team-tab")

    # On a phone the tabs wrap and the last one is on screen.
    page.set_viewport_size(PHONE)
    box = page.locator("nav.tabs a").last.bounding_box()
    assert box["x"] + box["width"] <= PHONE["width"] - 16, box
    page.set_viewport_size(DESKTOP)

    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(".messages")).to_contain_text("Revoked mate@acme.test's token “Slack bot”")
    expect(row.locator(".token-state")).to_contain_text("Revoked")
    expect(row.locator(".token-revoked")).to_contain_text("by you")
    assert find_token(secret) is None
    both_widths(page, shot, "5-team-revoked")

    # The member sees who revoked it.
    page.context.clear_cookies()
    login(page, live_server, teammate.email, PASSWORD, next_path="/accounts/tokens/")
    expect(page.locator(f"#token-{token.pk} .token-revoked")).to_contain_text("by admin@acme.test")
    assert page.problems == []
    # A member is refused the team tab.
    response = page.goto("/accounts/team/tokens/")
    assert response.status == 403


def test_the_header_link_fits_a_phone(page, live_server, login, shot, team, owner):
    page.set_viewport_size(PHONE)
    login(page, live_server, owner.email, PASSWORD)
    link = page.locator("header .account").get_by_role("link", name=re.compile("tokens", re.I))
    box = link.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "6-header-390", SHOTS)
    link.click()
    page.wait_for_url(re.compile(r"/accounts/tokens/$"))


def test_on_a_small_phone_the_team_name_keeps_its_room_and_the_account_page_links_to_tokens(
        page, live_server, login, shot, team, owner):
    page.set_viewport_size({"width": 320, "height": 740})
    login(page, live_server, owner.email, PASSWORD)
    expect(page.locator("header .api-tokens-link")).to_be_hidden()
    assert page.locator("header .team-name").bounding_box()["width"] >= 40
    shot(page, "7-header-320", SHOTS)
    page.locator("header .user-email a").click()
    page.wait_for_url(re.compile(r"/accounts/password/$"))
    page.locator("main").get_by_role("link", name="API tokens").click()
    page.wait_for_url(re.compile(r"/accounts/tokens/$"))
