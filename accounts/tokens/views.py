"""API tokens: a member's own tokens in the current team (make, see once, revoke), and the
team's tokens for its owners and admins (the Team → API tokens tab, revoke any).

Every lookup is filtered by the current membership or team, so another team's token is a
404; a member on the team tab is a 403. The page that shows a new secret says ``no-store``.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Case, IntegerField, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.mail import site_url
from accounts.models import Membership
from accounts.teams import require_manager, require_membership
from accounts.tokens import services
from accounts.tokens.forms import TokenForm
from accounts.tokens.models import Scope
from project.cache_headers import shows_a_secret_once

API_ROOT = "/api/v1/"


def _minute_ago():
    """Last used after this reads "just now" (last use is recorded to the minute)."""
    return timezone.now() - services.LAST_USED_RESOLUTION


def _scope_options(form: TokenForm) -> list[dict]:
    """Each scope's checkbox: its value, its name and what it allows (from ``Scope``'s label)."""
    chosen = set(form["scopes"].value() or ())
    options = []
    for value, label in Scope.choices:
        title, _, description = label.partition(": ")
        options.append({"value": value, "title": title, "description": description, "checked": value in chosen})
    return options


@require_http_methods(["GET", "POST"])
@login_required
@shows_a_secret_once
def tokens(request: HttpRequest) -> HttpResponse:
    membership: Membership = require_membership(request)
    form = TokenForm(request.POST if request.method == "POST" else None)
    created = secret = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                created, secret = services.create_token(membership, data["name"], data["scopes"],
                                                        expires_at=data["expires_at"])
            except services.TokenError as exc:
                form.add_error(None, str(exc))
                status = 400
            else:
                form = TokenForm()
        else:
            status = 400
    return render(request, "accounts/tokens/tokens.html", {
        "tokens": services.tokens_of(membership),
        "form": form,
        "scope_options": _scope_options(form),
        "created": created,
        "secret": secret,
        "api_url": site_url(request) + API_ROOT,
        "minute_ago": _minute_ago(),
    }, status=status)


@require_POST
@login_required
def revoke(request: HttpRequest, pk: int) -> HttpResponse:
    membership = require_membership(request)
    token = get_object_or_404(services.tokens_of(membership), pk=pk)
    if services.revoke_token(token, actor=membership):
        messages.success(request, f"Revoked “{token.name}”: it no longer works.")
    else:
        messages.info(request, f"“{token.name}” was already revoked.")
    return redirect("accounts:tokens")


def _team_tokens(membership: Membership):
    live_first = Case(When(revoked_at__isnull=True, then=Value(0)), default=Value(1), output_field=IntegerField())
    return (services.team_tokens(membership.team).annotate(live_first=live_first)
            .order_by("membership__user__email", "live_first", "-created"))


@require_GET
@login_required
def team_tokens(request: HttpRequest) -> HttpResponse:
    membership = require_manager(request)
    return render(request, "accounts/tokens/team_tokens.html", {"tokens": _team_tokens(membership),
                                                                "minute_ago": _minute_ago()})


@require_POST
@login_required
def team_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    membership = require_manager(request)
    token = get_object_or_404(services.team_tokens(membership.team), pk=pk)
    owner = token.membership.user.email
    if services.revoke_token(token, actor=membership):
        messages.success(request, f"Revoked {owner}'s token “{token.name}”: it no longer works.")
    else:
        messages.info(request, f"{owner}'s token “{token.name}” was already revoked.")
    return redirect("accounts:team_tokens")


urlpatterns = [
    path("tokens/", tokens, name="tokens"),
    path("tokens/<int:pk>/revoke/", revoke, name="token_revoke"),
    path("team/tokens/", team_tokens, name="team_tokens"),
    path("team/tokens/<int:pk>/revoke/", team_revoke, name="team_token_revoke"),
]
