"""``manage.py credits``: grant, balance, verify, and exit statuses."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.credits.models import LedgerEntry, LedgerKind, Wallet
from tests.accounts.credits.conftest import wallet_of


def run(*args):
    out = StringIO()
    call_command("credits", *args, stdout=out)
    return out.getvalue()


def test_grant_adds_credits_with_the_reason_in_the_ledger(team, teammate):
    out = run("grant", "--team", "acme", "--user", "MATE@acme.test", "--amount", "25000", "--reason", "Project X")
    assert "Granted 25,000 credits to mate@acme.test in acme; available now 1,025,000." in out
    entry = LedgerEntry.objects.filter(wallet=wallet_of(teammate, team)).first()
    assert (entry.kind, entry.available_delta, entry.reason) == (LedgerKind.GRANT, 25_000, "Project X")


def test_a_negative_amount_deducts_as_an_adjustment(team, teammate):
    out = run("grant", "--team", "acme", "--user", "mate@acme.test", "--amount", "-400", "--reason", "Refund error")
    assert "Deducted 400 credits from mate@acme.test" in out
    assert LedgerEntry.objects.filter(wallet=wallet_of(teammate, team)).first().kind == LedgerKind.ADJUST


@pytest.mark.parametrize(("args", "message"), [
    (["--team", "nope", "--user", "mate@acme.test", "--amount", "5", "--reason", "x"], "No team with slug 'nope'"),
    (["--team", "acme", "--user", "who@acme.test", "--amount", "5", "--reason", "x"], "who@acme.test is not a member of acme"),
    (["--team", "acme", "--user", "outsider@rivals.test", "--amount", "5", "--reason", "x"], "is not a member of acme"),
    (["--team", "acme", "--user", "mate@acme.test", "--amount", "0", "--reason", "x"], "non-zero whole number"),
    (["--team", "acme", "--user", "mate@acme.test", "--amount", "1.5", "--reason", "x"], "non-zero whole number"),
    (["--team", "acme", "--user", "mate@acme.test", "--amount", "5"], "--reason is required"),
    (["--team", "acme", "--user", "mate@acme.test", "--amount", "5", "--reason", "  "], "--reason is required"),
    (["--team", "acme", "--user", "mate@acme.test", "--amount", "-2000000", "--reason", "x"], "Cannot deduct 2,000,000"),
])
def test_bad_input_exits_2_and_changes_nothing(team, teammate, outsider, args, message):
    before = LedgerEntry.objects.count()
    with pytest.raises(CommandError, match=message) as failed:
        run("grant", *args)
    assert failed.value.returncode == 2
    assert LedgerEntry.objects.count() == before


def test_balance_lists_every_member(team, owner, teammate):
    out = run("balance", "--team", "acme")
    lines = out.splitlines()
    assert lines[0].split() == ["member", "available", "reserved"]
    assert lines[1].split() == ["mate@acme.test", "1,000,000", "0"]
    assert lines[2].split() == ["owner@acme.test", "1,000,000", "0"]
    assert "2 member(s); 2,000,000 credits available (≈ $200.00)." in out


def test_balance_for_one_member(team, owner, teammate):
    out = run("balance", "--team", "acme", "--user", "owner@acme.test")
    assert "owner@acme.test" in out and "mate@acme.test" not in out


def test_verify_passes_on_honest_wallets(team, owner, teammate):
    assert "All 2 wallet(s) match their ledger." in run("verify")


def test_verify_exits_1_on_a_tampered_wallet(team, owner, teammate):
    Wallet.objects.filter(pk=wallet_of(teammate, team).pk).update(available=1)
    out = StringIO()
    with pytest.raises(CommandError, match="1 of 2 wallet") as failed:
        call_command("credits", "verify", stdout=out)
    assert failed.value.returncode == 1
    assert "DIFFERS acme mate@acme.test: wallet available 1 reserved 0; ledger available 1,000,000" in out.getvalue()
