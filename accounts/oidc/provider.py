"""allauth's OpenID Connect provider with what Kiln requires of it on top.

- A **nonce** in every authorization request, kept in allauth's state (the session) and
  compared with the ID token's ``nonce`` in ``services.sign_in``: an ID token minted for another
  sign-in attempt is refused. allauth's provider sends none.
- The ID token's **signature** is always checked against the provider's JWKS. allauth skips it
  when the token came straight from the token endpoint (which OpenID Connect allows over TLS);
  checking costs one cached request and also covers a provider on plain http in tests.
- Issuer, audience (our client id) and expiry are checked by allauth (``jwtkit``), PKCE (S256)
  and ``state`` by its OAuth2 views.
"""

from __future__ import annotations

import secrets

from allauth.socialaccount.internal import jwtkit
from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView, OAuth2LoginView
from allauth.socialaccount.providers.openid_connect.provider import OpenIDConnectProvider
from allauth.socialaccount.providers.openid_connect.views import OpenIDConnectOAuth2Adapter
from django.http import Http404, HttpRequest
from django.urls import path
from django.views.decorators.http import require_POST

NONCE_KEY = "kiln_nonce"


class KilnOIDCAdapter(OpenIDConnectOAuth2Adapter):
    def _decode_id_token(self, app: SocialApp, id_token: str) -> dict:
        return jwtkit.verify_and_decode(
            credential=id_token, keys_url=self.openid_config["jwks_uri"], issuer=self.openid_config["issuer"],
            audience=app.client_id, lookup_kid=jwtkit.lookup_kid_jwk, verify_signature=True)


class KilnOIDCProvider(OpenIDConnectProvider):
    oauth2_adapter_class = KilnOIDCAdapter

    def get_redirect_from_request_kwargs(self, request: HttpRequest) -> dict:
        """Only ``next`` comes from the request: the scopes and parameters are the operator's
        (allauth would add ``?scope=`` and ``?auth_params=`` from the URL), and the process is
        always a sign-in."""
        kwargs = super().get_redirect_from_request_kwargs(request)
        kwargs.update(scope=self.get_scope(), auth_params=self.get_auth_params(), process="login")
        return kwargs

    def redirect(self, request: HttpRequest, process, next_url=None, data=None, **kwargs):
        nonce = secrets.token_urlsafe(32)
        auth_params = kwargs.pop("auth_params", None)
        if auth_params is None:
            auth_params = self.get_auth_params()
        auth_params["nonce"] = nonce
        # Extra keyword arguments are kept in the state allauth stashes in the session.
        return super().redirect(request, process, next_url, data, auth_params=auth_params,
                                **{NONCE_KEY: nonce}, **kwargs)


def _adapter_view(view_class):
    def view(request: HttpRequest, provider_id: str):
        try:
            return view_class.adapter_view(KilnOIDCAdapter(request, provider_id))(request)
        except SocialApp.DoesNotExist:
            raise Http404("No such sign-in provider.") from None

    return view


# Starting a sign-in is a POST (the login page's buttons, with the CSRF token): a link or an
# image on another site cannot start one.
login = require_POST(_adapter_view(OAuth2LoginView))
callback = _adapter_view(OAuth2CallbackView)

# Named as allauth names them: its provider reverses these to build the redirect URI.
urlpatterns = [
    path("<str:provider_id>/login/", login, name="openid_connect_login"),
    path("<str:provider_id>/login/callback/", callback, name="openid_connect_callback"),
]
