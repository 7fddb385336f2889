"""A sign-in is as fresh as a provider's word gets: no recheck on the session's first request."""

from __future__ import annotations

import time

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from accounts.oidc.adapter import SESSION_CHECKED
from accounts.oidc.models import Identity


@receiver(user_logged_in, dispatch_uid="kiln_oidc_fresh_sign_in")
def fresh_sign_in(sender, request, user, **kwargs):
    """Someone with no provider identity has nothing to recheck: mark the new session checked, so
    its first request does not ask (a query and a session write on every first page). Someone
    with one keeps the check: signed in through the provider, the adapter has marked it; signed in
    with a password, the first request asks the provider, as it would for an old session."""
    session = getattr(request, "session", None)
    if session is not None and SESSION_CHECKED not in session and not Identity.objects.filter(user=user).exists():
        session[SESSION_CHECKED] = time.time()
