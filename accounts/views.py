"""Sign in and out, passwords (change, reset by e-mail), the team switcher, the team's
members page with its invitations, and the page an invitation's link opens."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.messages.views import SuccessMessageMixin
from django.db.models import Case, IntegerField, Q, Value, When
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import Resolver404, path, resolve, reverse, reverse_lazy
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import invitations, mail, services
from accounts.forms import (
    AddMemberForm,
    ChoosePasswordForm,
    PasswordResetRequestForm,
    RoleForm,
    SignInForm,
)
from accounts.models import Invitation, InvitationState, Membership, Role, User
from accounts.oidc.domains import buttons as oidc_buttons
from accounts.teams import SESSION_KEY, require_manager, require_membership
from project import ratelimit


def password_login_on(view):
    """404 for the password pages while password sign-in is off (``KILN_PASSWORD_LOGIN=0``)."""

    def check(request, *args, **kwargs):
        if not settings.KILN_PASSWORD_LOGIN:
            raise Http404("Password sign-in is off: sign in through your identity provider.")
        return view(request, *args, **kwargs)

    return check


class SignInView(auth_views.LoginView):
    """E-mail and password (throttled by django-axes), and a button per identity provider
    (accounts/oidc). With ``KILN_PASSWORD_LOGIN=0`` only the buttons, and a POST is refused."""

    template_name = "accounts/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        if not settings.KILN_PASSWORD_LOGIN:
            return HttpResponseForbidden("Password sign-in is off: sign in through your identity provider.")
        return super().post(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        return super().get_context_data(**kwargs, oidc_providers=oidc_buttons(),
                                        password_login=settings.KILN_PASSWORD_LOGIN)


class PasswordChangeView(SuccessMessageMixin, auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:password_change")
    success_message = "Your password has been changed."


class PasswordResetView(auth_views.PasswordResetView):
    """Asks for an address and always answers the same ("if an account has it, a link is
    on its way"): the e-mail itself is sent by a task (``accounts.tasks.send_password_reset``),
    so neither the page nor its timing says whether the address has an account. Requests
    are limited per address asked for and per client address, the same for every address."""

    template_name = "accounts/password_reset.html"
    form_class = PasswordResetRequestForm
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form):
        per_hour = settings.KILN_PASSWORD_RESETS_PER_HOUR
        for scope, who in (("password-reset-email", form.cleaned_data["email"].lower()),
                           ("password-reset-ip", ratelimit.client_address(self.request))):
            decision = ratelimit.hit(scope, who, limit=per_hour * (4 if scope.endswith("ip") else 1), window=3600)
            if not decision.allowed:
                form.add_error(None, "Too many password reset requests: try again in an hour.")
                response = self.form_invalid(form)
                response.status_code = 429
                response["Retry-After"] = str(decision.retry_after)
                return response
        form.send(mail.site_url(self.request))
        return redirect(self.get_success_url())


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"
    extra_context = {"reset_minutes": settings.PASSWORD_RESET_TIMEOUT // 60}


@method_decorator(never_cache, name="dispatch")
class PasswordResetConfirmView(SuccessMessageMixin, auth_views.PasswordResetConfirmView):
    """Django's reset-token view: the link stops working once the password changes, or after
    PASSWORD_RESET_TIMEOUT. It does not sign in (post_reset_login stays off), so the sign-in
    form, with django-axes' lock-out, is still the only way in."""

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
    return (Membership.objects.active().filter(team_id=membership.team_id)
            .select_related("user", "domain_join__rule")
            .annotate(role_order=role_order).order_by("role_order", "user__email"))


INVITATIONS_SHOWN_DAYS = 14


def _invitations(membership: Membership):
    """Open invitations, and those that ended lately (so an admin sees what happened to them)."""
    recent = timezone.now() - timedelta(days=INVITATIONS_SHOWN_DAYS)
    return (Invitation.objects.filter(team_id=membership.team_id)
            .filter(Q(state__in=[InvitationState.PENDING, InvitationState.EXPIRED]) | Q(ended__gte=recent))
            .select_related("invited_by").order_by("-created"))


def _render_members(request, membership: Membership, *, form=None, status=200) -> HttpResponse:
    invites = list(_invitations(membership)) if membership.is_manager else []
    pending = {i.email for i in invites if i.state == InvitationState.PENDING}
    return render(request, "accounts/team.html", {
        "members": _members(membership),
        "invitations": invites,
        "pending_emails": pending,
        "form": form or AddMemberForm(),
        "roles": Role.choices,
        "is_owner": membership.role == Role.OWNER,
        "invitation_days": settings.KILN_INVITATION_DAYS,
    }, status=status)


@require_GET
@login_required
def members(request: HttpRequest) -> HttpResponse:
    return _render_members(request, require_membership(request))


@require_POST
@login_required
def member_add(request: HttpRequest) -> HttpResponse:
    """Invite an address. The answer is the same whether or not it has an account."""
    membership = require_manager(request)
    form = AddMemberForm(request.POST)
    if not form.is_valid():
        return _render_members(request, membership, form=form, status=400)
    try:
        sent = invitations.invite(membership.team, form.cleaned_data["email"], form.cleaned_data["role"],
                                  actor=membership, base_url=mail.site_url(request))
    except services.MembershipError as exc:
        form.add_error(None, str(exc))
        return _render_members(request, membership, form=form, status=400)
    _report_sent(request, sent, "Invitation sent")
    return redirect("accounts:members")


def _report_sent(request, sent: invitations.Sent, done: str) -> None:
    email = sent.invitation.email
    if sent.error:
        messages.warning(request, f"The invitation of {email} is saved, but the e-mail could not be sent: "
                                  f"{sent.error}. Re-send it once the mail server works.")
    else:
        messages.success(request, f"{done} to {email} ({_a(Role(sent.invitation.role).label)}). "
                                  f"The link in it works once, for {settings.KILN_INVITATION_DAYS} days.")


def _team_invitation(membership: Membership, public_id) -> Invitation:
    return get_object_or_404(Invitation.objects.select_related("team"), team_id=membership.team_id,
                             public_id=public_id)


@require_POST
@login_required
def invitation_resend(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_manager(request)
    invitation = _team_invitation(membership, public_id)
    try:
        sent = invitations.resend(invitation, actor=membership, base_url=mail.site_url(request))
    except services.MembershipError as exc:
        messages.error(request, str(exc))
    else:
        _report_sent(request, sent, "A new invitation was sent (the earlier link no longer works)")
    return redirect("accounts:members")


@require_POST
@login_required
def invitation_revoke(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_manager(request)
    invitation = _team_invitation(membership, public_id)
    try:
        invitations.revoke(invitation, actor=membership)
    except services.MembershipError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"The invitation of {invitation.email} is revoked: its link no longer works.")
    return redirect("accounts:members")


# -- the link in the e-mail ---------------------------------------------------------

def _invitation_page(request, context: dict, status: int = 200) -> HttpResponse:
    return render(request, "accounts/invitation.html", context, status=status)


def _joined(request, membership: Membership) -> HttpResponse:
    request.session[SESSION_KEY] = str(membership.team.public_id)
    messages.success(request, f"Welcome to {membership.team.name}: you are {_a(membership.get_role_display())} "
                              "of the team.")
    return redirect(settings.LOGIN_REDIRECT_URL)


PROBLEM_STATUS = {"unknown": 404, "accepted": 410, "revoked": 410, "expired": 410, "wrong_account": 403,
                  "sign_in": 409}


@never_cache
@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """What the e-mailed link opens: a page that joins the team, after choosing a password
    (no account yet) or signing in as the invited address (an account with one)."""
    try:
        invite = invitations.check(token)
        if request.user.is_authenticated:
            if request.user.email.lower() != invite.email:
                raise invitations.InvitationError("wrong_account", "", invite)
            if request.method == "POST":
                return _joined(request, invitations.accept(token, request.user))
            return _invitation_page(request, {"invitation": invite, "step": "join"})
        if not settings.KILN_PASSWORD_LOGIN or invitations.needs_sign_in(invite):
            return _invitation_page(request, {
                "invitation": invite, "step": "sign_in",
                "sign_in_url": f"{reverse('accounts:login')}?next={request.path}"})
        form = ChoosePasswordForm(User(email=invite.email), request.POST or None)
        if request.method == "POST" and form.is_valid():
            membership = invitations.accept_with_password(token, form.cleaned_data["new_password1"])
            login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
            return _joined(request, membership)
        return _invitation_page(request, {"invitation": invite, "step": "password", "form": form},
                                status=400 if form.errors else 200)
    except invitations.InvitationError as exc:
        return _invitation_page(request, {"invitation": exc.invitation, "problem": exc.code,
                                          "logout_next": request.path}, status=PROBLEM_STATUS[exc.code])


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
    path("password/", password_login_on(PasswordChangeView.as_view()), name="password_change"),
    path("password/reset/", password_login_on(PasswordResetView.as_view()), name="password_reset"),
    path("password/reset/sent/", password_login_on(PasswordResetDoneView.as_view()), name="password_reset_done"),
    path("password/reset/<uidb64>/<token>/", password_login_on(PasswordResetConfirmView.as_view()),
         name="password_reset_confirm"),
    path("invitation/<str:token>/", invitation, name="invitation"),
    path("switch-team/", switch_team, name="switch_team"),
    path("team/", members, name="members"),
    path("team/members/add/", member_add, name="member_add"),
    path("team/members/<uuid:public_id>/role/", member_role, name="member_role"),
    path("team/members/<uuid:public_id>/remove/", member_remove, name="member_remove"),
    path("team/invitations/<uuid:public_id>/resend/", invitation_resend, name="invitation_resend"),
    path("team/invitations/<uuid:public_id>/revoke/", invitation_revoke, name="invitation_revoke"),
]
