"""Teams' domain rules: who may join a team by signing in through a provider.

A rule names a provider and a domain; a person who signs in through that provider with an
address at exactly that domain, which the provider asserts is verified, joins the team with the
rule's role (member or admin; owners are only ever invited). What keeps a team to its own people:

- **Proof of the domain.** Only an owner who has signed in through that provider with a verified
  address at that domain may make the rule: a team cannot claim ``bigcorp.com`` unless one of its
  owners is someone at bigcorp.com to that provider. So one team cannot capture the accounts of
  another company's people as they arrive.
- **No free-mail domains.** Anyone can have a gmail.com address; a rule naming one would let the
  whole world in. ``PUBLIC_DOMAINS`` (and the operator's ``KILN_OIDC_PUBLIC_DOMAINS``) are refused.
- **Only new members.** A rule only ever adds a membership where the account has none in that
  team: it never changes a role, never restores someone the team removed (an invitation does),
  and never touches any other team. It is off until the owner enables it, and every join through
  it is recorded (``DomainJoin``) and listed on the team's pages.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts.credits.services import wallet_for
from accounts.models import Membership, Role, User
from accounts.oidc.models import DomainJoin, DomainRule, Identity
from accounts.services import MembershipError

# Free-mail and consumer domains nobody owns for a team (operators add theirs in
# KILN_OIDC_PUBLIC_DOMAINS).
PUBLIC_DOMAINS = frozenset(["gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.co.uk", "live.com", "msn.com", "yahoo.com", "yahoo.co.uk", "ymail.com", "icloud.com", "me.com", "mac.com", "aol.com", "proton.me", "protonmail.com", "pm.me", "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com", "zoho.com", "yandex.com", "yandex.ru", "mail.ru", "qq.com", "163.com", "126.com", "fastmail.com", "hey.com", "tutanota.com"])

_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def domain_of(email: str) -> str:
    return email.rpartition("@")[2].lower()


def is_public(domain: str) -> bool:
    return domain in PUBLIC_DOMAINS or domain in settings.KILN_OIDC_PUBLIC_DOMAINS


def provider_config(provider_id: str) -> dict | None:
    return next((p for p in settings.KILN_OIDC_PROVIDERS if p["id"] == provider_id), None)


def buttons() -> list[dict]:
    """The providers as pages show them: id and label only (never the client secret)."""
    return [{"id": p["id"], "label": p["label"]} for p in settings.KILN_OIDC_PROVIDERS]


def create_rule(owner: Membership, provider_id: str, domain: str, role: str) -> DomainRule:
    """A new rule, off: checked as the module's docstring says. Raises MembershipError."""
    if owner.role != Role.OWNER:
        raise MembershipError("Only the team's owners can set sign-in rules.")
    config = provider_config(provider_id)
    if config is None:
        raise MembershipError("Choose one of the sign-in providers this Kiln offers.")
    domain = domain.strip().lower().lstrip("@")
    if not _DOMAIN.match(domain):
        raise MembershipError(f"“{domain}” is not a domain name (like example.com).")
    if is_public(domain):
        raise MembershipError(f"{domain} is a public e-mail domain: anyone can have an address there. "
                              "Invite people from it one by one instead.")
    if config["domains"] and domain not in config["domains"]:
        raise MembershipError(f"{config['label']} may only vouch for addresses at {', '.join(config['domains'])}.")
    if role not in (Role.MEMBER, Role.ADMIN):
        raise MembershipError("A sign-in rule gives the member or admin role; owners are invited.")
    if not Identity.objects.filter(user=owner.user, provider=provider_id, email__iendswith=f"@{domain}",
                                   lost_at__isnull=True).exists():
        raise MembershipError(f"To set a rule for @{domain}, sign in through {config['label']} with your own "
                              f"verified address at {domain} first: that shows the domain is your team's.")
    try:
        with transaction.atomic():
            return DomainRule.objects.create(team=owner.team, provider=provider_id, domain=domain, role=role,
                                             created_by=owner.user)
    except IntegrityError:
        raise MembershipError(f"There is already a rule for @{domain} through {config['label']}.") from None


def apply_rules(user: User, provider_id: str, email: str) -> list[DomainJoin]:
    """Join ``user`` to each team whose enabled rule matches (the caller has checked the address
    is verified). Called inside the sign-in's transaction."""
    joins = []
    rules = DomainRule.objects.select_related("team").filter(enabled=True, provider=provider_id,
                                                             domain=domain_of(email))
    for rule in rules:
        membership, created = Membership.objects.get_or_create(team=rule.team, user=user,
                                                               defaults={"role": rule.role})
        if not created:
            continue  # a member already, or removed by the team: the rule changes neither
        wallet_for(membership)
        joins.append(DomainJoin.objects.create(team=rule.team, membership=membership, rule=rule,
                                               provider=provider_id, email=email, role=rule.role))
    return joins
