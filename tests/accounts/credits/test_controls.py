"""Team controls: the monthly allowance (a beat task) and the monthly budget."""

import datetime as dt

import pytest

from accounts.credits.models import LedgerEntry, LedgerKind
from accounts.credits.services import (
    BudgetExceeded,
    apply_monthly_allowance,
    capture,
    check_budget,
    monthly_spend,
    verify,
)
from accounts.models import Role
from accounts.tasks import monthly_allowance
from generations.models import Status
from tests.accounts.credits.conftest import make_generation, wallet_of
from tests.conftest import make_member


def test_the_allowance_tops_wallets_up_once_per_month(team):
    team.monthly_allowance = 50_000
    team.save()
    rich = make_member(team, "rich@acme.test", credits=80_000)
    poor = make_member(team, "poor@acme.test", credits=10_000)
    nov = dt.date(2026, 11, 1)
    assert apply_monthly_allowance(team, nov) == 2
    assert wallet_of(poor, team).available == 50_000
    assert wallet_of(rich, team).available == 80_000  # already above: nothing taken away

    make_generation(team, poor, estimate=20_000, status=Status.SUCCEEDED)
    assert apply_monthly_allowance(team, dt.date(2026, 11, 20)) == 0  # same month: nothing changes
    assert wallet_of(poor, team).available == 30_000
    assert LedgerEntry.objects.filter(kind=LedgerKind.ALLOWANCE, idempotency_key="allowance:2026-11").count() == 2

    assert apply_monthly_allowance(team, dt.date(2026, 12, 1)) == 2  # a new month tops up again
    assert wallet_of(poor, team).available == 50_000
    assert all(check.ok for check in verify())


def test_the_beat_task_applies_the_current_month_to_teams_with_an_allowance(team, other_team):
    team.monthly_allowance = 7_000
    team.save()
    member = make_member(team, "new@acme.test")
    outsider = make_member(other_team, "someone@rivals.test")
    assert monthly_allowance() == 1
    assert monthly_allowance() == 0
    assert wallet_of(member, team).available == 7_000
    assert wallet_of(outsider, other_team).available == 0


def test_a_removed_member_gets_no_allowance(team):
    from django.utils import timezone

    from tests.accounts.credits.conftest import membership_of

    team.monthly_allowance = 7_000
    team.save()
    gone = make_member(team, "gone@acme.test")
    membership = membership_of(gone, team)
    membership.removed_at = timezone.now()
    membership.save()
    assert apply_monthly_allowance(team) == 0


def test_the_budget_refuses_what_the_team_cannot_afford_this_month(team, owner, teammate):
    team.monthly_budget = 10_000
    team.save()
    spent = make_generation(team, teammate, estimate=6_000)
    capture(spent, 6_000)
    make_generation(team, owner, estimate=3_000, status=Status.RUNNING)  # reserved counts too
    assert monthly_spend(team) == 6_000
    check_budget(team, 1_000)
    with pytest.raises(BudgetExceeded) as refused:
        check_budget(team, 1_001)
    assert str(refused.value) == "This needs 1,001 credits and the team's monthly budget has 1,000 left."


def test_a_team_without_budget_is_never_refused(team, teammate):
    check_budget(team, 10**12)


def test_monthly_spend_counts_only_that_month_and_that_team(team, other_team, teammate, outsider):
    g = make_generation(team, teammate, estimate=2_000)
    capture(g, 1_500)
    theirs = make_generation(other_team, outsider, estimate=900)
    capture(theirs, 900)
    assert monthly_spend(team) == 1_500
    assert monthly_spend(other_team) == 900
    assert monthly_spend(team, dt.date(2001, 1, 1)) == 0


def test_a_manager_role_does_not_change_the_allowance(team):
    team.monthly_allowance = 1_000
    team.save()
    admin = make_member(team, "admin@acme.test", Role.ADMIN)
    apply_monthly_allowance(team)
    assert wallet_of(admin, team).available == 1_000
