"""Ends the session of someone their provider no longer vouches for (``services.recheck``)."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from accounts.oidc import breakglass, services
from accounts.oidc.adapter import SESSION_CHECKED


class ProviderRecheckMiddleware:
    """Once per ``KILN_OIDC_RECHECK_SECONDS`` per session, asks whether the signed-in account's
    providers still vouch for it (within the bound, no query at all). A refusal signs the
    person out, with a message on the sign-in page (an htmx request is told to go there). A
    break-glass session is not asked about (``breakglass.py``)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated and not request.session.get(breakglass.SESSION_KEY):
            checked = request.session.get(SESSION_CHECKED)
            if checked is None or time.time() - checked >= settings.KILN_OIDC_RECHECK_SECONDS:
                result = services.recheck(user)
                if result.problem:
                    logout(request)
                    messages.warning(request, result.problem)
                    login_url = reverse("accounts:login")
                    if request.headers.get("HX-Request"):
                        return HttpResponse(status=204, headers={"HX-Redirect": login_url})
                    return redirect(login_url)
                request.session[SESSION_CHECKED] = result.fresh_since.timestamp()
        return self.get_response(request)
