"""Who is calling: a personal access token in ``Authorization: Bearer``, and nothing else.

``TokenAuth`` finds the token (``accounts.tokens.services.find_token``: live, and its member
still in the team) and makes the request act as that member: ``request.user`` and
``request.membership`` are the token's, read afresh on every request, so removing a member
or revoking a token takes effect at once. ``request.auth`` is the token.

A member who signed in through an identity provider is re-checked as a session is
(``accounts.oidc.services.recheck``: past ``KILN_OIDC_RECHECK_SECONDS`` the provider is asked
again): a provider that refused them makes every token of theirs answer 401 ``access-lost``.

A session cookie never authenticates the API; that is why CSRF does not apply to it (an
attacker's page cannot make a browser send a bearer token).

Each token may make ``KILN_API_REQUESTS_PER_MINUTE`` requests a minute (429 with
``Retry-After`` beyond). ``require_scope`` refuses a token without the scope an endpoint
needs (403), and ``require_manager`` a member who is not an owner or admin (403).
"""

from __future__ import annotations

from django.conf import settings
from ninja.security import HttpBearer

from accounts.oidc.services import recheck
from accounts.tokens.models import AccessToken
from accounts.tokens.services import find_token
from generations.api.problems import ApiProblem
from project import ratelimit


class TokenAuth(HttpBearer):
    openapi_scheme = "bearer"

    def authenticate(self, request, token: str) -> AccessToken | None:
        found = find_token(token.strip())
        if found is None:
            return None
        decision = ratelimit.hit("api-token", str(found.pk), limit=settings.KILN_API_REQUESTS_PER_MINUTE)
        if not decision.allowed:
            raise ApiProblem(429, f"This token made more than {decision.limit} requests this minute; "
                                  f"try again in {decision.retry_after} s.", slug="rate-limited",
                             headers={"Retry-After": str(decision.retry_after)})
        check = recheck(found.membership.user)
        if check.problem:
            raise ApiProblem(401, f"This token's member lost access: {check.problem}", slug="access-lost")
        request.user = found.membership.user
        request.membership = found.membership
        return found


def require_scope(request, scope: str) -> None:
    token: AccessToken = request.auth
    if scope not in token.scopes:
        raise ApiProblem(403, f"This token does not have the “{scope}” scope; its scopes are: "
                              f"{token.get_scopes_display()}.", slug="missing-scope")


def require_manager(request) -> None:
    if not request.membership.is_manager:
        raise ApiProblem(403, "Only the team's owners and admins can do this.", slug="not-allowed")
