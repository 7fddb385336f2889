"""The money rules, checked against the wallet and the sum of its ledger entries."""

import pytest
from django.db.models import Sum

from accounts.credits.models import LedgerEntry, LedgerKind
from accounts.credits.services import (
    DeductionTooLarge,
    InsufficientCredits,
    capture,
    grant,
    release,
    reserve,
    resolve_review,
    verify,
)
from generations.models import Status
from tests.accounts.credits.conftest import make_generation, wallet_of

START = 1_000_000  # the teammate fixture's grant


def ledger_sums(wallet):
    return wallet.entries.aggregate(a=Sum("available_delta"), r=Sum("reserved_delta"))


def assert_consistent(wallet, available, reserved):
    wallet.refresh_from_db()
    assert (wallet.available, wallet.reserved) == (available, reserved)
    assert ledger_sums(wallet) == {"a": available, "r": reserved}
    assert all(check.ok for check in verify())


def test_a_reservation_moves_the_estimate_from_available_to_reserved(team, teammate, gen_factory):
    gen_factory(estimate=2_500)
    assert_consistent(wallet_of(teammate, team), START - 2_500, 2_500)


def test_capturing_the_exact_estimate_spends_it(team, teammate, gen_factory):
    g = gen_factory(estimate=2_500)
    capture(g, 2_500)
    assert_consistent(wallet_of(teammate, team), START - 2_500, 0)
    assert LedgerEntry.objects.get(generation_ref=g.public_id, kind=LedgerKind.CAPTURE).reason == "Cost 2,500."


def test_an_under_cost_capture_releases_the_rest(team, teammate, gen_factory):
    g = gen_factory(estimate=2_500)
    entry = capture(g, 1_000)
    assert_consistent(wallet_of(teammate, team), START - 1_000, 0)
    assert (entry.available_delta, entry.reserved_delta) == (1_500, -2_500)
    assert "1,500 of the 2,500 reserved released" in entry.reason


def test_an_over_cost_capture_goes_below_zero_only_by_the_difference(team, teammate):
    from tests.conftest import make_member

    user = make_member(team, "tight@acme.test", credits=1_000)
    g = make_generation(team, user, estimate=1_000)
    assert_consistent(wallet_of(user, team), 0, 1_000)
    entry = capture(g, 1_300)
    assert_consistent(wallet_of(user, team), -300, 0)
    assert "300 over the 1,000 reserved" in entry.reason


def test_a_failure_releases_everything(team, teammate, gen_factory):
    g = gen_factory(estimate=4_000, status=Status.FAILED)
    release(g, reason="Provider said no.")
    assert_consistent(wallet_of(teammate, team), START, 0)


def test_a_duplicate_completion_charges_once(team, teammate, gen_factory):
    g = gen_factory(estimate=2_000)
    assert capture(g, 2_000) is not None
    assert capture(g, 2_000) is None
    assert capture(g, 5_000) is None
    assert LedgerEntry.objects.filter(generation_ref=g.public_id, kind=LedgerKind.CAPTURE).count() == 1
    assert_consistent(wallet_of(teammate, team), START - 2_000, 0)


def test_a_duplicate_refund_refunds_once(team, teammate, gen_factory):
    g = gen_factory(estimate=2_000, status=Status.FAILED)
    assert release(g) is not None
    assert release(g) is None
    assert LedgerEntry.objects.filter(generation_ref=g.public_id, kind=LedgerKind.RELEASE).count() == 1
    assert_consistent(wallet_of(teammate, team), START, 0)


def test_the_first_verdict_wins_a_capture_after_a_release_changes_nothing(team, teammate, gen_factory):
    g = gen_factory(estimate=2_000)
    release(g)
    assert capture(g, 2_000) is None
    assert_consistent(wallet_of(teammate, team), START, 0)


def test_a_release_after_a_capture_changes_nothing(team, teammate, gen_factory):
    g = gen_factory(estimate=2_000)
    capture(g, 1_500)
    assert release(g) is None
    assert_consistent(wallet_of(teammate, team), START - 1_500, 0)


def test_a_generation_without_a_reservation_has_nothing_to_capture(team, teammate, gen_factory):
    g = gen_factory(estimate=2_000, reserved=False)
    assert capture(g, 2_000) is None
    assert release(g) is None
    assert_consistent(wallet_of(teammate, team), START, 0)


def test_a_second_reservation_for_one_generation_changes_nothing(team, teammate, gen_factory):
    g = gen_factory(estimate=2_000)
    assert reserve(wallet_of(teammate, team), g, 2_000) is None
    assert_consistent(wallet_of(teammate, team), START - 2_000, 2_000)


def test_a_reservation_larger_than_the_wallet_is_refused_with_the_numbers(team, teammate):
    from tests.conftest import make_member

    user = make_member(team, "poor@acme.test", credits=500)
    with pytest.raises(InsufficientCredits) as refused:
        make_generation(team, user, estimate=1_200)
    assert str(refused.value) == "This needs 1,200 credits and you have 500 available."
    assert_consistent(wallet_of(user, team), 500, 0)


def test_a_deduction_cannot_take_a_wallet_below_zero(team, teammate):
    wallet = wallet_of(teammate, team)
    with pytest.raises(DeductionTooLarge, match="Cannot deduct 1,000,001 credits"):
        grant(wallet, -1_000_001, reason="too much")
    entry = grant(wallet, -1_000, reason="Correction")
    assert entry.kind == LedgerKind.ADJUST
    assert_consistent(wallet, START - 1_000, 0)


def test_a_zero_grant_is_refused(team, teammate):
    with pytest.raises(ValueError, match="must not be zero"):
        grant(wallet_of(teammate, team), 0)


def test_an_expired_generation_keeps_its_reservation_until_review_releases_it(team, owner, teammate, gen_factory):
    g = gen_factory(estimate=3_000, status=Status.EXPIRED, needs_review=True)
    assert_consistent(wallet_of(teammate, team), START - 3_000, 3_000)
    entry = resolve_review(g, action="release", actor=owner)
    assert entry.kind == LedgerKind.RELEASE and entry.actor == owner
    assert "Review by owner@acme.test" in entry.reason
    g.refresh_from_db()
    assert g.needs_review is False
    assert_consistent(wallet_of(teammate, team), START, 0)
    assert resolve_review(g, action="capture", actor=owner) is None  # already resolved


def test_review_capture_charges_the_estimate_by_default(team, owner, teammate, gen_factory):
    g = gen_factory(estimate=3_000, status=Status.EXPIRED, needs_review=True)
    resolve_review(g, action="capture", actor=owner)
    g.refresh_from_db()
    assert (g.needs_review, g.actual_cost) == (False, 3_000)
    assert_consistent(wallet_of(teammate, team), START - 3_000, 0)


def test_review_capture_can_charge_a_given_amount(team, owner, teammate, gen_factory):
    g = gen_factory(estimate=3_000, status=Status.EXPIRED, needs_review=True)
    resolve_review(g, action="capture", actor=owner, amount=1_200)
    g.refresh_from_db()
    assert g.actual_cost == 1_200
    assert_consistent(wallet_of(teammate, team), START - 1_200, 0)


def test_review_refuses_an_unknown_action(team, owner, gen_factory):
    g = gen_factory(estimate=3_000, status=Status.EXPIRED, needs_review=True)
    with pytest.raises(ValueError, match="Unknown review action"):
        resolve_review(g, action="forgive", actor=owner)
    g.refresh_from_db()
    assert g.needs_review is True


def test_verify_reports_a_tampered_wallet(team, teammate):
    from accounts.credits.models import Wallet

    wallet = wallet_of(teammate, team)
    Wallet.objects.filter(pk=wallet.pk).update(available=5)
    wrong = [c for c in verify() if not c.ok]
    assert [c.wallet.pk for c in wrong] == [wallet.pk]
    assert "wallet available 5" in wrong[0].describe()
    assert "ledger available 1,000,000" in wrong[0].describe()
