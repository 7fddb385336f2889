"""Credits views: my usage, a member's ledger, team usage (+ CSV), wallets, grants and reviews.

Members see their own ledger. Owners and admins see the team's usage and
wallets, grant or deduct credits with a reason, set the monthly budget and
allowance, and settle generations that expired and need review. Every change
goes through ``accounts.credits.services``.
"""

from __future__ import annotations

import csv
import uuid
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import F, Sum, Window
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from accounts.credits import services as credits
from accounts.credits.forms import CreditSettingsForm, GrantForm, ReviewForm
from accounts.credits.models import Wallet
from accounts.credits.usage import UsageFilterForm, build_report, csv_records
from accounts.models import Membership
from accounts.teams import require_manager, require_membership
from generations.models import Generation

LEDGER_PAGE_SIZE = 50
REVIEW_LIMIT = 200


# My usage and a member's ledger ------------------------------------------------

def ledger_entries(wallet: Wallet):
    """The wallet's entries, newest first, each with the balance after it (running totals)."""
    running = {"order_by": [F("created").asc(), F("id").asc()]}
    return (wallet.entries.select_related("generation", "actor")
            .annotate(available_after=Window(Sum("available_delta"), **running),
                      reserved_after=Window(Sum("reserved_delta"), **running))
            .order_by("-created", "-id"))


def _render_ledger(request: HttpRequest, membership: Membership, subject: Membership) -> HttpResponse:
    wallet = credits.wallet_for(subject)
    page = Paginator(ledger_entries(wallet), LEDGER_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "subject": subject,
        "is_self": subject.pk == membership.pk,
        "wallet": wallet,
        "page": page,
        "month_spend": credits.monthly_spend(subject.team, wallet=wallet),
    }
    template = "accounts/credits/ledger.html#ledger" if request.htmx else "accounts/credits/ledger.html"
    return render(request, template, context)


@require_GET
@login_required
@vary_on_headers("HX-Request")
def my_usage(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)
    return _render_ledger(request, membership, membership)


@require_GET
@login_required
@vary_on_headers("HX-Request")
def member_ledger(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_manager(request)
    subject = get_object_or_404(Membership.objects.select_related("user", "team"),
                                team_id=membership.team_id, public_id=public_id)
    return _render_ledger(request, membership, subject)


# Team usage -------------------------------------------------------------------

@require_GET
@login_required
@vary_on_headers("HX-Request")
def team_usage(request: HttpRequest) -> HttpResponse:
    membership = require_manager(request)
    form = UsageFilterForm(request.GET, team=membership.team)
    context = {"form": form, "report": None}
    status = 200
    if form.is_valid():
        report = build_report(membership.team, form.filters())
        query = report.filters.query()
        form.data = {**form.data.dict(), **query}  # show the dates the report used, defaults included
        context.update(report=report, query=urlencode(query))
    else:
        status = 400
    template = "accounts/credits/team_usage.html#report" if request.htmx else "accounts/credits/team_usage.html"
    return render(request, template, context, status=status)


@require_GET
@login_required
def team_usage_csv(request: HttpRequest) -> HttpResponse:
    membership = require_manager(request)
    form = UsageFilterForm(request.GET, team=membership.team)
    if not form.is_valid():
        errors = "; ".join(str(e) for errs in form.errors.values() for e in errs)
        return HttpResponseBadRequest(f"Bad report filters: {errors}", content_type="text/plain; charset=utf-8")
    report = build_report(membership.team, form.filters())
    f = report.filters
    filename = f"kiln-usage-{membership.team.slug}-{f.period}-{f.start:%Y%m%d}-{f.end:%Y%m%d}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    csv.writer(response).writerows(csv_records(report))
    return response


# Wallets: grants, settings, reviews -----------------------------------------------

def _render_wallets(request: HttpRequest, membership: Membership, *, grant_form=None, grant_member=None,
                    settings_form=None, review_errors=None, status=200) -> HttpResponse:
    team = membership.team
    members = (Membership.objects.active().filter(team=team).select_related("user", "wallet")
               .order_by("user__email"))
    reviews = list(Generation.objects.filter(team=team, needs_review=True).select_related("author")
                   .order_by("created")[:REVIEW_LIMIT])
    for g in reviews:
        g.held = credits.held_for(g)
    return render(request, "accounts/credits/wallets.html", {
        "members": members,
        "grant_form": grant_form or GrantForm(),
        "grant_member": grant_member,
        "settings_form": settings_form or CreditSettingsForm(instance=team),
        "reviews": reviews,
        "review_errors": review_errors,
        "month_spend": credits.monthly_spend(team),
        "team_reserved": credits.team_reserved(team),
        "budget_remaining": credits.budget_remaining(team),
    }, status=status)


@require_GET
@login_required
def wallets(request: HttpRequest) -> HttpResponse:
    return _render_wallets(request, require_manager(request))


def _uuid_or_none(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except (TypeError, ValueError):
        return None


@require_POST
@login_required
def grant(request: HttpRequest) -> HttpResponse:
    membership = require_manager(request)
    member_id = _uuid_or_none(request.POST.get("member", ""))
    if member_id is None:
        form = GrantForm(request.POST)
        form.is_valid()
        form.add_error(None, "Choose a member.")
        return _render_wallets(request, membership, grant_form=form, status=400)
    target = get_object_or_404(Membership.objects.active().select_related("user"),
                               team_id=membership.team_id, public_id=member_id)
    form = GrantForm(request.POST)
    if not form.is_valid():
        return _render_wallets(request, membership, grant_form=form, grant_member=target, status=400)
    amount, reason = form.cleaned_data["amount"], form.cleaned_data["reason"]
    try:
        credits.grant(credits.wallet_for(target), amount, actor=request.user, reason=reason)
    except credits.DeductionTooLarge as exc:
        form.add_error("amount", str(exc))
        return _render_wallets(request, membership, grant_form=form, grant_member=target, status=400)
    if amount > 0:
        messages.success(request, f"Granted {amount:,} credits to {target.user.email}.")
    else:
        messages.success(request, f"Deducted {-amount:,} credits from {target.user.email}.")
    return redirect("accounts:wallets")


@require_POST
@login_required
def credit_settings(request: HttpRequest) -> HttpResponse:
    membership = require_manager(request)
    form = CreditSettingsForm(request.POST, instance=membership.team)
    if not form.is_valid():
        return _render_wallets(request, membership, settings_form=form, status=400)
    form.save()
    messages.success(request, "Credit settings saved.")
    return redirect("accounts:wallets")


@require_POST
@login_required
def review(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_manager(request)
    generation = get_object_or_404(Generation, team_id=membership.team_id, public_id=public_id)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        return _render_wallets(request, membership, review_errors={generation.public_id: form.errors}, status=400)
    action, amount = form.cleaned_data["action"], form.cleaned_data["amount"]
    if not generation.needs_review:
        messages.info(request, "That generation was already settled.")
        return redirect("accounts:wallets")
    entry = credits.resolve_review(generation, action=action, actor=request.user,
                                   amount=amount if action == "capture" else None)
    if entry is None:
        messages.info(request, "Nothing was held for that generation any more; it is marked as reviewed.")
    elif action == "release":
        messages.success(request, f"Released {entry.available_delta:,} credits.")
    else:
        messages.success(request, f"Charged {-(entry.available_delta + entry.reserved_delta):,} credits.")
    return redirect("accounts:wallets")


urlpatterns = [
    path("usage/", my_usage, name="my_usage"),
    path("team/usage/", team_usage, name="team_usage"),
    path("team/usage.csv", team_usage_csv, name="team_usage_csv"),
    path("team/credits/", wallets, name="wallets"),
    path("team/credits/grant/", grant, name="credits_grant"),
    path("team/credits/settings/", credit_settings, name="credits_settings"),
    path("team/credits/review/<uuid:public_id>/", review, name="credits_review"),
    path("team/credits/<uuid:public_id>/", member_ledger, name="member_ledger"),
]
