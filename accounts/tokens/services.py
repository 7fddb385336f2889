"""Making, finding and revoking personal access tokens.

A token is ``kiln_pat_`` followed by ``secrets.token_urlsafe(32)`` (256 bits). The fixed
prefix lets secret scanners recognise a leaked one. Only its SHA-256 is stored and a
presented token is found by that hash, so a database dump holds no working token.

A token acts as its member: each request reads the membership afresh, so removing the
member, or a token whose scopes their role no longer allows, takes effect at once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from accounts.models import Membership
from accounts.tokens.models import AccessToken, Scope

PREFIX = "kiln_pat_"
NAME_MAX_LENGTH = 100
_SHAPE = re.compile(r"^kiln_pat_[A-Za-z0-9_-]{43}$")
# last_used_at is written at most once a minute per token: one UPDATE per request would
# make every API call a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenError(ValueError):
    """A token cannot be made as asked; ``str(exc)`` says why."""


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(membership: Membership, name: str, scopes, *, expires_at: datetime | None = None
                 ) -> tuple[AccessToken, str]:
    """Make a token for ``membership``; returns it and its secret, which is not stored."""
    name = (name or "").strip()
    if not name:
        raise TokenError("Give the token a name, so you can tell it apart later.")
    if len(name) > NAME_MAX_LENGTH:
        raise TokenError(f"A token's name is at most {NAME_MAX_LENGTH} characters.")
    scopes = sorted(set(scopes or ()))
    unknown = [s for s in scopes if s not in Scope.values]
    if unknown:
        raise TokenError(f"Unknown scope “{unknown[0]}”; the scopes are {', '.join(Scope.values)}.")
    if not scopes:
        raise TokenError("Choose at least one scope.")
    if expires_at is not None and expires_at <= timezone.now():
        raise TokenError("The expiry date is in the past.")
    if membership.removed_at is not None:
        raise TokenError("You are no longer a member of this team.")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = AccessToken.objects.create(membership=membership, name=name, scopes=scopes,
                                       prefix=secret[:16], token_hash=hash_token(secret), expires_at=expires_at)
    return token, secret


def find_token(secret: str) -> AccessToken | None:
    """The live token with this secret whose member is still in the team, else None."""
    if not secret or not _SHAPE.match(secret):
        return None
    now = timezone.now()
    token = (AccessToken.objects.select_related("membership__team", "membership__user", "membership__wallet")
             .filter(token_hash=hash_token(secret), revoked_at__isnull=True, membership__removed_at__isnull=True,
                     membership__user__is_active=True)
             .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)).first())
    if token is None:
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        # Conditional, so concurrent requests within the minute write once between them.
        (AccessToken.objects.filter(pk=token.pk)
         .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION))
         .update(last_used_at=now))
        token.last_used_at = now
    return token


def tokens_of(membership: Membership):
    """The member's own tokens in this team, newest first (revoked ones included)."""
    return AccessToken.objects.filter(membership=membership).select_related("revoked_by")


def team_tokens(team):
    """Every token of the team's current members, for its owners and admins."""
    return (AccessToken.objects.filter(membership__team=team, membership__removed_at__isnull=True)
            .select_related("membership__user", "revoked_by"))


def revoke_token(token: AccessToken, *, actor: Membership) -> bool:
    """Revoke ``token``: its owner may, and so may the team's owners and admins.

    Returns False when it was already revoked. Raises PermissionError for anyone else.
    """
    mine = token.membership_id == actor.pk
    if not mine and not (actor.is_manager and token.membership.team_id == actor.team_id):
        raise PermissionError("Only the token's owner or a team admin can revoke it.")
    return bool(AccessToken.objects.filter(pk=token.pk, revoked_at__isnull=True)
                .update(revoked_at=timezone.now(), revoked_by=actor.user))


def revoke_member_tokens(membership: Membership, *, by=None) -> int:
    """Revoke every live token of a member leaving the team (``accounts.services.remove_member``),
    so that adding them again later does not bring old tokens back. Returns how many."""
    return (AccessToken.objects.filter(membership=membership, revoked_at__isnull=True)
            .update(revoked_at=timezone.now(), revoked_by=by))
