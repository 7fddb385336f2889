"""A real OpenID Connect provider (tests/oidc_provider: django-oauth-toolkit under gunicorn, on
loopback) and Kiln configured to sign in through it as provider ``idp``.

``sign_in_via_idp(client, email)`` walks the whole authorization code flow: Kiln's button (a
POST), the provider's own login form and authorize endpoint over real HTTP, then the provider's
redirect back into Kiln's callback; it returns Kiln's answer and the callback URL it was given."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest
from django.core.cache import cache

from accounts.oidc.config import socialaccount_providers
from tests.oidc_provider.server import OIDCProvider

CLIENT_ID, CLIENT_SECRET = "kiln-test", "kiln-test-secret-" + "s" * 30
IDP_PASSWORD = "idp-password-1"


@pytest.fixture(scope="session")
def idp(tmp_path_factory):
    provider = OIDCProvider(tmp_path_factory.mktemp("oidc-provider")).start()
    provider.client(CLIENT_ID, CLIENT_SECRET, ["http://testserver/accounts/oidc/idp/login/callback/"])
    yield provider
    provider.stop()


def kiln_config(idp: OIDCProvider, **extra) -> dict:
    return {"id": "idp", "label": "Acme SSO", "issuer": idp.issuer, "client_id": CLIENT_ID, "secret": CLIENT_SECRET,
            "scopes": ["openid", "email", "profile"], "auth_params": {}, "domains": [], **extra}


@pytest.fixture
def oidc(idp, settings):
    """Kiln with the test provider configured; the provider behaves (no misbehaviour) at the start."""
    config = kiln_config(idp)
    settings.KILN_OIDC_PROVIDERS = [config]
    settings.SOCIALACCOUNT_PROVIDERS = socialaccount_providers([config])
    idp.misbehave()
    cache.clear()
    return idp


def idp_session(idp: OIDCProvider, email: str, password: str = IDP_PASSWORD) -> httpx.Client:
    """A browser's session at the provider, signed in through its login form."""
    http = httpx.Client(base_url=idp.url, timeout=20)
    page = http.get("/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = http.post("/login/", data={"csrfmiddlewaretoken": token, "username": email, "password": password,
                                        "next": "/"})
    assert answer.status_code == 302, f"the provider refused {email}'s password"
    return http


def start(client, next_url: str = "") -> str:
    """Press Kiln's button: the provider's authorize URL Kiln redirects to."""
    response = client.post("/accounts/oidc/idp/login/", {"next": next_url} if next_url else {})
    assert response.status_code == 302, response.content[:500]
    assert response["Location"].startswith("http://127.0.0.1:")
    return response["Location"]


def authorize(http: httpx.Client, authorize_url: str) -> str:
    """The provider's answer to an authorize URL: the callback URL (with code and state) it redirects to."""
    answer = http.get(authorize_url)
    assert answer.status_code == 302, answer.text[:500]
    assert answer.headers["location"].startswith("http://testserver/"), answer.headers["location"]
    return answer.headers["location"]


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


@pytest.fixture
def sign_in_via_idp(oidc):
    def run(client, email: str, password: str = IDP_PASSWORD, next_url: str = ""):
        http = idp_session(oidc, email, password)
        callback = authorize(http, start(client, next_url))
        return client.get(local(callback)), callback

    return run
