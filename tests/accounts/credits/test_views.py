"""The credits pages: my usage, a member's ledger, wallets, grants, settings and reviews."""

import pytest

from accounts.credits.models import LedgerEntry, LedgerKind
from accounts.credits.services import capture, release
from accounts.models import Role, Team
from generations.models import Status
from tests.accounts.credits.conftest import make_generation, membership_of, wallet_of
from tests.conftest import make_member


def html(response) -> str:
    return response.content.decode()


# My usage ------------------------------------------------------------------

def test_my_usage_lists_my_ledger_newest_first_with_running_totals(team, teammate, teammate_client):
    g = make_generation(team, teammate, estimate=3_000)
    capture(g, 2_500)
    response = teammate_client.get("/accounts/usage/")
    assert response.status_code == 200
    page = html(response)
    assert page.index("Cost 2,500; 500 of the 3,000 reserved released.") < page.index("test grant")
    assert "997,500" in page  # available after the capture
    assert '<div class="value" id="usage-month-spend">2,500</div>' in page
    assert '<div class="value" id="usage-available">997,500</div>' in page


def test_my_usage_says_deleted_for_a_generation_that_is_gone(team, teammate, teammate_client):
    g = make_generation(team, teammate, estimate=1_000, status=Status.FAILED)
    release(g)
    g.delete()
    page = html(teammate_client.get("/accounts/usage/"))
    assert '<span class="muted">deleted</span>' in page


def test_my_usage_shows_only_my_own_wallet(team, owner, teammate, outsider, outsider_client):
    make_generation(team, teammate, estimate=4_321)
    page = html(outsider_client.get("/accounts/usage/"))
    assert "4,321" not in page
    assert "Rival Films" in page


def test_my_usage_is_paginated(team, teammate, teammate_client):
    from accounts.credits.services import grant

    wallet = wallet_of(teammate, team)
    for i in range(55):
        grant(wallet, 1, reason=f"bonus {i}")
    first = html(teammate_client.get("/accounts/usage/"))
    assert "bonus 54" in first and "bonus 4<" not in first and "Page 1 of 2" in first
    second = html(teammate_client.get("/accounts/usage/?page=2"))
    assert "bonus 4<" in second and "test grant" in second


def test_my_usage_answers_htmx_with_the_ledger_fragment(team, teammate, teammate_client):
    response = teammate_client.get("/accounts/usage/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert html(response).lstrip().startswith('<div id="ledger">')
    assert "<html" not in html(response)


def test_anonymous_visitors_are_sent_to_sign_in(client, db):
    response = client.get("/accounts/usage/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# A member's ledger ------------------------------------------------------------

def test_a_manager_reads_a_members_ledger(team, owner, teammate, owner_client):
    make_generation(team, teammate, estimate=7_777)
    response = owner_client.get(f"/accounts/team/credits/{membership_of(teammate, team).public_id}/")
    assert response.status_code == 200
    assert "mate@acme.test" in html(response) and "7,777" in html(response)


def test_a_member_cannot_read_someone_elses_ledger(team, owner, teammate, teammate_client):
    response = teammate_client.get(f"/accounts/team/credits/{membership_of(owner, team).public_id}/")
    assert response.status_code == 403


def test_an_outsider_cannot_read_a_members_ledger(team, teammate, outsider, outsider_client):
    response = outsider_client.get(f"/accounts/team/credits/{membership_of(teammate, team).public_id}/")
    assert response.status_code == 404


# Header balance ---------------------------------------------------------------

def test_the_header_shows_my_available_credits_with_separators_and_dollars(team, teammate, teammate_client):
    make_generation(team, teammate, estimate=12_345)
    page = html(teammate_client.get("/accounts/usage/"))
    assert 'id="header-balance"' in page
    assert ('<span class="amount">987,655</span> <span class="unit">credits</span><span class="unit-short">cr</span>'
            ' <span class="usd">≈ $98.77</span>') in page


def test_the_header_marks_a_negative_balance(team):
    from django.test import Client

    user = make_member(team, "over@acme.test", credits=1_000)
    capture(make_generation(team, user, estimate=1_000), 1_250)
    client = Client()
    client.force_login(user)
    page = html(client.get("/accounts/usage/"))
    assert 'class="credits-balance negative"' in page
    assert '<span class="amount">-250</span>' in page
    assert "Below zero: a job cost more than its estimate." in page


# Wallets page and grants -----------------------------------------------------------

def test_a_manager_sees_every_wallet(team, owner, teammate, owner_client):
    make_generation(team, teammate, estimate=5_000, status=Status.RUNNING)
    response = owner_client.get("/accounts/team/credits/")
    assert response.status_code == 200
    row = html(response).split(f'id="wallet-{membership_of(teammate, team).public_id}"')[1].split("</tr>")[0]
    assert "995,000" in row and "5,000" in row


def test_a_member_cannot_open_the_wallets_page(teammate_client):
    assert teammate_client.get("/accounts/team/credits/").status_code == 403


def test_an_outsider_sees_only_their_own_teams_wallets(team, teammate, outsider, outsider_client):
    page = html(outsider_client.get("/accounts/team/credits/"))
    assert "outsider@rivals.test" in page and "mate@acme.test" not in page


def grant_data(team, user, amount="5000", reason="Storyboard sprint"):
    return {"member": str(membership_of(user, team).public_id), "amount": amount, "reason": reason}


def test_a_manager_grants_credits_with_a_reason(team, owner, teammate, owner_client):
    response = owner_client.post("/accounts/team/credits/grant/", grant_data(team, teammate))
    assert response.status_code == 302 and response["Location"] == "/accounts/team/credits/"
    entry = LedgerEntry.objects.filter(wallet=wallet_of(teammate, team)).first()
    assert (entry.kind, entry.available_delta, entry.reason, entry.actor) == (LedgerKind.GRANT, 5_000, "Storyboard sprint", owner)
    assert "Granted 5,000 credits to mate@acme.test." in html(owner_client.get("/accounts/team/credits/"))


def test_a_manager_deducts_credits(team, owner, teammate, owner_client):
    owner_client.post("/accounts/team/credits/grant/", grant_data(team, teammate, amount="-1000", reason="Correction"))
    assert wallet_of(teammate, team).available == 999_000
    assert LedgerEntry.objects.filter(wallet=wallet_of(teammate, team)).first().kind == LedgerKind.ADJUST


@pytest.mark.parametrize(("amount", "reason", "message"), [
    ("0", "x", "Enter a non-zero number of credits."),
    ("1.5", "x", "Enter a whole number."),
    ("lots", "x", "Enter a whole number."),
    ("100", "", "This field is required."),
    ("-2000000", "Too much", "Cannot deduct 2,000,000 credits: the wallet has 1,000,000 available."),
])
def test_a_bad_grant_is_refused_with_a_clear_error_and_changes_nothing(team, owner, teammate, owner_client,
                                                                          amount, reason, message):
    before = LedgerEntry.objects.count()
    response = owner_client.post("/accounts/team/credits/grant/", grant_data(team, teammate, amount, reason))
    assert response.status_code == 400
    assert message in html(response)
    assert LedgerEntry.objects.count() == before


def test_a_grant_without_a_member_is_refused(owner_client):
    response = owner_client.post("/accounts/team/credits/grant/", {"member": "nobody", "amount": "5", "reason": "x"})
    assert response.status_code == 400 and "Choose a member." in html(response)


def test_a_member_cannot_grant(team, teammate, teammate_client):
    response = teammate_client.post("/accounts/team/credits/grant/", grant_data(team, teammate))
    assert response.status_code == 403
    assert wallet_of(teammate, team).available == 1_000_000


def test_an_outsider_cannot_grant_to_our_members(team, teammate, outsider, outsider_client):
    response = outsider_client.post("/accounts/team/credits/grant/", grant_data(team, teammate))
    assert response.status_code == 404
    assert wallet_of(teammate, team).available == 1_000_000


def test_a_grant_without_csrf_token_is_refused(team, teammate, csrf_client):
    response = csrf_client.post("/accounts/team/credits/grant/", grant_data(team, teammate))
    assert response.status_code == 403
    assert wallet_of(teammate, team).available == 1_000_000


def test_an_admin_may_grant_too(team, teammate):
    from django.test import Client

    admin = make_member(team, "admin@acme.test", Role.ADMIN)
    client = Client()
    client.force_login(admin)
    assert client.post("/accounts/team/credits/grant/", grant_data(team, teammate)).status_code == 302
    assert wallet_of(teammate, team).available == 1_005_000


# Settings ----------------------------------------------------------------------

def test_a_manager_sets_the_budget_and_allowance(team, owner, owner_client):
    response = owner_client.post("/accounts/team/credits/settings/", {"monthly_budget": "2000000", "monthly_allowance": "50000"})
    assert response.status_code == 302
    team.refresh_from_db()
    assert (team.monthly_budget, team.monthly_allowance) == (2_000_000, 50_000)
    owner_client.post("/accounts/team/credits/settings/", {"monthly_budget": "", "monthly_allowance": ""})
    team.refresh_from_db()
    assert (team.monthly_budget, team.monthly_allowance) == (None, None)


def test_bad_settings_are_refused(team, owner, owner_client):
    response = owner_client.post("/accounts/team/credits/settings/", {"monthly_budget": "-5", "monthly_allowance": "0"})
    assert response.status_code == 400
    assert "Ensure this value is greater than or equal to 0." in html(response)
    team.refresh_from_db()
    assert team.monthly_budget is None


def test_a_member_cannot_change_settings(team, teammate_client):
    assert teammate_client.post("/accounts/team/credits/settings/", {"monthly_budget": "1"}).status_code == 403
    team.refresh_from_db()
    assert team.monthly_budget is None


def test_an_outsider_changes_only_their_own_team(team, other_team, outsider, outsider_client):
    outsider_client.post("/accounts/team/credits/settings/", {"monthly_budget": "1", "monthly_allowance": ""})
    assert Team.objects.get(pk=team.pk).monthly_budget is None
    assert Team.objects.get(pk=other_team.pk).monthly_budget == 1


def test_settings_need_a_csrf_token(team, csrf_client):
    assert csrf_client.post("/accounts/team/credits/settings/", {"monthly_budget": "1"}).status_code == 403


# Reviews ----------------------------------------------------------------------------

@pytest.fixture
def expired(team, teammate):
    return make_generation(team, teammate, estimate=3_000, status=Status.EXPIRED, needs_review=True,
                           error="No verdict from Shark AI within 15 minutes.")


def test_the_wallets_page_lists_generations_needing_review(expired, owner_client):
    page = html(owner_client.get("/accounts/team/credits/"))
    assert f'id="review-{expired.public_id}"' in page
    assert "No verdict from Shark AI within 15 minutes." in page


def test_a_manager_releases_a_reviewed_generation(team, teammate, expired, owner_client):
    response = owner_client.post(f"/accounts/team/credits/review/{expired.public_id}/", {"action": "release"})
    assert response.status_code == 302
    expired.refresh_from_db()
    assert expired.needs_review is False
    assert (wallet_of(teammate, team).available, wallet_of(teammate, team).reserved) == (1_000_000, 0)


def test_a_manager_charges_a_given_amount(team, teammate, expired, owner_client):
    owner_client.post(f"/accounts/team/credits/review/{expired.public_id}/", {"action": "capture", "amount": "1200"})
    assert (wallet_of(teammate, team).available, wallet_of(teammate, team).reserved) == (998_800, 0)
    assert "Charged 1,200 credits." in html(owner_client.get("/accounts/team/credits/"))


def test_a_bad_review_action_is_refused(team, teammate, expired, owner_client):
    response = owner_client.post(f"/accounts/team/credits/review/{expired.public_id}/", {"action": "forgive"})
    assert response.status_code == 400
    expired.refresh_from_db()
    assert expired.needs_review is True


def test_a_member_cannot_resolve_a_review(expired, teammate_client):
    assert teammate_client.post(f"/accounts/team/credits/review/{expired.public_id}/", {"action": "release"}).status_code == 403


def test_an_outsider_cannot_resolve_our_review(expired, outsider_client):
    assert outsider_client.post(f"/accounts/team/credits/review/{expired.public_id}/", {"action": "release"}).status_code == 404
    expired.refresh_from_db()
    assert expired.needs_review is True


def test_a_review_needs_a_csrf_token(expired, csrf_client):
    assert csrf_client.post(f"/accounts/team/credits/review/{expired.public_id}/", {"action": "release"}).status_code == 403
