"""The Django admin: a read-only ledger, wallets with a grant action, and the review list."""

import pytest
from django.test import Client
from django.utils import timezone

from accounts.credits.models import LedgerEntry, LedgerKind, Wallet
from accounts.credits.services import capture
from accounts.models import User
from generations.models import Status
from tests.accounts.credits.conftest import make_generation, wallet_of


@pytest.fixture
def admin_client(db):
    superuser = User.objects.create_superuser("root@kiln.test", "pw-for-the-admin-42")
    client = Client()
    client.force_login(superuser)
    client.superuser = superuser
    return client


def test_the_ledger_is_listed_and_searchable_by_email_and_generation(team, teammate, owner, admin_client):
    g = make_generation(team, teammate, estimate=2_000)
    capture(g, 2_000)
    page = admin_client.get("/admin/accounts/ledgerentry/?q=mate@acme.test").content.decode()
    assert "mate@acme.test" in page and "owner@acme.test" not in page
    page = admin_client.get(f"/admin/accounts/ledgerentry/?q={g.public_id}").content.decode()
    assert "2 ledger entries" in page
    assert admin_client.get("/admin/accounts/ledgerentry/?kind__exact=capture").status_code == 200


def test_the_ledger_cannot_be_added_changed_or_deleted(team, teammate, admin_client):
    entry = LedgerEntry.objects.get(wallet=wallet_of(teammate, team))
    assert admin_client.get("/admin/accounts/ledgerentry/add/").status_code == 403
    response = admin_client.post(f"/admin/accounts/ledgerentry/{entry.pk}/change/", {"available_delta": "999"})
    assert response.status_code == 403
    assert admin_client.post(f"/admin/accounts/ledgerentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    entry.refresh_from_db()
    assert entry.available_delta == 1_000_000


def test_the_grant_action_asks_for_amount_and_reason_then_writes_the_ledger(team, owner, teammate, admin_client):
    wallets = [wallet_of(owner, team).pk, wallet_of(teammate, team).pk]
    ask = admin_client.post("/admin/accounts/wallet/", {"action": "grant_credits", "_selected_action": wallets})
    assert ask.status_code == 200 and "Grant or deduct credits" in ask.content.decode()
    assert LedgerEntry.objects.count() == 2  # nothing yet

    refused = admin_client.post("/admin/accounts/wallet/", {"action": "grant_credits", "_selected_action": wallets,
                                                            "apply": "Apply", "amount": "0", "reason": ""})
    assert "Enter a non-zero number of credits." in refused.content.decode()

    done = admin_client.post("/admin/accounts/wallet/", {"action": "grant_credits", "_selected_action": wallets,
                                                         "apply": "Apply", "amount": "3000", "reason": "Launch week"},
                             follow=True)
    assert "Granted 3,000 credits on 2 wallet(s)." in done.content.decode()
    assert Wallet.objects.get(pk=wallets[1]).available == 1_003_000
    entry = LedgerEntry.objects.filter(wallet_id=wallets[1]).first()
    assert (entry.kind, entry.reason, entry.actor) == (LedgerKind.GRANT, "Launch week", admin_client.superuser)


def test_wallet_balances_cannot_be_edited_in_the_admin(team, teammate, admin_client):
    wallet = wallet_of(teammate, team)
    admin_client.post(f"/admin/accounts/wallet/{wallet.pk}/change/", {"available": "5"})
    wallet.refresh_from_db()
    assert wallet.available == 1_000_000


def test_the_review_list_shows_only_generations_needing_review_and_settles_them(team, teammate, admin_client):
    flagged = make_generation(team, teammate, estimate=3_000, status=Status.EXPIRED, needs_review=True)
    other = make_generation(team, teammate, estimate=1_000, status=Status.RUNNING)
    page = admin_client.get("/admin/accounts/generationreview/").content.decode()
    assert str(flagged.public_id) in page and str(other.public_id) not in page

    admin_client.post("/admin/accounts/generationreview/", {"action": "charge_estimate",
                                                            "_selected_action": [flagged.pk]})
    flagged.refresh_from_db()
    assert flagged.needs_review is False and flagged.actual_cost == 3_000
    wallet = wallet_of(teammate, team)
    assert (wallet.available, wallet.reserved) == (1_000_000 - 3_000 - 1_000, 1_000)


def test_the_review_release_action_returns_the_credits(team, teammate, admin_client):
    flagged = make_generation(team, teammate, estimate=3_000, status=Status.EXPIRED, needs_review=True)
    admin_client.post("/admin/accounts/generationreview/", {"action": "release_credits", "_selected_action": [flagged.pk]})
    wallet = wallet_of(teammate, team)
    assert (wallet.available, wallet.reserved) == (1_000_000, 0)


def test_staff_without_the_wallet_permission_cannot_move_credits(team, teammate):
    from django.contrib.auth.models import Permission

    staff = User.objects.create_user("staff@kiln.test", "pw-for-the-staff-42", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_wallet"))
    client = Client()
    client.force_login(staff)
    wallet = wallet_of(teammate, team)
    client.post("/admin/accounts/wallet/", {"action": "grant_credits", "_selected_action": [wallet.pk],
                                            "apply": "Apply", "amount": "3000", "reason": "sneaky"})
    wallet.refresh_from_db()
    assert wallet.available == 1_000_000


def test_the_admin_deletes_only_generations_whose_credits_are_settled(team, teammate, admin_client,
                                                                      django_capture_on_commit_callbacks):
    from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

    from generations.models import Generation

    done = make_generation(team, teammate, estimate=500)
    capture(done, 500)
    running = make_generation(team, teammate, estimate=700, status=Status.RUNNING)
    expired = make_generation(team, teammate, estimate=900, status=Status.EXPIRED, needs_review=True)
    wallet = wallet_of(teammate, team)
    wallet.refresh_from_db()
    assert wallet.reserved == 700 + 900

    for g, reason in ((running, "still in progress"), (expired, "waiting for an operator")):
        response = admin_client.get(f"/admin/generations/generation/{g.pk}/delete/", follow=True)
        assert response.redirect_chain[-1][0] == f"/admin/generations/generation/{g.pk}/change/"
        assert "Not deleted: " in response.content.decode() and reason in response.content.decode()
        admin_client.post(f"/admin/generations/generation/{g.pk}/delete/", {"post": "yes"})
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post("/admin/generations/generation/", {
            "action": "delete_selected", "post": "yes",
            ACTION_CHECKBOX_NAME: [done.pk, running.pk, expired.pk]}, follow=True)
    page = response.content.decode()
    assert "Not deleted (2)" in page and "still in progress" in page and "waiting for an operator" in page
    assert set(Generation.objects.values_list("pk", flat=True)) == {running.pk, expired.pk}
    wallet.refresh_from_db()
    assert wallet.reserved == 700 + 900  # still held, still visible, still reviewable


# ---------------------------------------------------------------------------
# The usage report in the admin


def admin_table(page: str, table_id: str) -> dict[str, list[str]]:
    import re

    body = page.split(f'id="{table_id}"')[1].split("</table>")[0].split("<tbody>")[1]
    rows = {}
    for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = [re.sub(r"<[^>]+>", "", td).strip() for td in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
        rows[cells[0]] = cells[1:]
    return rows


@pytest.fixture
def usage(team, owner, teammate, other_team, outsider):
    """Acme: two succeeded (one each), one failed, one cancelled. Rivals: one succeeded."""
    capture(make_generation(team, owner, estimate=2_000), 1_800)
    capture(make_generation(team, teammate, estimate=1_000, provider="shuttleai", model="flux-dev"), 1_000)
    make_generation(team, teammate, status=Status.FAILED, reserved=False)
    make_generation(team, owner, status=Status.CANCELLED, reserved=False)
    capture(make_generation(other_team, outsider, estimate=5_000), 5_000)


def test_the_ledger_links_to_the_usage_report(admin_client, usage):
    page = admin_client.get("/admin/accounts/ledgerentry/").content.decode()
    assert 'href="/admin/accounts/ledgerentry/usage/">Usage report</a>' in page


def test_the_admin_usage_report_covers_every_team_with_cancelled_jobs_apart(admin_client, usage):
    response = admin_client.get("/admin/accounts/ledgerentry/usage/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "All teams" in page and "5 jobs (3 succeeded, 1 failed, 1 cancelled), 7,800 credits" in page
    # jobs, succeeded, failed, cancelled, failure rate, credits
    assert admin_table(page, "by-team") == {
        "Rival Films": ["1", "1", "0", "0", "0.0%", "5,000 ($0.50)"],
        "Acme Studio": ["4", "2", "1", "1", "33.3%", "2,800 ($0.28)"],
    }
    assert admin_table(page, "by-member")["owner@acme.test · Acme Studio"][:4] == ["2", "1", "0", "1"]


def test_the_admin_usage_report_of_one_team(admin_client, usage):
    page = admin_client.get("/admin/accounts/ledgerentry/usage/?team=acme&period=month").content.decode()
    assert "by-team" not in page
    assert set(admin_table(page, "by-member")) == {"owner@acme.test", "mate@acme.test"}
    assert "Rival" not in page.split('id="usage-summary"')[1]
    assert admin_table(page, "by-period")[f"{timezone.localdate():%Y-%m}"][:4] == ["4", "2", "1", "1"]


def test_the_admin_usage_report_exports_csv_with_the_team(admin_client, usage):
    import csv
    import io

    response = admin_client.get("/admin/accounts/ledgerentry/usage/?format=csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="kiln-usage-all-teams-day-' in response["Content-Disposition"]
    records = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {r["team"] for r in records} == {"Acme Studio", "Rival Films"}
    assert sum(int(r["cancelled"]) for r in records) == 1


def test_the_admin_usage_report_refuses_bad_filters_and_needs_the_ledger_permission(admin_client, usage, db):
    response = admin_client.get("/admin/accounts/ledgerentry/usage/?start=2026-05-02&end=2026-05-01")
    assert response.status_code == 400
    assert "The start date must be on or before the end date." in response.content.decode()

    staff = User.objects.create_user("staff@kiln.test", "pw-for-the-admin-42", is_staff=True)
    client = Client()
    client.force_login(staff)
    assert client.get("/admin/accounts/ledgerentry/usage/").status_code == 403
    anonymous = Client().get("/admin/accounts/ledgerentry/usage/")
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
