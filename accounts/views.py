"""Sign in and out, passwords, the team switcher and the team's members page."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.messages.views import SuccessMessageMixin
from django.db.models import Case, IntegerField, Value, When
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import Resolver404, path, resolve, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts import services
from accounts.forms import AddMemberForm, RoleForm, SignInForm
from accounts.models import Membership, Role
from accounts.teams import SESSION_KEY, require_manager, require_membership
from project.cache_headers import shows_a_secret_once


class SignInView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True


class PasswordChangeView(SuccessMessageMixin, auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:password_change")
    success_message = "Your password has been changed."


class SetPasswordView(SuccessMessageMixin, auth_views.PasswordResetConfirmView):
    """The one-time link a new member gets: Django's reset-token view, so the link
    stops working once the password is set."""

    template_name = "accounts/set_password.html"
    success_url = reverse_lazy("accounts:login")
    success_message = "Your password is set. Sign in with your e-mail address and the new password."


def _team_neutral(path_: str) -> str:
    """``path_`` if it names no particular object (those belong to the team being left), else "/"."""
    try:
        match = resolve(path_)
    except Resolver404:
        return "/"
    return "/" if match.kwargs else path_


@require_POST
@login_required
def switch_team(request: HttpRequest) -> HttpResponse:
    try:
        team_id = uuid.UUID(request.POST.get("team", ""))
    except ValueError:
        return HttpResponseBadRequest("Choose a team.")
    membership = get_object_or_404(Membership.objects.active().select_related("team"),
                                   user=request.user, team__public_id=team_id)
    request.session[SESSION_KEY] = str(membership.team.public_id)
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()) or not next_url.startswith("/"):
        next_url = "/"
    return redirect(_team_neutral(next_url.split("?", 1)[0]))


def _members(membership: Membership):
    role_order = Case(When(role=Role.OWNER, then=Value(0)), When(role=Role.ADMIN, then=Value(1)),
                      default=Value(2), output_field=IntegerField())
    return (Membership.objects.active().filter(team_id=membership.team_id).select_related("user")
            .annotate(role_order=role_order).order_by("role_order", "user__email"))


def _render_members(request, membership: Membership, *, form=None, added=None, status=200) -> HttpResponse:
    return render(request, "accounts/team.html", {
        "members": _members(membership),
        "form": form or AddMemberForm(),
        "added": added,
        "invite_url": request.build_absolute_uri(added.set_password_path) if added else "",
        "roles": Role.choices,
        "is_owner": membership.role == Role.OWNER,
    }, status=status)


@require_GET
@login_required
def members(request: HttpRequest) -> HttpResponse:
    return _render_members(request, require_membership(request))


@require_POST
@login_required
@shows_a_secret_once  # the set-password link
def member_add(request: HttpRequest) -> HttpResponse:
    membership = require_manager(request)
    form = AddMemberForm(request.POST)
    if not form.is_valid():
        return _render_members(request, membership, form=form, status=400)
    try:
        added = services.add_member(membership.team, form.cleaned_data["email"], form.cleaned_data["role"],
                                    actor=membership)
    except services.MembershipError as exc:
        form.add_error(None, str(exc))
        return _render_members(request, membership, form=form, status=400)
    messages.success(request, f"{added.membership.user.email} is now {_a(added.membership.get_role_display())} "
                              f"of {membership.team.name}.")
    if added.set_password_path:
        # Shown once, on this response only: the admin passes it on to the new member.
        return _render_members(request, membership, added=added)
    if not added.membership.user.has_usable_password():
        messages.info(request, "They have not chosen a password yet. The link to choose one went to whoever "
                               "invited them first; an operator can also set one (manage.py changepassword).")
    return redirect("accounts:members")


def _a(role_label: str) -> str:
    """ "an admin", "a member", "an owner"."""
    word = role_label.lower()
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def _target(membership: Membership, public_id) -> Membership:
    return get_object_or_404(Membership.objects.active().select_related("user", "team"),
                             team_id=membership.team_id, public_id=public_id)


@require_POST
@login_required
def member_role(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_manager(request)
    target = _target(membership, public_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("Choose a role: owner, admin or member.")
    try:
        services.change_role(target, form.cleaned_data["role"], actor=membership)
    except services.MembershipError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{target.user.email} is now {_a(Role(form.cleaned_data['role']).label)}.")
    return redirect("accounts:members")


@require_POST
@login_required
def member_remove(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_manager(request)
    target = _target(membership, public_id)
    try:
        services.remove_member(target, actor=membership)
    except services.MembershipError as exc:
        messages.error(request, str(exc))
        return redirect("accounts:members")
    messages.success(request, f"{target.user.email} is no longer a member of {membership.team.name}.")
    if target.pk == membership.pk:
        request.session.pop(SESSION_KEY, None)
        return redirect("/")
    return redirect("accounts:members")


urlpatterns = [
    path("login/", SignInView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", PasswordChangeView.as_view(), name="password_change"),
    path("set-password/<uidb64>/<token>/", SetPasswordView.as_view(), name="set_password"),
    path("switch-team/", switch_team, name="switch_team"),
    path("team/", members, name="members"),
    path("team/members/add/", member_add, name="member_add"),
    path("team/members/<uuid:public_id>/role/", member_role, name="member_role"),
    path("team/members/<uuid:public_id>/remove/", member_remove, name="member_remove"),
]
