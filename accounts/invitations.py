"""Invitations: the only way anyone becomes a member of a team.

A team's owner or admin (or the operator, on the command line) invites an address
with a role; Kiln e-mails a link carrying a random token. Whoever holds the link
proves they read that mailbox, and only they can then join: with no account they
choose a password, with one they sign in as it first. So no team's admin ever
creates an account, sees a token, a link or a password, or learns whether an
address already has an account elsewhere: inviting does the same work and gives
the same answer either way (the address is never even looked up among accounts).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts import mail
from accounts.credits.services import wallet_for
from accounts.models import Invitation, InvitationState, Membership, Role, Team, User
from accounts.services import MembershipError, _check_role, _clean_email, _may_touch
from accounts.services import create_team as _new_team

log = logging.getLogger(__name__)

TOKEN_BYTES = 32  # 256 bits from secrets.token_urlsafe


class InvitationError(MembershipError):
    """Why a link cannot be used; ``code`` picks the page that explains it."""

    def __init__(self, code: str, message: str, invitation: Invitation | None = None):
        super().__init__(message)
        self.code = code
        self.invitation = invitation


@dataclass
class Sent:
    invitation: Invitation
    # The link as e-mailed. Only the operator's command line may show it (--print-link);
    # no view ever reads it.
    link: str
    # Why the mailer refused it, in its own words; "" when it was sent.
    error: str = ""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def accept_path(token: str) -> str:
    return reverse("accounts:invitation", kwargs={"token": token})


def _new_link(invitation: Invitation) -> str:
    """Give ``invitation`` a fresh token (the old link stops working) and a fresh expiry."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    invitation.token_hash = hash_token(token)
    invitation.expires = timezone.now() + timedelta(days=settings.KILN_INVITATION_DAYS)
    invitation.state = InvitationState.PENDING
    invitation.ended = None
    return token


def _deliver(invitation: Invitation, token: str, base_url: str) -> Sent:
    """E-mail the link (after the transaction that stored its hash has committed)."""
    link = f"{base_url}{accept_path(token)}"
    inviter = invitation.invited_by
    context = {"invitation": invitation, "team": invitation.team, "link": link,
               "inviter": inviter.get_full_name() if inviter else "",
               "role": Role(invitation.role).label.lower(), "days": settings.KILN_INVITATION_DAYS,
               "expires": invitation.expires}
    try:
        mail.send("invitation", context, invitation.email)
    except Exception as exc:  # SMTP refusals, DNS, timeouts: reported, the invitation stays re-sendable
        log.warning("Invitation %s to %s was not sent: %s", invitation.public_id, invitation.team.slug, exc)
        return Sent(invitation, link, error=str(exc) or exc.__class__.__name__)
    Invitation.objects.filter(pk=invitation.pk, token_hash=invitation.token_hash).update(sent=timezone.now())
    invitation.sent = timezone.now()
    return Sent(invitation, link)


def invite(team: Team, email: str, role: str = Role.MEMBER, *, actor: Membership | None = None,
           base_url: str = "") -> Sent:
    """Invite ``email`` to ``team`` as ``role`` and e-mail the link.

    An address with a pending invitation to this team gets it again (new link, the
    role given now). A current member of this team is refused (their admin sees the
    member list anyway); nothing about any other team or account is consulted."""
    email = _clean_email(email)
    _check_role(role)
    _may_touch(actor, Role.MEMBER, role)
    with transaction.atomic():
        Team.objects.select_for_update().filter(pk=team.pk).first()  # one invite per team at a time
        invitation = (Invitation.objects.select_for_update().select_related("team")
                      .filter(team=team, email=email, state=InvitationState.PENDING).first())
        if invitation is None:
            if Membership.objects.active().filter(team=team, user__email=email).exists():
                raise MembershipError(f"{email} is already a member of {team.name}.")
            invitation = Invitation(team=team, email=email)
        else:
            _may_touch(actor, invitation.role)
        invitation.role = role
        invitation.invited_by = actor.user if actor else None
        invitation.created = timezone.now()
        token = _new_link(invitation)
        invitation.save()
    return _deliver(invitation, token, base_url or mail.site_url())


def resend(invitation: Invitation, *, actor: Membership | None = None, base_url: str = "") -> Sent:
    """A new link for a pending (or expired) invitation; the old link stops working."""
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update(of=("self",)).select_related("team", "invited_by").get(pk=invitation.pk)
        _may_touch(actor, invitation.role)
        if invitation.state not in (InvitationState.PENDING, InvitationState.EXPIRED):
            raise MembershipError(f"The invitation of {invitation.email} was {invitation.get_state_display().lower()}: "
                                  "invite them again instead.")
        if invitation.state == InvitationState.EXPIRED and Invitation.objects.filter(
                team=invitation.team, email=invitation.email, state=InvitationState.PENDING).exists():
            raise MembershipError(f"{invitation.email} has a newer invitation: re-send that one.")
        token = _new_link(invitation)
        invitation.save()
    return _deliver(invitation, token, base_url or mail.site_url())


@transaction.atomic
def revoke(invitation: Invitation, *, actor: Membership | None = None) -> Invitation:
    invitation = Invitation.objects.select_for_update().select_related("team").get(pk=invitation.pk)
    _may_touch(actor, invitation.role)
    if invitation.state == InvitationState.ACCEPTED:
        raise MembershipError(f"{invitation.email} has already accepted: remove them from the team instead.")
    if invitation.state != InvitationState.REVOKED:
        invitation.state, invitation.ended = InvitationState.REVOKED, timezone.now()
        invitation.save(update_fields=["state", "ended"])
    return invitation


def find(token: str) -> Invitation | None:
    """The invitation a link names, whatever its state (None for a wrong or replaced link)."""
    if not token or len(token) > 100:
        return None
    return (Invitation.objects.select_related("team", "invited_by")
            .filter(token_hash=hash_token(token)).first())


def _check_usable(invitation: Invitation | None, *, record_expiry: bool = False) -> Invitation:
    """``invitation`` if it can be accepted now, else InvitationError saying why."""
    if invitation is None:
        raise InvitationError("unknown", "This invitation link is not valid. It may have been copied incompletely, "
                                         "or replaced by a newer invitation: use the link in the latest e-mail.")
    if invitation.state == InvitationState.ACCEPTED:
        raise InvitationError("accepted", "This invitation has already been accepted.", invitation)
    if invitation.state == InvitationState.REVOKED:
        raise InvitationError("revoked", "This invitation was withdrawn by the team.", invitation)
    if invitation.status == InvitationState.EXPIRED:
        if record_expiry and invitation.state == InvitationState.PENDING:
            # Outside any transaction that the error below would roll back.
            Invitation.objects.filter(pk=invitation.pk, state=InvitationState.PENDING).update(
                state=InvitationState.EXPIRED, ended=timezone.now())
        raise InvitationError("expired", "This invitation has expired.", invitation)
    return invitation


def check(token: str) -> Invitation:
    """The invitation behind ``token`` if it can be accepted now, else InvitationError."""
    return _check_usable(find(token), record_expiry=True)


def _lock(token: str) -> Invitation:
    invitation = (Invitation.objects.select_for_update().select_related("team")
                  .filter(token_hash=hash_token(token)).first())
    return _check_usable(invitation)


def _join(invitation: Invitation, user: User) -> Membership:
    """Create (or restore) the membership an invitation offers, and close the invitation."""
    membership = Membership.objects.select_for_update().filter(team=invitation.team, user=user).first()
    if membership is None:
        membership = Membership.objects.create(team=invitation.team, user=user, role=invitation.role)
    elif membership.removed_at is not None:
        membership.removed_at, membership.role = None, invitation.role
        membership.save(update_fields=["removed_at", "role"])
    # else: a member already (an upgraded account that had no password): the role they
    # have now is the one their admins last chose; it is kept.
    wallet_for(membership)
    invitation.state, invitation.ended, invitation.accepted_by = InvitationState.ACCEPTED, timezone.now(), user
    invitation.save(update_fields=["state", "ended", "accepted_by"])
    return membership


@transaction.atomic
def accept(token: str, user: User) -> Membership:
    """``user`` (signed in) joins through ``token``; the invitation must be for their address."""
    invitation = _lock(token)
    if user.email.lower() != invitation.email:
        raise InvitationError("wrong_account", f"This invitation is for {invitation.email}, and you are signed in "
                                               f"as {user.email}.", invitation)
    return _join(invitation, user)


def needs_sign_in(invitation: Invitation) -> bool:
    """Whether the invited address has an account with a password (its owner must sign in
    to accept), rather than choosing one here. Only asked on the link's own page: whoever
    has the link reads that mailbox, so it tells them nothing about anyone else."""
    user = User.objects.filter(email=invitation.email).first()
    return bool(user and user.has_usable_password())


@transaction.atomic
def accept_with_password(token: str, password: str) -> Membership:
    """Accept for an address without a usable password: the account is created (or its
    password set: one that never chose any) and joins. The password is validated by the
    caller's form."""
    invitation = _lock(token)
    user = User.objects.select_for_update().filter(email=invitation.email).first()
    if user is None:
        user = User.objects.create_user(invitation.email, password)
    elif user.has_usable_password():
        raise InvitationError("sign_in", f"{invitation.email} already has a password: sign in to accept.", invitation)
    else:
        user.set_password(password)
        user.save(update_fields=["password"])
    return _join(invitation, user)


def revoke_pending_for(membership: Membership) -> None:
    """When a member is removed, the invitation they were sent (an upgraded member's) goes too."""
    Invitation.objects.filter(team_id=membership.team_id, email=membership.user.email,
                              state=InvitationState.PENDING).update(state=InvitationState.REVOKED,
                                                                    ended=timezone.now())


def create_team(slug: str, name: str, owner_email: str, *, base_url: str = "") -> Sent:
    """The operator's ``teams create``: a new team and its owner's invitation, e-mailed."""
    team = _new_team(slug, name, owner_email)
    return invite(team, owner_email, Role.OWNER, base_url=base_url)
