"""Teams and memberships: the only code that creates, changes or removes a membership.

Used by the team page, the admin and ``manage.py teams``. Nobody is added directly:
people join through an invitation (``accounts.invitations``). Every change runs in
one transaction that locks the team's owner rows first, so two requests can
never together leave a team without an owner.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email, validate_slug
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Invitation, InvitationState, Membership, Role, Team, User
from accounts.tokens.services import revoke_member_tokens


class MembershipError(Exception):
    """A membership change that is not allowed; ``str()`` is the message for the user."""


LAST_OWNER = "A team must keep at least one owner: make someone else an owner first."


def _clean_email(email: str) -> str:
    email = User.objects.normalize_email((email or "").strip()).lower()
    try:
        validate_email(email)
    except ValidationError:
        raise MembershipError(f"{email or 'An empty address'} is not a valid e-mail address.") from None
    return email


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise MembershipError(f"Unknown role {role!r}; choose one of {', '.join(Role.values)}.")


def _lock_owners(team: Team) -> list[int]:
    """Lock and return the ids of the team's current owner memberships."""
    return list(Membership.objects.active().select_for_update()
                .filter(team=team, role=Role.OWNER).values_list("pk", flat=True))


def _may_touch(actor: Membership | None, target_role: str, new_role: str | None = None) -> None:
    """Admins manage members and admins; only owners grant, change or remove ownership.
    ``actor`` None is the operator (CLI, Django admin)."""
    if actor is None:
        return
    if not actor.is_manager:
        raise MembershipError("Only team owners and admins can manage members.")
    if actor.role != Role.OWNER and Role.OWNER in (target_role, new_role):
        raise MembershipError("Only an owner can grant, change or remove the owner role.")


@transaction.atomic
def create_team(slug: str, name: str, owner_email: str) -> Team:
    """A new team, with no members yet: its owner joins through an invitation
    (``accounts.invitations.create_team`` sends it). ``owner_email`` is checked first so
    that a bad address leaves no team behind."""
    slug = (slug or "").strip()
    try:
        validate_slug(slug)
    except ValidationError:
        raise MembershipError(f"{slug!r} is not a valid slug (letters, digits, - and _).") from None
    name = (name or "").strip()
    if not name:
        raise MembershipError("A team needs a name.")
    _clean_email(owner_email)
    if Team.objects.filter(slug=slug).exists():
        raise MembershipError(f"A team with the slug {slug!r} already exists.")
    try:
        with transaction.atomic():
            return Team.objects.create(slug=slug, name=name)
    except IntegrityError:
        raise MembershipError(f"A team with the slug {slug!r} already exists.") from None


@transaction.atomic
def change_role(membership: Membership, role: str, *, actor: Membership | None = None) -> Membership:
    _check_role(role)
    owners = _lock_owners(membership.team)
    membership = Membership.objects.active().select_for_update().select_related("team", "user").filter(
        pk=membership.pk).first()
    if membership is None:
        raise MembershipError("This person is no longer a member of the team.")
    if membership.role == role:
        return membership
    _may_touch(actor, membership.role, role)
    if membership.role == Role.OWNER and owners == [membership.pk]:
        raise MembershipError(LAST_OWNER)
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def remove_member(membership: Membership, *, actor: Membership | None = None) -> None:
    """Take a person out of a team. The row stays (removed), so the wallet's ledger survives."""
    owners = _lock_owners(membership.team)
    membership = Membership.objects.active().select_for_update().filter(pk=membership.pk).first()
    if membership is None:
        return
    _may_touch(actor, membership.role)
    if membership.role == Role.OWNER and owners == [membership.pk]:
        raise MembershipError(LAST_OWNER)
    membership.removed_at = timezone.now()
    membership.save(update_fields=["removed_at"])
    # An upgraded member who never chose a password has a pending invitation: it goes too,
    # or its link would bring them back.
    Invitation.objects.filter(team_id=membership.team_id, email=membership.user.email,
                              state=InvitationState.PENDING).update(state=InvitationState.REVOKED,
                                                                    ended=timezone.now())
    # Their API tokens stop at once (find_token checks the membership too) and stay stopped
    # if they are added again.
    revoke_member_tokens(membership, by=actor.user if actor else None)
