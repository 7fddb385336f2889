"""Access helpers: return the object or raise. Every team-scoped query goes through these."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from accounts.models import Membership

SESSION_KEY = "kiln_team"


def current_membership(request) -> Membership | None:
    user = request.user
    if not user.is_authenticated:
        return None
    # The user too: the views and services that take a membership read ``membership.user``
    # (the author of what they create), which was one more query per request.
    memberships = Membership.objects.active().select_related("team", "wallet", "user").filter(user=user)
    chosen = request.session.get(SESSION_KEY)
    if chosen:
        found = memberships.filter(team__public_id=chosen).first()
        if found:
            return found
    return memberships.order_by("team__name").first()


def require_membership(request) -> Membership:
    """The current membership, or 404 for a signed-in user with no team."""
    membership = request.membership
    if not membership:
        raise Http404("You are not a member of any team.")
    return membership


def require_manager(request) -> Membership:
    """The current membership if it is an owner or admin, else PermissionDenied."""
    membership = require_membership(request)
    if not membership.is_manager:
        raise PermissionDenied("Only team owners and admins can do this.")
    return membership
