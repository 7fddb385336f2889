"""Django admin for credits: the ledger (read-only) and the usage report made from it,
wallets with a "grant credits" action, and generations needing review. Imported by
``accounts.admin``.

Nothing here writes a wallet or an entry directly: grants and reviews go through
``accounts.credits.services`` like everywhere else, so the ledger stays honest.
"""

import csv
import uuid
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from accounts.credits import services as credits
from accounts.credits.forms import MAX_GRANT
from accounts.credits.models import GenerationReview, LedgerEntry, Wallet
from accounts.credits.usage import UsageFilterForm, build_report, csv_records, group
from accounts.models import Team


def can_move_credits(request) -> bool:
    return request.user.has_perm("accounts.change_wallet")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Money rows are only ever changed by accounts.credits.services: the admin shows them, and its
    actions (grant, release, capture) go through that module."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AdminUsageForm(UsageFilterForm):
    """The team usage report's filters, plus which team: every team when none is chosen
    (the member filter then offers everyone only: members belong to a team)."""

    team = forms.ChoiceField(required=False, label="Team")

    def __init__(self, data):
        teams = list(Team.objects.order_by("name").only("slug", "name"))
        self.chosen_team = next((t for t in teams if t.slug == data.get("team")), None)
        super().__init__(data, team=self.chosen_team)
        self.fields["team"].choices = [("", "All teams"), *((t.slug, t.name) for t in teams)]
        self.order_fields(["team", "period", "start", "end", "member", "provider", "model"])


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    """Append-only: viewable, never added, changed or deleted here. Its list links to the
    usage report (``usage/``): the same report a team's owners see, for any team or all."""

    change_list_template = "accounts/credits/admin_ledger_change_list.html"

    list_display = ("created", "member", "team", "kind", "available_delta", "reserved_delta", "generation_ref",
                    "actor", "reason")
    list_filter = ("kind", ("created", admin.DateFieldListFilter), "wallet__membership__team")
    date_hierarchy = "created"
    search_fields = ("wallet__membership__user__email",)
    search_help_text = "A member's e-mail address, or a generation's id."
    list_select_related = ("wallet__membership__user", "wallet__membership__team", "actor")
    list_per_page = 100

    def get_search_results(self, request, queryset, search_term):
        try:
            ref = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(generation_ref=ref), False

    @admin.display(description="Member", ordering="wallet__membership__user__email")
    def member(self, obj):
        return obj.wallet.membership.user.email

    @admin.display(description="Team", ordering="wallet__membership__team__name")
    def team(self, obj):
        return obj.wallet.membership.team.name

    def get_urls(self):
        usage = path("usage/", self.admin_site.admin_view(self.usage_view), name="accounts_ledgerentry_usage")
        return [usage, *super().get_urls()]

    def usage_view(self, request):
        """Jobs (succeeded, failed, cancelled) and credits by team, member, model, provider
        and period; ``?format=csv`` exports its rows. Whoever may view the ledger may see it."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = AdminUsageForm(request.GET)
        context = {**self.admin_site.each_context(request), "title": "Usage report", "opts": self.model._meta,
                   "form": form, "report": None}
        if not form.is_valid():
            return TemplateResponse(request, "accounts/credits/admin_usage.html", context, status=400)
        team = form.chosen_team
        report = build_report(team, form.filters())
        query = {**({"team": team.slug} if team else {}), **report.filters.query()}
        form.data = {**form.data.dict(), **query}  # show the dates the report used, defaults included
        if request.GET.get("format") == "csv":
            f = report.filters
            name = f"kiln-usage-{team.slug if team else 'all-teams'}-{f.period}-{f.start:%Y%m%d}-{f.end:%Y%m%d}.csv"
            response = HttpResponse(content_type="text/csv; charset=utf-8",
                                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
            csv.writer(response).writerows(csv_records(report, with_team=team is None))
            return response
        by_member = report.by_member if team else group(report.rows, lambda r: f"{r.member or '(removed user)'} · {r.team}")
        context.update(report=report, team=team, by_member=by_member, csv_query=urlencode({**query, "format": "csv"}),
                       periods=[t for t in reversed(report.by_period) if t.jobs or t.credits])
        return TemplateResponse(request, "accounts/credits/admin_usage.html", context)


class AdminGrantForm(forms.Form):
    amount = forms.IntegerField(min_value=-MAX_GRANT, max_value=MAX_GRANT,
                                help_text="Credits for each selected wallet; negative deducts. 10,000 = 1 USD.")
    reason = forms.CharField(max_length=300, help_text="Kept in the ledger; the member sees it.")

    def clean_amount(self):
        if self.cleaned_data["amount"] == 0:
            raise forms.ValidationError("Enter a non-zero number of credits.")
        return self.cleaned_data["amount"]


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    """Balances are read-only: they change only through ledger entries (the grant action)."""

    list_display = ("member", "team", "available", "reserved", "updated")
    list_filter = ("membership__team",)
    search_fields = ("membership__user__email", "membership__team__name", "membership__team__slug")
    list_select_related = ("membership__user", "membership__team")
    readonly_fields = ("membership", "available", "reserved", "updated")
    actions = ["grant_credits"]

    def has_grant_permission(self, request):
        return can_move_credits(request)

    @admin.display(description="Member", ordering="membership__user__email")
    def member(self, obj):
        return obj.membership.user.email

    @admin.display(description="Team", ordering="membership__team__name")
    def team(self, obj):
        return obj.membership.team.name

    @admin.action(description="Grant or deduct credits", permissions=["grant"])
    def grant_credits(self, request, queryset):
        form = AdminGrantForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            amount, reason = form.cleaned_data["amount"], form.cleaned_data["reason"]
            done = 0
            for wallet in queryset.select_related("membership__user"):
                try:
                    credits.grant(wallet, amount, actor=request.user, reason=reason)
                    done += 1
                except credits.DeductionTooLarge as exc:
                    self.message_user(request, f"{wallet.membership.user.email}: {exc}", messages.ERROR)
            if done:
                verb = "Granted" if amount > 0 else "Deducted"
                self.message_user(request, f"{verb} {abs(amount):,} credits on {done} wallet(s).", messages.SUCCESS)
            return None
        return TemplateResponse(request, "accounts/credits/admin_grant.html", {
            **self.admin_site.each_context(request),
            "title": "Grant or deduct credits",
            "opts": self.model._meta,
            "form": form,
            "wallets": queryset.select_related("membership__user", "membership__team"),
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        })


@admin.register(GenerationReview)
class GenerationReviewAdmin(ReadOnlyAdmin):
    """Expired generations whose reservation waits for an admin: release it, or charge the estimate."""

    list_display = ("public_id", "team", "author", "provider", "model", "status", "estimated_cost", "held", "created")
    list_filter = ("provider", "team")
    search_fields = ("author__email", "model", "provider_job_id")
    list_select_related = ("team", "author")
    actions = ["release_credits", "charge_estimate"]
    fields = ("public_id", "team", "author", "provider", "model", "operation", "status", "provider_job_id",
              "provider_status", "error", "estimated_cost", "created", "submitted_at", "deadline")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).filter(needs_review=True)

    def has_review_permission(self, request):
        return can_move_credits(request)

    @admin.display(description="Held")
    def held(self, obj):
        return credits.held_for(obj)

    def _resolve(self, request, queryset, action: str) -> None:
        settled = 0
        for generation in queryset:
            credits.resolve_review(generation, action=action, actor=request.user)
            settled += 1
        what = "Released the credits of" if action == "release" else "Charged the estimate of"
        self.message_user(request, f"{what} {settled} generation(s).", messages.SUCCESS)

    @admin.action(description="Release the reserved credits (provider did not bill)", permissions=["review"])
    def release_credits(self, request, queryset):
        self._resolve(request, queryset, "release")

    @admin.action(description="Charge the estimate (provider billed)", permissions=["review"])
    def charge_estimate(self, request, queryset):
        self._resolve(request, queryset, "capture")
