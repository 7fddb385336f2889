"""Signing in through a real OpenID Connect provider (tests/oidc_provider) on loopback."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY as AUTH_SESSION_KEY
from django.test import Client

from accounts.models import Membership, User
from accounts.oidc.models import Identity
from tests.accounts.oidc.conftest import authorize, idp_session, local, start
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def signed_in_as(client) -> User | None:
    pk = client.session.get(AUTH_SESSION_KEY)
    return User.objects.get(pk=pk) if pk else None


def test_first_sign_in_makes_an_account_without_a_team(oidc, client, sign_in_via_idp):
    oidc.person("newcomer@acme.test", name="New Comer")
    response, _ = sign_in_via_idp(client, "newcomer@acme.test")
    assert response.status_code == 302 and response["Location"] == "/"
    user = signed_in_as(client)
    assert user.email == "newcomer@acme.test" and user.name == "New Comer"
    assert not user.has_usable_password()
    assert not Membership.objects.filter(user=user).exists()
    identity = Identity.objects.get(user=user)
    assert identity.provider == "idp" and identity.email == "newcomer@acme.test"
    # The refresh token is kept, encrypted: the column holds no token the provider would take.
    assert identity.refresh_token and identity.refresh_token not in identity.refresh_token_encrypted


def test_a_verified_address_links_to_the_existing_account_and_grants_nothing(oidc, client, sign_in_via_idp,
                                                                          owner, team, outsider):
    oidc.person(outsider.email)
    before = set(Membership.objects.values_list("pk", "team_id", "role"))
    response, _ = sign_in_via_idp(client, outsider.email, next_url="/gallery/")
    assert response.status_code == 302 and response["Location"] == "/gallery/"
    assert signed_in_as(client) == outsider
    assert Identity.objects.get(provider="idp").user == outsider
    assert set(Membership.objects.values_list("pk", "team_id", "role")) == before  # not in Acme, no role change
    assert User.objects.filter(email=outsider.email).count() == 1
    # The second time it is the identity (its subject), not the address, that signs in.
    second, _ = sign_in_via_idp(Client(), outsider.email)
    assert second.status_code == 302 and Identity.objects.count() == 1


def test_an_unverified_address_is_explained_and_nothing_is_made_or_linked(oidc, client, sign_in_via_idp, owner):
    oidc.person(owner.email, email_verified=False)
    oidc.person("stranger@acme.test", email_verified=False)
    for email in (owner.email, "stranger@acme.test"):
        response, _ = sign_in_via_idp(client, email)
        assert response.status_code == 403
        assert b"Your e-mail address is not verified" in response.content
        assert f"does not say that {email} is verified".encode() in response.content
        assert signed_in_as(client) is None
    assert not Identity.objects.exists()
    assert not User.objects.filter(email="stranger@acme.test").exists()


def test_a_forged_state_is_refused(oidc, client):
    oidc.person("forged@acme.test")
    callback = authorize(idp_session(oidc, "forged@acme.test"), start(client))
    forged = callback.replace("state=", "state=x")
    response = client.get(local(forged))
    assert response.status_code == 400 and b"did not complete" in response.content
    assert signed_in_as(client) is None and not User.objects.filter(email="forged@acme.test").exists()
    # An attacker's browser handed someone's callback (state not in its session) gets nothing either.
    attacker = Client()
    assert attacker.get(local(callback)).status_code == 400
    assert signed_in_as(attacker) is None


def test_a_replayed_code_is_refused(oidc, client, caplog):
    oidc.person("replay@acme.test")
    http = idp_session(oidc, "replay@acme.test")
    callback = authorize(http, start(client))
    assert client.get(local(callback)).status_code == 302  # signed in once
    client.logout()
    # The same callback again: its state was spent.
    assert client.get(local(callback)).status_code == 400
    # The old code under a state this browser really holds: the provider refuses the used code.
    fresh = authorize(http, start(client))
    state = fresh.split("state=")[1].split("&")[0]
    old_code = callback.split("code=")[1].split("&")[0]
    replay = f"/accounts/oidc/idp/login/callback/?code={old_code}&state={state}"
    response = client.get(replay)
    assert response.status_code == 400 and signed_in_as(client) is None
    assert "invalid_grant" in caplog.text


@pytest.mark.parametrize(("how", "why"), [({"audience": "another-client"}, "InvalidAudienceError"),
                                          ({"expired": True}, "ExpiredSignatureError")], ids=["audience", "expired"])
def test_an_id_token_for_another_audience_or_expired_is_refused(oidc, client, sign_in_via_idp, caplog, how, why):
    oidc.person("token@acme.test")
    oidc.misbehave(**how)
    response, _ = sign_in_via_idp(client, "token@acme.test")
    assert response.status_code == 400 and b"did not complete" in response.content
    assert why in caplog.text  # refused for that reason, not another
    assert signed_in_as(client) is None
    assert not User.objects.filter(email="token@acme.test").exists()


def test_an_invitation_taken_after_signing_in_through_the_provider(oidc, client, sign_in_via_idp, owner, team):
    from accounts import invitations

    sent = invitations.invite(team, "invitee@acme.test", "member", actor=Membership.objects.get(user=owner))
    oidc.person("invitee@acme.test")
    link = sent.link.split("testserver", 1)[-1] if "testserver" in sent.link else "/" + sent.link.split("/", 3)[3]
    response, _ = sign_in_via_idp(client, "invitee@acme.test", next_url=link)
    assert response["Location"] == link
    page = client.get(link)
    assert b"Join Acme Studio" in page.content
    assert client.post(link).status_code == 302
    assert Membership.objects.get(team=team, user__email="invitee@acme.test").role == "member"


def test_a_provider_limited_to_domains_vouches_for_no_other(oidc, client, sign_in_via_idp, settings, outsider):
    from tests.accounts.oidc.conftest import kiln_config

    settings.KILN_OIDC_PROVIDERS = [kiln_config(oidc, domains=["acme.test"])]
    oidc.person(outsider.email)
    response, _ = sign_in_via_idp(client, outsider.email)
    assert response.status_code == 403 and b"may only sign in addresses at acme.test" in response.content
    assert not Identity.objects.exists()


def test_password_sign_in_still_works_beside_the_provider(oidc, client, owner):
    page = client.get("/accounts/login/")
    assert b"Sign in with Acme SSO" in page.content and b'name="password"' in page.content
    response = client.post("/accounts/login/", {"username": owner.email, "password": PASSWORD})
    assert response.status_code == 302 and signed_in_as(client) == owner


def test_provider_settings_errors_name_the_variable(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from project.env import envoidcproviders

    monkeypatch.setenv("KILN_OIDC_PROVIDERS", "okta")
    monkeypatch.setenv("KILN_OIDC_OKTA_ISSUER", "https://acme.okta.com/")
    with pytest.raises(ImproperlyConfigured, match="KILN_OIDC_OKTA_CLIENT_ID must be set"):
        envoidcproviders("KILN_OIDC_PROVIDERS")
    monkeypatch.setenv("KILN_OIDC_OKTA_CLIENT_ID", "0oa1")
    monkeypatch.setenv("KILN_OIDC_OKTA_CLIENT_SECRET", "s3cret")
    monkeypatch.setenv("KILN_OIDC_OKTA_SCOPES", "email profile")
    with pytest.raises(ImproperlyConfigured, match="KILN_OIDC_OKTA_SCOPES must include openid"):
        envoidcproviders("KILN_OIDC_PROVIDERS")
    monkeypatch.setenv("KILN_OIDC_OKTA_SCOPES", "openid email profile offline_access")
    monkeypatch.setenv("KILN_OIDC_OKTA_DOMAINS", "Acme.com, @acme.de")
    (okta,) = envoidcproviders("KILN_OIDC_PROVIDERS")
    assert okta["issuer"] == "https://acme.okta.com" and okta["label"] == "Okta"
    assert okta["domains"] == ["acme.com", "acme.de"] and "offline_access" in okta["scopes"]
    monkeypatch.setenv("KILN_OIDC_PROVIDERS", "Okta!")
    with pytest.raises(ImproperlyConfigured, match="KILN_OIDC_PROVIDERS"):
        envoidcproviders("KILN_OIDC_PROVIDERS")
