"""The team's sign-in rules page (Team → Sign-in), and the break-glass link's page."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Role
from accounts.oidc import breakglass, domains
from accounts.oidc.forms import DomainRuleForm
from accounts.oidc.models import DomainJoin, DomainRule, Identity
from accounts.services import MembershipError
from accounts.teams import require_manager

RECENT_JOINS = 50


def _render_rules(request, membership, form=None, status=200) -> HttpResponse:
    providers = settings.KILN_OIDC_PROVIDERS
    return render(request, "accounts/oidc/rules.html", {
        "rules": DomainRule.objects.filter(team_id=membership.team_id).select_related("created_by"),
        "joins": DomainJoin.objects.filter(team_id=membership.team_id).select_related("membership__user")[:RECENT_JOINS],
        "form": form or DomainRuleForm(providers=providers),
        "providers": {p["id"]: p["label"] for p in providers},
        "is_owner": membership.role == Role.OWNER,
        "my_identities": Identity.objects.filter(user=request.user, lost_at__isnull=True),
    }, status=status)


@require_GET
@login_required
def rules(request: HttpRequest) -> HttpResponse:
    return _render_rules(request, require_manager(request))


def _require_owner(request):
    membership = require_manager(request)
    if membership.role != Role.OWNER:
        raise PermissionDenied("Only the team's owners can change its sign-in rules.")
    return membership


@require_POST
@login_required
def rule_add(request: HttpRequest) -> HttpResponse:
    membership = _require_owner(request)
    form = DomainRuleForm(request.POST, providers=settings.KILN_OIDC_PROVIDERS)
    if not form.is_valid():
        return _render_rules(request, membership, form, status=400)
    try:
        data = form.cleaned_data
        rule = domains.create_rule(membership, data["provider"], data["domain"], data["role"])
    except MembershipError as exc:
        form.add_error(None, str(exc))
        return _render_rules(request, membership, form, status=400)
    messages.success(request, f"The rule for @{rule.domain} is saved, and off: turn it on when you are ready.")
    return redirect("accounts:signin_rules")


def _rule(membership, public_id) -> DomainRule:
    return get_object_or_404(DomainRule, team_id=membership.team_id, public_id=public_id)


@require_POST
@login_required
def rule_toggle(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = _require_owner(request)
    rule = _rule(membership, public_id)
    rule.enabled = request.POST.get("enabled") == "1"
    rule.save(update_fields=["enabled"])
    state = "on: people at it who sign in join the team" if rule.enabled else "off"
    messages.success(request, f"The rule for @{rule.domain} is {state}.")
    return redirect("accounts:signin_rules")


@require_POST
@login_required
def rule_delete(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = _require_owner(request)
    rule = _rule(membership, public_id)
    rule.delete()
    messages.success(request, f"The rule for @{rule.domain} is deleted; those who joined through it stay members.")
    return redirect("accounts:signin_rules")


@never_cache
@require_http_methods(["GET", "POST"])
def breakglass_signin(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button (a link previewer must not spend the link); POST signs in."""
    user = breakglass.check_token(token)
    if user is None:
        raise Http404("This sign-in link is not valid: it works once, for 10 minutes.")
    if request.method == "POST":
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        request.session[breakglass.SESSION_KEY] = True
        messages.warning(request, "Signed in with a break-glass link. Fix the sign-in provider, then sign out.")
        return redirect(reverse("admin:index"))
    return render(request, "accounts/oidc/breakglass.html", {"target": user})


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's own password form, unless password sign-in is off: then Kiln's page."""
    if settings.KILN_PASSWORD_LOGIN:
        return admin.site.login(request)
    return redirect(f"{reverse('accounts:login')}?next={request.GET.get('next', reverse('admin:index'))}")


urlpatterns = [
    path("team/sign-in/", rules, name="signin_rules"),
    path("team/sign-in/add/", rule_add, name="signin_rule_add"),
    path("team/sign-in/<uuid:public_id>/toggle/", rule_toggle, name="signin_rule_toggle"),
    path("team/sign-in/<uuid:public_id>/delete/", rule_delete, name="signin_rule_delete"),
    path("break-glass/<str:token>/", breakglass_signin, name="breakglass"),
]
