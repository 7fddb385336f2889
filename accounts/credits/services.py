"""Credits: the only code that changes a wallet.

Every change is one ledger entry plus one UPDATE on the wallet, in one
transaction, so a wallet always equals the sum of its entries (``verify``).

- ``reserve`` is a single conditional UPDATE (``available >= cost``): fifty
  concurrent submits against a wallet that can pay for seven reserve seven.
- Entries tied to a generation are unique per (generation, kind): a retried
  task, a duplicate webhook or two racing workers can never charge or refund
  twice; the second attempt finds the entry there and changes nothing.
- A generation gets one verdict: ``capture`` (charge the actual cost and
  release the rest, in one entry) or ``release`` (return everything). The
  first verdict wins; a later one is a no-op that returns None.
- Over-cost (the provider billed more than was reserved) takes the
  difference from available credits, which may go below zero only by that
  difference; the entry's reason says so.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.credits.models import CREDITS_PER_USD, LedgerEntry, LedgerKind, Wallet
from accounts.models import Membership, Team

logger = logging.getLogger(__name__)


class InsufficientCredits(Exception):
    def __init__(self, needed: int, available: int):
        self.needed = needed
        self.available = available
        super().__init__(
            f"This needs {needed:,} credits and you have {max(available, 0):,} available."
        )


class BudgetExceeded(Exception):
    def __init__(self, needed: int, remaining: int):
        self.needed = needed
        self.remaining = remaining
        super().__init__(
            f"This needs {needed:,} credits and the team's monthly budget has {max(remaining, 0):,} left."
        )


class DeductionTooLarge(ValueError):
    """A deduction would take a wallet below zero (only an over-cost capture may)."""

    def __init__(self, amount: int, available: int):
        self.amount = amount
        self.available = available
        super().__init__(
            f"Cannot deduct {amount:,} credits: the wallet has {max(available, 0):,} available."
        )


def credits_to_usd(credits: int) -> float:
    return credits / CREDITS_PER_USD


def wallet_for(membership: Membership) -> Wallet:
    wallet, _ = Wallet.objects.get_or_create(membership=membership)
    return wallet


def _available(wallet_id: int) -> int:
    return Wallet.objects.filter(pk=wallet_id).values_list("available", flat=True).first() or 0


def _write(wallet_id: int, kind: str, available_delta: int, reserved_delta: int, *, generation=None,
           actor=None, reason: str = "", idempotency_key: str | None = None,
           floor: int | None = None) -> LedgerEntry | None:
    """Record the entry and apply its deltas atomically.

    Returns None (and changes nothing) when the entry already exists: the
    unique constraints on (generation_ref, kind) and (wallet, idempotency_key)
    make every generation-bound or keyed entry happen at most once. With
    ``floor``, the wallet is changed only if ``available >= floor`` (one
    conditional UPDATE); otherwise the entry is rolled back and
    ``_Refused`` raised.
    """
    with transaction.atomic():
        try:
            with transaction.atomic():
                entry = LedgerEntry.objects.create(
                    wallet_id=wallet_id, kind=kind, available_delta=available_delta,
                    reserved_delta=reserved_delta, generation=generation,
                    generation_ref=generation.public_id if generation is not None else None,
                    actor=actor, reason=reason[:300], idempotency_key=idempotency_key,
                )
        except IntegrityError:
            return None
        wallets = Wallet.objects.filter(pk=wallet_id)
        if floor is not None:
            wallets = wallets.filter(available__gte=floor)
        # A violated CHECK (reserved >= 0) raises here and rolls the entry back.
        moved = wallets.update(available=F("available") + available_delta,
                               reserved=F("reserved") + reserved_delta, updated=timezone.now())
        if not moved:
            raise _Refused
        return entry


class _Refused(Exception):
    """The conditional UPDATE matched no row: not enough available credits."""


def grant(wallet: Wallet, amount: int, *, actor=None, reason: str = "", kind: str | None = None,
          idempotency_key: str | None = None) -> LedgerEntry | None:
    """Add available credits, or with a negative amount deduct them (kind "adjust").

    A deduction never takes a wallet below zero: it raises DeductionTooLarge.
    """
    if amount == 0:
        raise ValueError("The amount must not be zero.")
    kind = kind or (LedgerKind.GRANT if amount > 0 else LedgerKind.ADJUST)
    try:
        return _write(wallet.pk, kind, amount, 0, actor=actor, reason=reason,
                      idempotency_key=idempotency_key, floor=-amount if amount < 0 else None)
    except _Refused:
        raise DeductionTooLarge(-amount, _available(wallet.pk)) from None


def reserve(wallet: Wallet, generation, amount: int) -> LedgerEntry | None:
    """Hold ``amount`` for ``generation``; raises InsufficientCredits.

    One conditional UPDATE (``available >= amount``), so concurrent callers can
    never overdraw. Call it inside the transaction that creates the generation,
    so a refusal leaves nothing behind. A second reservation for the same
    generation changes nothing and returns None.
    """
    if amount < 0:
        raise ValueError("A reservation cannot be negative.")
    try:
        return _write(wallet.pk, LedgerKind.RESERVE, -amount, amount, generation=generation,
                      actor=generation.author, floor=amount if amount > 0 else None)
    except _Refused:
        raise InsufficientCredits(amount, _available(wallet.pk)) from None


def _verdict_state(generation) -> tuple[LedgerEntry | None, set[str]]:
    """Lock the generation's reservation entry (serialising every verdict on it)
    and return it with the kinds of the verdict entries already written."""
    reservation = (LedgerEntry.objects.select_for_update()
                   .filter(generation_ref=generation.public_id, kind=LedgerKind.RESERVE).first())
    if reservation is None:
        return None, set()
    done = set(LedgerEntry.objects.filter(generation_ref=generation.public_id,
                                          kind__in=[LedgerKind.CAPTURE, LedgerKind.RELEASE])
               .values_list("kind", flat=True))
    return reservation, done


def capture(generation, actual: int, *, actor=None, reason: str = "") -> LedgerEntry | None:
    """Spend ``actual`` credits for a finished generation and release the rest of
    its reservation, in one entry. Over-cost takes the difference from available
    credits (the wallet may go below zero only by that difference).

    Idempotent: returns None and changes nothing if the generation has no
    reservation or already has a verdict (captured or released).
    """
    if actual < 0:
        raise ValueError("A cost cannot be negative.")
    with transaction.atomic():
        reservation, done = _verdict_state(generation)
        if reservation is None or done:
            if LedgerKind.RELEASE in done:
                logger.warning("Not capturing %s: its reservation was already released.", generation.public_id)
            return None
        held = reservation.reserved_delta
        return _write(reservation.wallet_id, LedgerKind.CAPTURE, held - actual, -held,
                      generation=generation, actor=actor, reason=reason or capture_reason(held, actual))


def capture_reason(held: int, actual: int) -> str:
    if actual > held:
        return f"Cost {actual:,}: {actual - held:,} over the {held:,} reserved, taken from available credits."
    if actual < held:
        return f"Cost {actual:,}; {held - actual:,} of the {held:,} reserved released."
    return f"Cost {actual:,}."


def release(generation, *, actor=None, reason: str = "") -> LedgerEntry | None:
    """Return everything held for a generation that will not be charged.

    Idempotent: returns None and changes nothing if there is no reservation or
    the generation already has a verdict.
    """
    with transaction.atomic():
        reservation, done = _verdict_state(generation)
        if reservation is None or done:
            return None
        held = reservation.reserved_delta
        return _write(reservation.wallet_id, LedgerKind.RELEASE, held, -held, generation=generation,
                      actor=actor, reason=reason or f"Released {held:,}.")


def held_for(generation) -> int:
    """Credits still reserved for a generation (0 once it has a verdict)."""
    total = LedgerEntry.objects.filter(generation_ref=generation.public_id).aggregate(
        total=Coalesce(Sum("reserved_delta"), 0))["total"]
    return total


@dataclass(frozen=True)
class Settlement:
    """What a generation cost, from its ledger entries (the truth, not the estimate)."""

    reserved: int          # what was reserved when it was created
    charged: int           # what a capture took (0 when released or not settled yet)
    verdict: str           # "captured", "released", "held" (awaiting one) or "none" (nothing reserved)

    def describe(self) -> str:
        """"cost 4,000 credits", "cost 0 credits · 4,000 reserved, refunded"..."""
        if self.verdict == "captured":
            return f"cost {self.charged:,} credits"
        if self.verdict == "released":
            return f"cost 0 credits · {self.reserved:,} reserved, refunded"
        if self.verdict == "held":
            return f"cost not settled · {self.reserved:,} credits held until an admin reviews it"
        return "cost 0 credits"


def settlement(generation) -> Settlement:
    entries = list(LedgerEntry.objects.filter(generation_ref=generation.public_id)
                   .values_list("kind", "available_delta", "reserved_delta"))
    reserved = sum(r for kind, _, r in entries if kind == LedgerKind.RESERVE)
    captures = [(a, r) for kind, a, r in entries if kind == LedgerKind.CAPTURE]
    if captures:
        # A capture moves ``held`` out of reserved and gives back ``held - actual``.
        return Settlement(reserved, sum(-r - a for a, r in captures), "captured")
    if any(kind == LedgerKind.RELEASE for kind, _, _ in entries):
        return Settlement(reserved, 0, "released")
    return Settlement(reserved, 0, "held" if entries else "none")


REVIEW_ACTIONS = ("release", "capture")


def resolve_review(generation, *, action: str, actor, amount: int | None = None) -> LedgerEntry | None:
    """Settle a generation flagged ``needs_review`` (expired without a provider verdict).

    ``release`` returns the whole reservation; ``capture`` charges ``amount``
    (default: the estimate). Clears ``needs_review``. Returns the ledger entry
    written, or None if there was nothing left to settle (already reviewed, or
    already given a verdict by the engine).
    """
    from generations.models import Generation

    if action not in REVIEW_ACTIONS:
        raise ValueError(f"Unknown review action {action!r}: use release or capture.")
    if amount is not None and amount < 0:
        raise ValueError("A cost cannot be negative.")
    with transaction.atomic():
        locked = Generation.objects.select_for_update().filter(pk=generation.pk).first()
        if locked is None or not locked.needs_review:
            return None
        who = getattr(actor, "email", "an admin")
        if action == "release":
            entry = release(locked, actor=actor, reason=f"Review by {who}: released.")
            # Refunded: nothing was charged, whatever figure the provider reported.
            changes = {"needs_review": False, "actual_cost": None}
            outcome = f"refunded {entry.available_delta:,} credits" if entry else "nothing was held any more"
        else:
            cost = locked.estimated_cost if amount is None else amount
            entry = capture(locked, cost, actor=actor,
                            reason=f"Review by {who}: {capture_reason(held_for(locked), cost)}")
            changes = {"needs_review": False}
            if entry is not None:
                changes["actual_cost"] = cost
            outcome = f"charged {cost:,} credits" if entry else "nothing was held any more"
        # The job's own words said the credits were held until an admin settles it: say how it ended.
        if locked.error:
            changes["error"] = f"{locked.error} Settled by {who}: {outcome}."[:5000]
        Generation.objects.filter(pk=locked.pk).update(**changes)
        for name, value in changes.items():
            setattr(generation, name, value)
        return entry


# Reporting helpers -------------------------------------------------------

def spend_expression():
    """What an entry spent: credits that left the wallet for good (captures)."""
    return -(F("available_delta") + F("reserved_delta"))


def month_bounds(month: dt.date | None = None) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the calendar month containing ``month`` (default: now), in the current time zone."""
    day = month or timezone.localdate()
    start = dt.date(day.year, day.month, 1)
    end = dt.date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    tz = timezone.get_current_timezone()
    return (dt.datetime.combine(start, dt.time.min, tzinfo=tz), dt.datetime.combine(end, dt.time.min, tzinfo=tz))


def monthly_spend(team: Team, month: dt.date | None = None, *, wallet: Wallet | None = None) -> int:
    """Credits the team (or one wallet) spent on generations in a calendar month."""
    start, end = month_bounds(month)
    entries = LedgerEntry.objects.filter(kind=LedgerKind.CAPTURE, created__gte=start, created__lt=end)
    entries = entries.filter(wallet=wallet) if wallet is not None else entries.filter(wallet__membership__team=team)
    return entries.aggregate(total=Coalesce(Sum(spend_expression()), 0))["total"]


def team_reserved(team: Team) -> int:
    return Wallet.objects.filter(membership__team=team).aggregate(total=Coalesce(Sum("reserved"), 0))["total"]


def budget_remaining(team: Team, month: dt.date | None = None) -> int | None:
    """What the team may still commit this month (spent and reserved credits count); None without a budget."""
    if team.monthly_budget is None:
        return None
    return team.monthly_budget - monthly_spend(team, month) - team_reserved(team)


def check_budget(team: Team, amount: int) -> None:
    """Raise BudgetExceeded if reserving ``amount`` would take the team over its monthly budget.

    Call it inside the transaction that reserves, just before ``reserve``: with
    a budget set it locks the team row (SELECT ... FOR UPDATE) until that
    transaction ends, so concurrent submits of one team check one at a time.
    Teams without a budget take no lock.
    """
    if team.monthly_budget is None:
        return
    with transaction.atomic():
        budget = Team.objects.select_for_update().filter(pk=team.pk).values_list("monthly_budget", flat=True).first()
        if budget is None:
            return
        remaining = budget - monthly_spend(team) - team_reserved(team)
        if amount > remaining:
            raise BudgetExceeded(amount, remaining)


def allowance_key(month: dt.date) -> str:
    return f"allowance:{month:%Y-%m}"


def apply_monthly_allowance(team: Team, month: dt.date | None = None) -> int:
    """Top every current member's available credits up to the team's monthly allowance.

    One "allowance" entry per wallet and month (idempotency key
    ``allowance:YYYY-MM``), written even when nothing needed adding, so running
    it again in the same month changes nothing. Returns the number of wallets
    given an entry now.
    """
    allowance = team.monthly_allowance
    if not allowance or allowance <= 0:
        return 0
    month = month or timezone.localdate()
    key = allowance_key(month)
    written = 0
    for membership in team.memberships.active().select_related("team"):
        wallet = wallet_for(membership)
        with transaction.atomic():
            available = Wallet.objects.select_for_update().filter(pk=wallet.pk).values_list("available", flat=True).get()
            if LedgerEntry.objects.filter(wallet=wallet, idempotency_key=key).exists():
                continue
            top_up = max(allowance - available, 0)
            reason = (f"Monthly allowance {month:%Y-%m}: topped up to {allowance:,}." if top_up
                      else f"Monthly allowance {month:%Y-%m}: already at {allowance:,} or more.")
            if _write(wallet.pk, LedgerKind.ALLOWANCE, top_up, 0, reason=reason, idempotency_key=key):
                written += 1
    return written


# Verification ---------------------------------------------------------------

@dataclass
class WalletCheck:
    wallet: Wallet
    available_sum: int
    reserved_sum: int

    @property
    def ok(self) -> bool:
        return self.wallet.available == self.available_sum and self.wallet.reserved == self.reserved_sum

    def describe(self) -> str:
        m = self.wallet.membership
        return (f"{m.team.slug} {m.user.email}: wallet available {self.wallet.available:,} reserved "
                f"{self.wallet.reserved:,}; ledger available {self.available_sum:,} reserved {self.reserved_sum:,}")


def verify(wallets=None) -> list[WalletCheck]:
    """Compare every wallet with the sum of its ledger entries."""
    wallets = wallets if wallets is not None else Wallet.objects.all()
    sums = wallets.annotate(
        available_sum=Coalesce(Sum("entries__available_delta"), 0),
        reserved_sum=Coalesce(Sum("entries__reserved_delta"), 0),
    ).select_related("membership__team", "membership__user").order_by("pk")
    return [WalletCheck(w, w.available_sum, w.reserved_sum) for w in sums]
