"""Signing in through the company's identity provider in a real browser: Kiln's button, the
test provider's own login page (tests/oidc_provider, under gunicorn), and back into Kiln."""

import pytest
from django.test import Client

from accounts.models import Membership, Role
from accounts.oidc.config import form_action_origins, socialaccount_providers
from tests.accounts.oidc.conftest import CLIENT_ID, CLIENT_SECRET, IDP_PASSWORD, idp, kiln_config  # noqa: F401
from tests.conftest import make_member

pytestmark = pytest.mark.usefixtures("transactional_db")


@pytest.fixture
def kiln_idp(idp, live_server, settings):  # noqa: F811
    idp.client(CLIENT_ID, CLIENT_SECRET, ["http://testserver/accounts/oidc/idp/login/callback/",
                                          f"{live_server.url}/accounts/oidc/idp/login/callback/"])
    config = kiln_config(idp)
    settings.KILN_OIDC_PROVIDERS = [config]
    settings.SOCIALACCOUNT_PROVIDERS = socialaccount_providers([config])
    settings.SECURE_CSP = {**settings.SECURE_CSP, "form-action": ["'self'", *form_action_origins([config])]}
    idp.misbehave()
    return idp


def sign_in_at_provider(page, email):
    page.get_by_role("button", name="Sign in with Acme SSO").click()
    page.wait_for_url(lambda url: url.startswith("http://127.0.0.1:") and "/login/?next=" in url)
    assert "Test identity provider" in page.content()
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", IDP_PASSWORD)
    page.get_by_role("button", name="Sign in at the provider").click()


def test_sign_in_through_the_provider_end_to_end(page, live_server, kiln_idp, team, owner, shot):
    make_member(team, "ada@acme.test", Role.MEMBER)
    kiln_idp.person("ada@acme.test", name="Ada")
    page.goto(f"{live_server.url}/accounts/login/")
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 860})
        shot(page, f"oidc-login-{width}")
    page.set_viewport_size({"width": 1280, "height": 860})
    sign_in_at_provider(page, "ada@acme.test")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator(".user-email").inner_text() == "ada@acme.test"
    assert page.locator(".team-name").inner_text() == "Acme Studio"
    # The test provider has no favicon; only Kiln's own answers count.
    assert not [p for p in page.problems if "console: Failed to load" not in p], page.problems


def test_password_off_and_the_domain_rule_pages(page, live_server, kiln_idp, team, owner, settings, shot):
    settings.KILN_PASSWORD_LOGIN = False
    kiln_idp.person(owner.email)
    page.goto(f"{live_server.url}/accounts/login/?next=/accounts/team/sign-in/")
    assert page.locator("input[name=password]").count() == 0
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 860})
        shot(page, f"oidc-login-password-off-{width}")
    page.set_viewport_size({"width": 1280, "height": 860})
    sign_in_at_provider(page, owner.email)
    page.wait_for_url("**/accounts/team/sign-in/")
    page.fill("input[name=domain]", "acme.test")
    page.select_option("select[name=role]", "member")
    page.get_by_role("button", name="Save the rule (off)").click()
    page.get_by_role("button", name="Turn on").click()
    assert "is on" in page.locator(".messages").inner_text()
    # Someone at acme.test signs in (another browser): they join, and the page lists them.
    kiln_idp.person("newhire@acme.test")
    from tests.accounts.oidc.conftest import authorize, idp_session, local, start

    other = Client()
    other.get(local(authorize(idp_session(kiln_idp, "newhire@acme.test"), start(other))))
    assert Membership.objects.get(team=team, user__email="newhire@acme.test").role == Role.MEMBER
    page.reload()
    assert "newhire@acme.test" in page.locator("#domain-joins").inner_text()
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 860})
        shot(page, f"oidc-domain-rules-{width}")
    # The test provider has no favicon; only Kiln's own answers count.
    assert not [p for p in page.problems if "console: Failed to load" not in p], page.problems
