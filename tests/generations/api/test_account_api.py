"""GET /balance and GET /usage over real HTTP against gunicorn: the credits pages' figures."""

from __future__ import annotations

import pytest

from accounts.credits.services import budget_remaining, capture, monthly_spend, release, wallet_for
from accounts.credits.usage import UsageFilterForm, build_report
from accounts.models import Membership, Role, Team
from generations.models import Status
from tests.accounts.credits.conftest import make_generation, membership_of
from tests.conftest import make_member
from tests.generations.api.test_tokens_api import assert_problem

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def activity(team, owner, teammate, other_team, outsider):
    """Owner: a Shark job charged and a failed one. Teammate: a ShuttleAI job still running and
    one charged. Outsider (another team): a big one."""
    a = make_generation(team, owner, estimate=2_000, provider="shark", model="shark-image-1")
    capture(a, 1_800)
    b = make_generation(team, owner, estimate=2_000, provider="shark", model="shark-image-1", status=Status.FAILED)
    release(b)
    make_generation(team, teammate, estimate=3_000, provider="shuttleai", model="flux-dev", status=Status.RUNNING)
    c = make_generation(team, teammate, estimate=5_000, provider="shuttleai", model="flux-dev")
    capture(c, 5_500)
    theirs = make_generation(other_team, outsider, estimate=99_999, provider="shark", model="shark-image-1")
    capture(theirs, 99_999)


def test_the_balance_is_the_member_s_wallet_and_the_team_s_budget(call, token_for, teammate, team, activity):
    Team.objects.filter(pk=team.pk).update(monthly_budget=50_000)
    membership = membership_of(teammate, team)
    wallet = wallet_for(membership)
    wallet.refresh_from_db()
    answer = call("GET", "/balance", token_for(teammate, team, scopes=("read",)))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["available"]["credits"] == wallet.available == 1_000_000 - 3_000 - 5_500
    assert body["reserved"]["credits"] == wallet.reserved == 3_000
    assert body["spent_this_month"]["credits"] == monthly_spend(team, wallet=wallet) == 5_500
    team.refresh_from_db()
    assert body["team_budget"]["credits"] == 50_000
    assert body["team_budget_remaining"]["credits"] == budget_remaining(team) == 50_000 - 7_300 - 3_000
    assert body["available"]["usd"] == round(wallet.available / 10_000, 4)


def test_without_a_budget_the_budget_is_null(call, token_for, owner, team):
    body = call("GET", "/balance", token_for(owner, team, scopes=("read",))).json()
    assert body["team_budget"] is None and body["team_budget_remaining"] is None
    assert body["available"]["credits"] == 1_000_000 and body["reserved"]["credits"] == 0


def test_usage_is_for_owners_and_admins_only(call, token_for, teammate, team):
    body = assert_problem(call("GET", "/usage", token_for(teammate, team)), 403)
    assert "owners and admins" in body["detail"]


@pytest.mark.parametrize("query", ["", "period=month", "provider=shark", "MEMBER", "model=flux-dev&period=day"])
def test_usage_figures_are_build_report_s(call, token_for, owner, teammate, team, activity, query):
    admin = make_member(team, "admin@acme.test", Role.ADMIN)
    if query == "MEMBER":
        query = f"member={Membership.objects.get(user=teammate, team=team).public_id}"
    answer = call("GET", f"/usage?{query}", token_for(admin, team, scopes=("read",)))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    from django.http import QueryDict

    form = UsageFilterForm(QueryDict(query), team=team)
    assert form.is_valid()
    report = build_report(team, form.filters())
    assert (body["period"], body["start"], body["end"]) == (report.filters.period, report.filters.start.isoformat(),
                                                            report.filters.end.isoformat())
    total = body["total"]
    assert (total["jobs"], total["succeeded"], total["failed"], total["cancelled"], total["credits"]) == (
        report.total.jobs, report.total.succeeded, report.total.failed, report.total.cancelled, report.total.credits)
    assert [(r["member"], r["provider"], r["model"], r["jobs"], r["credits"]) for r in body["rows"]] == [
        (r.member, r.provider, r.model, r.jobs, r.credits) for r in report.rows]
    assert [(t["label"], t["credits"]) for t in body["by_member"]] == [(t.label, t.credits) for t in report.by_member]
    assert [(t["label"], t["jobs"]) for t in body["by_period"]] == [(t.label, t.jobs) for t in report.by_period]
    assert "outsider@rivals.test" not in answer.text


def test_usage_with_no_filter_counts_the_team_s_jobs_and_spend(call, token_for, owner, team, activity):
    total = call("GET", "/usage", token_for(owner, team)).json()["total"]
    assert (total["jobs"], total["succeeded"], total["failed"], total["credits"]) == (4, 2, 1, 7_300)
    assert total["failure_rate"] == pytest.approx(1 / 3)


@pytest.mark.parametrize(("query", "field"), [
    ("period=week", "period"), ("start=yesterday", "start"), ("end=2026-13-01", "end"),
    ("start=2026-05-02&end=2026-05-01", "start"), ("start=2020-01-01&end=2026-01-01", "start"),
    ("member=someone", "member"), ("provider=nobody", "provider"),
])
def test_bad_usage_filters_are_422_naming_the_field(call, token_for, owner, team, query, field):
    body = assert_problem(call("GET", f"/usage?{query}", token_for(owner, team)), 422)
    assert body["field"] == field, body


def test_balance_and_usage_need_the_read_scope(call, token_for, owner, team):
    token = token_for(owner, team, scopes=("generate", "share"))
    assert_problem(call("GET", "/balance", token), 403)
    assert_problem(call("GET", "/usage", token), 403)
