"""Teams and memberships: the only code that creates, changes or removes a membership.

Used by the team page, the admin and ``manage.py teams``. Every change runs in
one transaction that locks the team's owner rows first, so two requests can
never together leave a team without an owner.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email, validate_slug
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.credits import wallet_for
from accounts.models import Membership, Role, Team, User


class MembershipError(Exception):
    """A membership change that is not allowed; ``str()`` is the message for the user."""


LAST_OWNER = "A team must keep at least one owner: make someone else an owner first."


@dataclass
class MemberAdded:
    membership: Membership
    created_user: bool
    # The one-time link path for a person who has no password yet, else "".
    set_password_path: str


def set_password_path(user: User) -> str:
    """A one-time path where ``user`` chooses a password (Django's reset-token machinery:
    the token stops working as soon as the password changes, or after PASSWORD_RESET_TIMEOUT)."""
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return reverse("accounts:set_password", kwargs={"uidb64": uidb64, "token": token})


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


def _get_or_create_user(email: str) -> tuple[User, bool]:
    user = User.objects.filter(email=email).first()
    if user:
        return user, False
    user = User.objects.create_user(email, password=None)  # unusable password until they set one
    return user, True


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
def create_team(slug: str, name: str, owner_email: str) -> MemberAdded:
    """A new team with ``owner_email`` as its owner (the account is created if needed)."""
    slug = (slug or "").strip()
    try:
        validate_slug(slug)
    except ValidationError:
        raise MembershipError(f"{slug!r} is not a valid slug (letters, digits, - and _).") from None
    name = (name or "").strip()
    if not name:
        raise MembershipError("A team needs a name.")
    if Team.objects.filter(slug=slug).exists():
        raise MembershipError(f"A team with the slug {slug!r} already exists.")
    email = _clean_email(owner_email)
    try:
        with transaction.atomic():
            team = Team.objects.create(slug=slug, name=name)
    except IntegrityError:
        raise MembershipError(f"A team with the slug {slug!r} already exists.") from None
    return add_member(team, email, Role.OWNER)


@transaction.atomic
def add_member(team: Team, email: str, role: str = Role.MEMBER, *, actor: Membership | None = None) -> MemberAdded:
    """Add the person with ``email`` to ``team`` (creating their account with no password
    if they have none), with a wallet. A removed member is restored with their wallet."""
    email = _clean_email(email)
    _check_role(role)
    _may_touch(actor, Role.MEMBER, role)
    user, created = _get_or_create_user(email)
    membership = Membership.objects.select_for_update().filter(team=team, user=user).first()
    if membership and membership.removed_at is None:
        raise MembershipError(f"{email} is already a member of {team.name}.")
    if membership:
        membership.removed_at = None
        membership.role = role
        membership.save(update_fields=["removed_at", "role"])
    else:
        membership = Membership.objects.create(team=team, user=user, role=role)
    wallet_for(membership)
    path = set_password_path(user) if _may_get_set_password_link(actor, user, team) else ""
    return MemberAdded(membership, created, path)


def _may_get_set_password_link(actor: Membership | None, user: User, team: Team) -> bool:
    """Whether whoever adds ``user`` may be handed the link that chooses their password.

    The operator (the CLI: no ``actor``) may for anyone without a password. A team's
    manager may only for someone who is nobody else's: no membership in any other team
    (not even a removed one) and no staff rights. Otherwise the admin of team B could
    add a person invited to team A who has not chosen a password yet, choose it for them
    and sign in as them to team A (or to the admin site)."""
    if user.has_usable_password():
        return False
    if actor is None:
        return True
    return not (user.is_staff or user.is_superuser
                or Membership.objects.filter(user=user).exclude(team=team).exists())


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
