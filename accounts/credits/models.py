"""The credits every member spends.

Money is integer credits: 1 USD = 10,000 credits. A wallet belongs to one
membership; every change to it is an append-only ``LedgerEntry``, and the
wallet always equals the sum of its entries (``manage.py credits verify``).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from generations.models import Generation

CREDITS_PER_USD = 10_000


class Wallet(models.Model):
    """A member's credits in one team. ``available`` may go below zero only by
    an over-cost capture (the provider billed more than the estimate)."""

    membership = models.OneToOneField("accounts.Membership", on_delete=models.CASCADE, related_name="wallet")
    available = models.BigIntegerField(default=0)
    reserved = models.BigIntegerField(default=0)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(reserved__gte=0), name="wallet_reserved_not_negative")]

    def __str__(self):
        return f"Wallet of {self.membership}"


class LedgerKind(models.TextChoices):
    GRANT = "grant", "Grant"
    RESERVE = "reserve", "Reserve"
    CAPTURE = "capture", "Capture"
    RELEASE = "release", "Release"
    ADJUST = "adjust", "Adjust"
    ALLOWANCE = "allowance", "Monthly allowance"


class LedgerEntry(models.Model):
    """One change to a wallet. Append-only.

    ``available_delta`` and ``reserved_delta`` are what the entry did to the
    wallet: a reserve moves credits from available to reserved (-c, +c); a
    capture spends reserved credits (0, -c) and, on over-cost, available ones
    too; a release returns them (+c, -c); a grant or adjust changes available.
    """

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=10, choices=LedgerKind.choices)
    available_delta = models.BigIntegerField(default=0)
    reserved_delta = models.BigIntegerField(default=0)
    generation = models.ForeignKey("generations.Generation", null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="ledger_entries")
    # Kept when a generation is deleted so the ledger still says what it paid for.
    generation_ref = models.UUIDField(null=True, blank=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+")
    reason = models.CharField(max_length=300, blank=True)
    # For idempotent periodic entries (the monthly allowance: "allowance:2026-11").
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001 (NULL: unique only when set)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name_plural = "ledger entries"
        ordering = ["-created", "-id"]
        constraints = [
            # A retried task, a duplicate webhook or two racing workers can never
            # charge or refund one generation twice.
            models.UniqueConstraint(fields=["generation_ref", "kind"],
                                    condition=Q(generation_ref__isnull=False),
                                    name="one_entry_per_generation_and_kind"),
            models.UniqueConstraint(fields=["wallet", "idempotency_key"],
                                    condition=Q(idempotency_key__isnull=False),
                                    name="unique_wallet_idempotency_key"),
        ]
        indexes = [models.Index(fields=["wallet", "-created"])]

    def __str__(self):
        return f"{self.kind} {self.available_delta:+}/{self.reserved_delta:+} on {self.wallet_id}"


class GenerationReview(Generation):
    """The Django admin's list of generations needing review (credits, R7): jobs
    that passed our deadline without a provider verdict keep their reservation
    until an admin releases or charges it (``accounts.credits.services.resolve_review``)."""

    class Meta:
        proxy = True
        verbose_name = "generation needing review"
        verbose_name_plural = "generations needing review"
