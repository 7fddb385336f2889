"""The member's balance and, for owners and admins, the team's usage report.

The same services as the credits pages: the wallet and this month's spend as "My usage"
shows them, the team's budget as the Wallets page does, and the usage report from the Team
usage page's own form and ``build_report`` (``accounts.credits.usage``), so the figures agree.
"""

from __future__ import annotations

from ninja import Field, Query, Router, Schema

from accounts.credits import services as credit_services
from accounts.credits.usage import DAY, UsageFilterForm, build_report
from generations.api.auth import require_manager, require_scope
from generations.api.catalog import credits
from generations.api.problems import ApiProblem
from generations.api.schemas import AccountBalance, Problem, UsageReport

router = Router(tags=["Account and models"])


@router.get("/balance", response={200: AccountBalance, 401: Problem, 403: Problem},
            summary="The token member's credits, this month's spend and the team's budget",
            description="The member's wallet in the token's team: credits available and reserved for running "
                        "jobs, what their jobs were charged this calendar month, and the team's monthly budget "
                        "with what is left of it (null when the team has none). Scope: ``read``.")
def balance(request):
    require_scope(request, "read")
    membership = request.membership
    team = membership.team
    wallet = credit_services.wallet_for(membership)
    remaining = credit_services.budget_remaining(team)
    return {"available": credits(wallet.available), "reserved": credits(wallet.reserved),
            "spent_this_month": credits(credit_services.monthly_spend(team, wallet=wallet)),
            "team_budget": credits(team.monthly_budget) if team.monthly_budget is not None else None,
            "team_budget_remaining": credits(remaining) if remaining is not None else None}


class UsageQuery(Schema):
    """The Team usage page's query string (documented here; read by the page's own form)."""

    period: str | None = Field(None, description="day (default) or month.")
    start: str | None = Field(None, description="YYYY-MM-DD; default 30 days (or 12 months) before the end.")
    end: str | None = Field(None, description="YYYY-MM-DD, inclusive; default today.")
    member: str | None = Field(None, description="A membership id: one member's usage.")
    provider: str | None = Field(None, description="A provider's id.")
    model: str | None = Field(None, description="A model's id (without the provider).")


def _totals(t) -> dict:
    return {"label": t.label, "jobs": t.jobs, "succeeded": t.succeeded, "failed": t.failed, "cancelled": t.cancelled,
            "failure_rate": t.failure_rate, "credits": t.credits, "usd": round(t.usd, 4)}


@router.get("/usage", response={200: UsageReport, 401: Problem, 403: Problem, 422: Problem},
            summary="The team's usage report (owners and admins)",
            description="Jobs, their outcomes and credits charged, per day or month, member, provider and "
                        "model, with totals: the Team usage page's report, with its filters as the same "
                        "query-string parameters. A filter that is not acceptable is a 422 naming it. "
                        "Owners and admins only (403 for members). Scope: ``read``.")
def usage(request, filters: Query[UsageQuery]):
    require_scope(request, "read")
    require_manager(request)
    membership = request.membership
    form = UsageFilterForm(request.GET, team=membership.team)
    if not form.is_valid():
        # The form's own cross-field errors are all about the range (start after end, too long):
        # they name ``start``, the date a caller moves to fix them.
        errors = {("start" if name == "__all__" else name): " ".join(messages)
                  for name, messages in form.errors.items()}
        detail = "; ".join(f"{k}: {v}" if k else v for k, v in errors.items())
        raise ApiProblem(422, detail, errors=errors)
    report = build_report(membership.team, form.filters())
    f = report.filters
    fmt = "%Y-%m-%d" if f.period == DAY else "%Y-%m"
    return {
        "period": f.period, "start": f.start.isoformat(), "end": f.end.isoformat(),
        "member": str(f.member.public_id) if f.member else None,
        "provider": f.provider or None, "model": f.model or None,
        "rows": [{**{k: v for k, v in _totals(r).items() if k != "label"}, "period": r.period.strftime(fmt),
                  "member": r.member, "provider": r.provider, "model": r.model} for r in report.rows],
        "total": _totals(report.total),
        "by_period": [_totals(t) for t in report.by_period],
        "by_member": [_totals(t) for t in report.by_member],
        "by_provider": [_totals(t) for t in report.by_provider],
        "by_model": [_totals(t) for t in report.by_model],
    }
