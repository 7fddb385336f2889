"""The allauth adapter: where a finished OpenID Connect exchange hands over to Kiln.

allauth calls ``pre_social_login`` once the code is exchanged and the ID token verified; Kiln
checks the nonce, decides who this is (``services.sign_in``) and signs them in itself, so
allauth's own account creation, linking and pages are never reached. Every failure of the
protocol (a forged or reused state, a code refused by the provider, an ID token for another
audience or expired) lands in ``on_authentication_error``: one Kiln page, nothing created."""

from __future__ import annotations

import logging

from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.oidc import services
from accounts.oidc.domains import provider_config
from accounts.oidc.provider import NONCE_KEY
from accounts.teams import SESSION_KEY

log = logging.getLogger(__name__)

SESSION_IDENTITY = "kiln_oidc_identity"
SESSION_CHECKED = "kiln_oidc_checked"


def problem_page(request, provider_id: str, code: str, message: str, status: int = 403):
    config = provider_config(provider_id) if provider_id else None
    return render(request, "accounts/oidc/problem.html", {
        "code": code, "message": message, "provider_label": config["label"] if config else "the provider",
    }, status=status)


def _safe_next(request, next_url: str | None) -> str:
    if next_url and next_url.startswith("/") and url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return next_url
    return settings.LOGIN_REDIRECT_URL


def claims_of(sociallogin) -> services.Claims:
    account = sociallogin.account
    addresses = sociallogin.email_addresses or []
    id_token = account.extra_data.get("id_token") or {}
    userinfo = account.extra_data.get("userinfo") or {}
    data = userinfo or id_token
    verified = bool(addresses and addresses[0].verified)
    if addresses and "email_verified" not in id_token and "email_verified" not in userinfo:
        # Microsoft Entra never sends email_verified for work accounts; its optional claim
        # xms_edov (the address's domain is verified by the tenant) is what it offers instead.
        verified = id_token.get("xms_edov") is True
    return services.Claims(
        provider=account.provider, subject=account.uid,
        email=addresses[0].email if addresses else "",
        email_verified=verified,
        name=str(data.get("name") or ""),
        refresh_token=getattr(sociallogin.token, "token_secret", "") or "",
    )


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def pre_social_login(self, request, sociallogin):
        provider_id = sociallogin.account.provider
        id_token = sociallogin.account.extra_data.get("id_token") or {}
        expected = (sociallogin.state or {}).get(NONCE_KEY)
        if not expected or id_token.get("nonce") != expected:
            log.warning("OpenID Connect sign-in through %s refused: the ID token's nonce does not match",
                        provider_id)
            raise ImmediateHttpResponse(problem_page(
                request, provider_id, "nonce", "The answer from the provider was not for this sign-in.", 400))
        try:
            signed_in = services.sign_in(claims_of(sociallogin))
        except services.SignInRefused as exc:
            raise ImmediateHttpResponse(problem_page(request, provider_id, exc.code, str(exc))) from None
        login(request, signed_in.user, backend="django.contrib.auth.backends.ModelBackend")
        request.session[SESSION_IDENTITY] = signed_in.identity.pk
        request.session[SESSION_CHECKED] = signed_in.identity.confirmed_at.timestamp()
        for join in signed_in.joins:
            request.session[SESSION_KEY] = str(join.team.public_id)
            messages.success(request, f"Welcome to {join.team.name}: you joined as {join.get_role_display().lower()}, "
                                      f"as its rule for @{join.rule.domain} addresses allows.")
        raise ImmediateHttpResponse(redirect(_safe_next(request, sociallogin.state.get("next"))))

    def on_authentication_error(self, request, provider, error=None, exception=None, extra_context=None):
        provider_id = getattr(getattr(provider, "app", None), "provider_id", "")
        cause = getattr(exception, "__cause__", None)
        log.warning("OpenID Connect sign-in through %s failed: %s %s%s", provider_id, error, exception or "",
                    f" ({cause.__class__.__name__}: {cause})" if cause else "")
        if error == "cancelled":
            message = "The sign-in was cancelled at the provider."
        else:
            message = ("The sign-in could not be completed: the provider's answer was not valid for this "
                       "sign-in (it may have expired, or been used already). Please start again.")
        raise ImmediateHttpResponse(problem_page(request, provider_id, str(error or "error"), message, 400))

    def is_open_for_signup(self, request, sociallogin):
        return False  # accounts are made by services.sign_in, never by allauth's signup

    def list_apps(self, request, provider=None, client_id=None):
        """Only the providers from the environment: a SocialApp row (allauth's own way to add
        one) is not a provider of Kiln's."""
        configured = {p["id"] for p in settings.KILN_OIDC_PROVIDERS}
        return [app for app in super().list_apps(request, provider=provider, client_id=client_id)
                if app.provider_id in configured and not app.pk]
