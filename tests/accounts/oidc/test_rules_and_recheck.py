"""Teams' domain rules, password sign-in off, and the provider recheck ending sessions and API tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import Membership, Role, User
from accounts.oidc import domains
from accounts.oidc.adapter import SESSION_CHECKED
from accounts.oidc.models import DomainJoin, DomainRule, Identity
from accounts.services import MembershipError
from accounts.tokens.services import create_token
from tests.accounts.oidc.test_sign_in import signed_in_as
from tests.conftest import PASSWORD, make_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_with_identity(oidc, owner, team, sign_in_via_idp):
    """Acme's owner, signed in through the provider as owner@acme.test (their proof of acme.test)."""
    oidc.person(owner.email)
    client = Client()
    sign_in_via_idp(client, owner.email)
    return client


def test_domain_rule_joins_only_verified_people_at_its_domain_and_lists_them(
        oidc, owner_with_identity, team, other_team, outsider, sign_in_via_idp):
    owner_client = owner_with_identity
    answer = owner_client.post("/accounts/team/sign-in/add/", {"provider": "idp", "domain": "acme.test", "role": "admin"})
    assert answer.status_code == 302
    rule = DomainRule.objects.get(team=team)
    assert not rule.enabled  # off until turned on
    oidc.person("early@acme.test")
    sign_in_via_idp(Client(), "early@acme.test")
    assert not Membership.objects.filter(team=team, user__email="early@acme.test").exists()

    owner_client.post(f"/accounts/team/sign-in/{rule.public_id}/toggle/", {"enabled": "1"})
    oidc.person("bob@acme.test")
    oidc.person("eve@elsewhere.test")
    oidc.person("unverified@acme.test", email_verified=False)
    response, _ = sign_in_via_idp(Client(), "bob@acme.test")
    assert response.status_code == 302
    bob = Membership.objects.get(team=team, user__email="bob@acme.test")
    assert bob.role == Role.ADMIN and bob.wallet  # the rule's role, with a wallet
    sign_in_via_idp(Client(), "eve@elsewhere.test")
    sign_in_via_idp(Client(), "unverified@acme.test")
    assert not Membership.objects.filter(user__email__in=["eve@elsewhere.test", "unverified@acme.test"]).exists()
    assert not Membership.objects.filter(team=other_team).exclude(user=outsider).exists()  # no other team touched

    page = owner_client.get("/accounts/team/sign-in/").content.decode()
    assert "bob@acme.test" in page and "eve@elsewhere.test" not in page
    members = owner_client.get("/accounts/team/").content.decode()
    assert "Joined through the @acme.test sign-in rule" in members

    # Someone the team removed is not brought back by the rule.
    Membership.objects.filter(pk=bob.pk).update(removed_at=timezone.now())
    sign_in_via_idp(Client(), "bob@acme.test")
    assert Membership.objects.get(pk=bob.pk).removed_at is not None
    assert DomainJoin.objects.filter(team=team).count() == 1


def test_a_rule_needs_the_owner_at_that_domain_and_never_a_public_one(oidc, owner_with_identity, team, owner,
                                                                      settings):
    membership = Membership.objects.get(user=owner, team=team)
    with pytest.raises(MembershipError, match=r"verified address at bigcorp\.test first"):
        domains.create_rule(membership, "idp", "bigcorp.test", "member")
    Identity.objects.filter(user=owner).update(email="owner@gmail.com")
    with pytest.raises(MembershipError, match="public e-mail domain"):
        domains.create_rule(membership, "idp", "gmail.com", "member")
    settings.KILN_OIDC_PUBLIC_DOMAINS = ["acme.test"]
    with pytest.raises(MembershipError, match="public e-mail domain"):
        domains.create_rule(membership, "idp", "acme.test", "member")
    with pytest.raises(MembershipError, match="owners are invited"):
        domains.create_rule(membership, "idp", "gmail.org", "owner")


def test_only_owners_change_rules_and_admins_see_them(oidc, owner_with_identity, team):
    admin = make_member(team, "admin@acme.test", Role.ADMIN)
    client = Client()
    client.force_login(admin)
    assert client.get("/accounts/team/sign-in/").status_code == 200
    assert client.post("/accounts/team/sign-in/add/", {"provider": "idp", "domain": "acme.test",
                                                       "role": "member"}).status_code == 403
    assert not DomainRule.objects.exists()


def test_password_sign_in_off(oidc, settings, client, owner, sign_in_via_idp):
    settings.KILN_PASSWORD_LOGIN = False
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with Acme SSO" in page and 'name="password"' not in page
    assert client.post("/accounts/login/", {"username": owner.email, "password": PASSWORD}).status_code == 403
    assert signed_in_as(client) is None
    for path in ("/accounts/password/", "/accounts/password/reset/"):
        assert client.get(path).status_code == 404
    admin_login = client.get("/admin/login/?next=/admin/")
    assert admin_login.status_code == 302 and admin_login["Location"].startswith("/accounts/login/")
    oidc.person(owner.email)
    response, _ = sign_in_via_idp(client, owner.email)
    assert response.status_code == 302 and signed_in_as(client) == owner


def test_break_glass_link_signs_a_superuser_in_once(settings, capsys, db):
    settings.KILN_PASSWORD_LOGIN = False
    root = User.objects.create_superuser("root@kiln.test", PASSWORD)
    call_command("breakglass", root.email, base_url="http://testserver")
    path = capsys.readouterr().out.strip().removeprefix("http://testserver")
    client = Client()
    assert client.get(path).status_code == 200  # a preview does not spend it
    assert client.post(path).status_code == 302 and signed_in_as(client) == root
    assert Client().post(path).status_code == 404  # once


def _age(client, identity: Identity) -> None:
    """As if KILN_OIDC_RECHECK_SECONDS had passed since the provider last vouched."""
    Identity.objects.filter(pk=identity.pk).update(confirmed_at=timezone.now() - timedelta(hours=1))
    session = client.session
    session[SESSION_CHECKED] = 0
    session.save()


def test_recheck_keeps_a_vouched_session_and_ends_a_refused_one_and_its_api_tokens(
        oidc, client, sign_in_via_idp, teammate, team, settings):
    settings.KILN_OIDC_RECHECK_SECONDS = 600
    oidc.person(teammate.email)
    sign_in_via_idp(client, teammate.email)
    identity = Identity.objects.get(user=teammate)
    secret = create_token(Membership.objects.get(user=teammate), "script", ["read"])[1]
    api = Client()
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}

    # Within the bound: no question to the provider.
    first_token = identity.refresh_token_encrypted
    assert client.get("/gallery/").status_code == 200
    assert Identity.objects.get(pk=identity.pk).refresh_token_encrypted == first_token

    # Past it, still vouched for: the refresh token is spent and the new one kept.
    _age(client, identity)
    assert client.get("/gallery/").status_code == 200
    identity.refresh_from_db()
    assert identity.refresh_token_encrypted != first_token and timezone.now() - identity.confirmed_at < timedelta(minutes=1)
    assert api.get("/api/v1/me", **bearer).status_code == 200

    # The company disables them: the next recheck ends the session and the tokens.
    oidc.disable(teammate.email)
    _age(client, identity)
    response = client.get("/gallery/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert signed_in_as(client) is None
    assert "no longer accepts your sign-in" in client.get("/accounts/login/").content.decode()
    identity.refresh_from_db()
    assert identity.lost_at is not None
    refused = api.get("/api/v1/me", **bearer)
    assert refused.status_code == 401 and "lost access" in refused.json()["detail"]
    # Their password does not get them back in either.
    assert client.post("/accounts/login/", {"username": teammate.email, "password": PASSWORD}).status_code == 200
    assert signed_in_as(client) is None


def test_revoked_refresh_tokens_end_api_access_at_the_bound(oidc, client, sign_in_via_idp, teammate, team, settings):
    oidc.person(teammate.email)
    sign_in_via_idp(client, teammate.email)
    identity = Identity.objects.get(user=teammate)
    secret = create_token(Membership.objects.get(user=teammate), "script", ["read"])[1]
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    oidc.revoke(teammate.email)
    assert Client().get("/api/v1/me", **bearer).status_code == 200  # within the bound, as configured
    Identity.objects.filter(pk=identity.pk).update(confirmed_at=timezone.now() - timedelta(
        seconds=settings.KILN_OIDC_RECHECK_SECONDS))
    assert Client().get("/api/v1/me", **bearer).status_code == 401
    # Signing in through the provider again (it accepts them) gives access back.
    sign_in_via_idp(Client(), teammate.email)
    assert Client().get("/api/v1/me", **bearer).status_code == 200
