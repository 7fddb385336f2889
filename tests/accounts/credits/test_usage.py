"""The team usage report: sums by member, provider and model, per day and month, the chart and CSV."""

import csv
import datetime as dt
import io

import pytest
from django.utils import timezone

from accounts.credits.models import LedgerEntry
from accounts.credits.services import capture, release
from generations.models import Generation, Status
from tests.accounts.credits.conftest import make_generation, membership_of


def html(response) -> str:
    return response.content.decode()


def table(page: str, table_id: str) -> dict[str, list[str]]:
    """The rows of one report table as {first cell: other cells}, tags stripped."""
    import re

    body = page.split(f'id="{table_id}"')[1].split("</table>")[0].split("<tbody>")[1]
    rows = {}
    for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = [re.sub(r"<div.*?</div>|<[^>]+>", "", td).strip() for td in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
        rows[cells[0]] = cells[1:]
    return rows


@pytest.fixture
def activity(team, owner, teammate, other_team, outsider):
    """Owner: two Shark jobs (one failed). Teammate: a ShuttleAI job and an expired one. Outsider: one."""
    a = make_generation(team, owner, estimate=2_000, provider="shark", model="shark-image-1")
    capture(a, 1_800)
    b = make_generation(team, owner, estimate=2_000, provider="shark", model="shark-image-1", status=Status.FAILED)
    release(b)
    c = make_generation(team, teammate, estimate=5_000, provider="shuttleai", model="flux-dev")
    capture(c, 5_500)
    make_generation(team, teammate, estimate=900, provider="shuttleai", model="flux-dev", status=Status.EXPIRED)
    theirs = make_generation(other_team, outsider, estimate=99_999, provider="shark", model="shark-image-1")
    capture(theirs, 99_999)


def test_the_report_sums_credits_and_jobs_by_member(activity, owner_client):
    response = owner_client.get("/accounts/team/usage/")
    assert response.status_code == 200
    rows = table(html(response), "by-member")
    # jobs, succeeded, failed, cancelled, failure rate, credits
    assert rows["owner@acme.test"] == ["2", "1", "1", "0", "50.0%", "1,800"]
    assert rows["mate@acme.test"] == ["2", "1", "1", "0", "50.0%", "5,500"]
    assert '<div class="value" id="usage-total-credits">7,300</div>' in html(response)
    assert '<div class="value" id="usage-total-jobs">4</div>' in html(response)


def test_the_report_sums_by_provider_and_model(activity, owner_client):
    page = html(owner_client.get("/accounts/team/usage/"))
    providers = table(page, "by-provider")
    assert providers["Shark AI"][-1] == "1,800" and providers["ShuttleAI"][-1] == "5,500"
    models = table(page, "by-model")
    assert [label.split(" · ")[0] for label in models] == ["ShuttleAI", "Shark AI"]  # most credits first
    assert next(iter(models.values()))[-1] == "5,500"


def test_cancelled_jobs_have_a_column_of_their_own_and_are_not_failures(team, owner, owner_client):
    """A model with 3 jobs, 2 succeeded and 1 cancelled: the third is neither missing nor a failure."""
    for _ in range(2):
        capture(make_generation(team, owner, provider="shark", model="shark-image-1"), 1_000)
    release(make_generation(team, owner, provider="shark", model="shark-image-1", status=Status.CANCELLED))
    response = owner_client.get("/accounts/team/usage/")
    page = html(response)
    # jobs, succeeded, failed, cancelled, failure rate, credits
    assert list(table(page, "by-model").values()) == [["3", "2", "0", "1", "0.0%", "2,000"]]
    assert table(page, "by-member")["owner@acme.test"] == ["3", "2", "0", "1", "0.0%", "2,000"]
    assert table(page, "by-period")[f"{timezone.localdate():%Y-%m-%d}"] == ["3", "0", "1", "2,000"]
    assert '<div class="muted small" id="usage-total-outcomes">2 succeeded, 0 failed, 1 cancelled</div>' in page
    records = list(csv.reader(io.StringIO(owner_client.get("/accounts/team/usage.csv").content.decode())))
    assert [dict(zip(records[0], r, strict=True))["cancelled"] for r in records[1:]] == ["1"]


def test_the_report_never_includes_another_team(activity, owner_client):
    assert "99,999" not in html(owner_client.get("/accounts/team/usage/"))


def test_an_outsider_sees_only_their_own_teams_report(activity, outsider_client):
    page = html(outsider_client.get("/accounts/team/usage/"))
    assert table(page, "by-member") == {"outsider@rivals.test": ["1", "1", "0", "0", "0.0%", "99,999"]}


def test_a_member_cannot_see_the_team_report(activity, teammate_client):
    assert teammate_client.get("/accounts/team/usage/").status_code == 403
    assert teammate_client.get("/accounts/team/usage.csv").status_code == 403


def test_the_report_filters_by_member_and_provider(team, teammate, activity, owner_client):
    mate = membership_of(teammate, team).public_id
    page = html(owner_client.get(f"/accounts/team/usage/?member={mate}"))
    assert list(table(page, "by-member")) == ["mate@acme.test"]
    page = html(owner_client.get("/accounts/team/usage/?provider=shark"))
    assert list(table(page, "by-provider")) == ["Shark AI"]


def test_the_chart_is_server_side_svg_with_one_bar_per_day(activity, owner_client):
    page = html(owner_client.get("/accounts/team/usage/"))
    svg = page.split('<svg class="usage-chart"')[1].split("</svg>")[0]
    assert svg.count("<rect ") == 30
    today = timezone.localdate()
    assert f"{today:%a} {today.day} {today:%b %Y}: 7,300 credits, 4 jobs" in svg
    assert "style=" not in page and "<script>" not in page


def test_the_report_groups_per_month(team, owner, owner_client):
    g = make_generation(team, owner, estimate=1_000)
    capture(g, 1_000)
    past = timezone.now() - dt.timedelta(days=62)
    Generation.objects.filter(pk=g.pk).update(created=past)
    LedgerEntry.objects.filter(generation_ref=g.public_id).update(created=past)
    page = html(owner_client.get("/accounts/team/usage/?period=month"))
    svg = page.split('<svg class="usage-chart"')[1].split("</svg>")[0]
    assert svg.count("<rect ") == 12
    assert table(page, "by-period") == {f"{timezone.localtime(past):%Y-%m}": ["1", "0", "0", "1,000"]}


@pytest.mark.parametrize(("query", "message"), [
    ("period=week", "Period: Select a valid choice. week is not one of the available choices."),
    ("start=2026-13-01", "From: Enter a valid date."),
    ("start=2026-05-02&end=2026-05-01", "The start date must be on or before the end date."),
    ("start=2020-01-01&end=2026-01-01", "Per day, a report covers at most 366 days; choose per month for longer."),
    ("member=not-ours", "Member: Select a valid choice."),
])
def test_bad_filters_get_a_400_with_the_reason(owner_client, query, message):
    response = owner_client.get(f"/accounts/team/usage/?{query}")
    assert response.status_code == 400
    assert message in html(response)
    assert owner_client.get(f"/accounts/team/usage.csv?{query}").status_code == 400


def test_htmx_gets_only_the_report(activity, owner_client):
    response = owner_client.get("/accounts/team/usage/?period=month", headers={"HX-Request": "true"})
    assert html(response).lstrip().startswith('<div id="usage-report">')
    assert response["Vary"].find("HX-Request") >= 0


def test_the_csv_export_has_one_row_per_day_member_provider_and_model(activity, owner_client):
    response = owner_client.get("/accounts/team/usage.csv?period=day")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    today = timezone.localdate()
    start = today - dt.timedelta(days=29)
    assert response["Content-Disposition"] == (
        f'attachment; filename="kiln-usage-acme-day-{start:%Y%m%d}-{today:%Y%m%d}.csv"')
    records = list(csv.reader(io.StringIO(response.content.decode())))
    assert records[0] == ["period", "member", "provider", "model", "jobs", "succeeded", "failed", "cancelled",
                          "failure_rate", "credits", "usd"]
    assert sorted(records[1:]) == sorted([
        [today.isoformat(), "mate@acme.test", "shuttleai", "flux-dev", "2", "1", "1", "0", "0.5000", "5500", "0.5500"],
        [today.isoformat(), "owner@acme.test", "shark", "shark-image-1", "2", "1", "1", "0", "0.5000", "1800", "0.1800"],
    ])


def test_the_csv_export_follows_the_filters(team, teammate, activity, owner_client):
    mate = membership_of(teammate, team).public_id
    response = owner_client.get(f"/accounts/team/usage.csv?period=month&member={mate}")
    records = list(csv.reader(io.StringIO(response.content.decode())))
    assert [r[1] for r in records[1:]] == ["mate@acme.test"]
    assert records[1][0] == f"{timezone.localdate():%Y-%m}"


def test_spend_of_a_deleted_generation_still_counts(team, owner, owner_client):
    g = make_generation(team, owner, estimate=1_000)
    capture(g, 1_000)
    g.delete()
    page = html(owner_client.get("/accounts/team/usage/"))
    assert table(page, "by-model")["(deleted)"][-1] == "1,000"
    assert table(page, "by-member")["owner@acme.test"][-1] == "1,000"
