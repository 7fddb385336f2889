"""Who an OpenID Connect sign-in is, and whether the provider still vouches for them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from allauth.socialaccount.internal import jwtkit
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.oidc.domains import apply_rules, domain_of, provider_config
from accounts.oidc.models import DomainJoin, Identity

log = logging.getLogger(__name__)

# A recheck that could not reach the provider is tried again this much later (the person keeps
# access meanwhile: an outage of the provider is not a refusal).
RETRY_SECONDS = 30
DISCOVERY_CACHE_SECONDS = 3600


class SignInRefused(Exception):
    """Why a provider's answer does not sign anyone in; ``code`` picks the explanation."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class Claims:
    provider: str
    subject: str
    email: str
    email_verified: bool
    name: str = ""
    refresh_token: str = ""


@dataclass
class SignedIn:
    user: User
    identity: Identity
    joins: list[DomainJoin] = field(default_factory=list)


def sign_in(claims: Claims) -> SignedIn:
    """The account ``claims`` sign in as, linking or creating it only for a verified address.

    A known identity (provider + subject) is its account. Otherwise the address must be one the
    provider asserts is verified (and, when the operator listed the provider's domains, at one of
    them); it links to the account with that address, unless that account is already linked to
    another person at this provider, or makes one without a team. Raises
    SignInRefused, having written nothing, for anything else."""
    config = provider_config(claims.provider)
    email = (claims.email or "").strip().lower()
    verified = bool(email) and claims.email_verified
    if verified and config["domains"] and domain_of(email) not in config["domains"]:
        raise SignInRefused("domain", f"{config['label']} may only sign in addresses at "
                                      f"{', '.join(config['domains'])}; it gave {email}.")
    with transaction.atomic():
        identity = (Identity.objects.select_for_update().select_related("user")
                    .filter(provider=claims.provider, subject=claims.subject).first())
        if identity is None:
            if not email:
                raise SignInRefused("no_email", f"{config['label']} did not tell Kiln your e-mail address.")
            if not verified:
                raise SignInRefused("unverified", f"{config['label']} does not say that {email} is verified.")
            user = User.objects.select_for_update().filter(email=email).first()
            if user is not None and Identity.objects.filter(user=user, provider=claims.provider).exists():
                # Another person at this provider (another subject) signs in as this account: the
                # company gave the address to someone new. Only an operator unlinks the old one.
                raise SignInRefused("linked", f"The Kiln account of {email} is already linked to someone else "
                                              f"at {config['label']}. If it is yours, ask this Kiln's operator "
                                              "to unlink it.")
            if user is None:
                user = User.objects.create_user(email, name=claims.name[:150])  # no usable password
            identity = Identity(user=user, provider=claims.provider, subject=claims.subject)
        user = identity.user
        if not user.is_active:
            raise SignInRefused("inactive", f"The Kiln account of {user.email} is disabled.")
        now = timezone.now()
        if verified:
            identity.email = email
        identity.last_login = identity.confirmed_at = now
        identity.lost_at, identity.lost_reason = None, ""
        if claims.refresh_token:
            identity.set_refresh_token(claims.refresh_token)
        identity.save()
        joins = apply_rules(user, claims.provider, email) if verified else []
    return SignedIn(user, identity, joins)


# -- the recheck -------------------------------------------------------------------------

@dataclass
class Recheck:
    """``problem``: why the account may not go on (None: it may); ``fresh_since``: the oldest
    moment a provider vouched for it, so the caller knows when to ask again."""

    problem: str | None
    fresh_since: datetime


def _discovery(issuer: str) -> dict:
    key = f"kiln-oidc-discovery:{issuer}"
    config = cache.get(key)
    if config is None:
        response = httpx.get(f"{issuer}/.well-known/openid-configuration",
                             timeout=settings.KILN_OIDC_TIMEOUT_SECONDS)
        response.raise_for_status()
        config = response.json()
        cache.set(key, config, DISCOVERY_CACHE_SECONDS)
    return config


def _refresh(identity: Identity, config: dict) -> tuple[bool, str]:
    """Ask the provider for fresh tokens. (True, "") when it vouches; (False, why) when it
    refuses; raises httpx.HTTPError (or OSError) when it cannot be asked."""
    discovery = _discovery(config["issuer"])
    data = {"grant_type": "refresh_token", "refresh_token": identity.refresh_token,
            "client_id": config["client_id"]}
    methods = discovery.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
    auth = None
    if "client_secret_post" in methods or "client_secret_basic" not in methods:
        data["client_secret"] = config["secret"]
    else:
        auth = (config["client_id"], config["secret"])
    response = httpx.post(discovery["token_endpoint"], data=data, auth=auth,
                          timeout=settings.KILN_OIDC_TIMEOUT_SECONDS)
    if response.status_code >= 500:
        response.raise_for_status()
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or "access_token" not in body:
        return False, str(body.get("error_description") or body.get("error") or f"HTTP {response.status_code}")
    if body.get("id_token"):
        try:
            claims = jwtkit.verify_and_decode(credential=body["id_token"], keys_url=discovery["jwks_uri"],
                                              issuer=discovery["issuer"], audience=config["client_id"],
                                              lookup_kid=jwtkit.lookup_kid_jwk)
        except OAuth2Error as exc:
            return False, f"its new ID token was not valid ({exc})"
        if claims.get("sub") != identity.subject:
            return False, "its new ID token names someone else"
    if body.get("refresh_token"):  # providers that rotate them send a new one each time
        identity.set_refresh_token(body["refresh_token"])
    return True, ""


def _lost(identity: Identity, reason: str) -> str:
    Identity.objects.filter(pk=identity.pk, lost_at__isnull=True).update(lost_at=timezone.now(),
                                                                        lost_reason=reason[:200])
    log.info("Sign-in of %s through %s refused at recheck: %s", identity.user_id, identity.provider, reason)
    return lost_message(identity.provider)


def lost_message(provider_id: str) -> str:
    config = provider_config(provider_id)
    label = config["label"] if config else provider_id
    return (f"{label} no longer accepts your sign-in, so you have been signed out of Kiln. "
            f"If that is a mistake, sign in through {label} again.")


def recheck(user: User) -> Recheck:
    """Whether each provider ``user`` signed in through still vouches for them.

    An identity confirmed within ``KILN_OIDC_RECHECK_SECONDS`` is taken as it is. An older one
    is refreshed at its provider (one request claims it, by a compare-and-swap on
    ``confirmed_at``, so concurrent requests do not spend a rotating refresh token twice):
    refused, it is recorded as lost; unreachable, it is tried again ``RETRY_SECONDS`` later.
    Without a refresh token Kiln cannot ask, and the person must sign in again."""
    now = timezone.now()
    bound = timedelta(seconds=settings.KILN_OIDC_RECHECK_SECONDS)
    fresh_since = now
    for identity in Identity.objects.filter(user=user).select_related("user"):
        config = provider_config(identity.provider)
        if config is None:
            continue  # a provider the operator removed: nobody can sign in through it any more
        if identity.lost_at is not None:
            return Recheck(lost_message(identity.provider), now)
        if now - identity.confirmed_at < bound:
            fresh_since = min(fresh_since, identity.confirmed_at)
            continue
        if not identity.refresh_token_encrypted:
            return Recheck(f"Please sign in through {config['label']} again: Kiln confirms your sign-in "
                           f"with it every {settings.KILN_OIDC_RECHECK_SECONDS // 60} minutes.", now)
        in_flight = now - bound + timedelta(seconds=RETRY_SECONDS)
        if not Identity.objects.filter(pk=identity.pk, confirmed_at=identity.confirmed_at,
                                       lost_at__isnull=True).update(confirmed_at=in_flight):
            # Another request is asking right now: until it answers the old word holds, and this
            # session asks again as soon as that answer is due (not a whole bound later).
            fresh_since = min(fresh_since, in_flight)
            continue
        try:
            vouched, reason = _refresh(identity, config)
        except (httpx.HTTPError, OSError, ValueError, KeyError) as exc:
            log.warning("Could not recheck %s's sign-in through %s (tried again in %s s): %s",
                        identity.user_id, identity.provider, RETRY_SECONDS, exc)
            fresh_since = min(fresh_since, in_flight)
            continue
        if not vouched:
            return Recheck(_lost(identity, reason), now)
        Identity.objects.filter(pk=identity.pk).update(confirmed_at=timezone.now(),
                                                       refresh_token_encrypted=identity.refresh_token_encrypted)
    return Recheck(None, fresh_since)


def access_lost(user: User) -> bool:
    """Whether a provider refused ``user`` at a recheck: their password no longer signs them in
    either, until they sign in through that provider again."""
    configured = [p["id"] for p in settings.KILN_OIDC_PROVIDERS]
    return Identity.objects.filter(user=user, provider__in=configured, lost_at__isnull=False).exists()
