"""Browser: sign in with a real password, switch team in the header, add a provider key
and see it masked, never in clear."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Role, Team
from generations.keys.models import ProviderKey
from tests.conftest import PASSWORD, make_member

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = "/tmp/shots-r1"
CLEAR = "sk-browser-TopSecretValue-31415926-LAST"


def test_a_member_signs_in_switches_team_and_adds_a_key_that_stays_masked(page, live_server, login, shot, owner, team):
    side = Team.objects.create(slug="side", name="Side Project")
    make_member(side, owner.email, Role.ADMIN)

    page.goto(f"{live_server.url}/accounts/login/")
    expect(page.get_by_role("heading", name="Sign in to Kiln")).to_be_visible()
    shot(page, "login", SHOTS)
    login(page, live_server, owner.email, PASSWORD, next_path="/accounts/team/")
    expect(page.locator("h1")).to_have_text("Acme Studio")
    expect(page.locator(".user-email")).to_have_text(owner.email)

    # The header's switcher submits on change (static/kiln/kiln.js), no button needed.
    expect(page.locator(".team-switcher button")).to_be_hidden()
    page.select_option("#team-switch", label="Side Project")
    expect(page.locator("h1")).to_have_text("Side Project")
    expect(page).to_have_url(re.compile(r"/accounts/team/$"))
    expect(page.locator("#team-switch option:checked")).to_have_text("Side Project")
    shot(page, "team", SHOTS)

    page.get_by_role("link", name="Provider keys").click()
    expect(page).to_have_url(re.compile(r"/accounts/team/keys/$"))
    page.select_option("select[name=provider]", "shark")
    page.fill("input[name=label]", "Browser key")
    page.fill("input[name=api_key]", CLEAR)
    page.fill("input[name=base_url]", "https://api.shark.example/v1")
    page.get_by_role("button", name="Add key").click()

    expect(page.locator(".messages")).to_contain_text("Browser key")
    row = page.locator("tr", has_text="Browser key")
    expect(row.locator("code.masked")).to_have_text("••••LAST")
    expect(page.locator("#provider-shark h3")).to_have_text("Shark AI")  # the key is in Shark AI's group
    expect(page.locator("#provider-shark")).to_contain_text("Browser key")
    expect(row).to_contain_text("Active")
    expect(page.locator("input[name=api_key]")).to_have_value("")
    assert CLEAR not in page.content()
    shot(page, "keys", SHOTS)

    key = ProviderKey.objects.get(label="Browser key")
    assert key.team == side and key.get_api_key() == CLEAR

    # The page passed the strict CSP: no inline script or style was refused.
    assert page.problems == []
