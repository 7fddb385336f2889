"""Team usage reports: credits and job counts by period, member, provider and model.

Credits come from the ledger (captures: what actually left the wallets), job
counts from the generations: succeeded, failed (or expired) and cancelled each
in a column of their own. Everything is aggregated in the database into rows of
(period, team, member, provider, model); the team's page, its chart, the CSV
export and the Django admin's report (every team, or one) are all made from them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cache

from django import forms
from django.db.models import Count, DateField, F, Q, Sum
from django.db.models.functions import TruncDate, TruncMonth
from django.utils import timezone

from accounts.credits.models import CREDITS_PER_USD, LedgerEntry, LedgerKind
from accounts.credits.services import spend_expression
from accounts.models import Membership, Team
from generations.gallery.queries import FIRST_DAY, LAST_DAY
from generations.models import Generation, Status
from generations.providers.registry import PROVIDER_NAMES, UnknownProvider, get_provider

DAY, MONTH = "day", "month"
MAX_DAYS = 366
MAX_MONTHS = 60
FAILED = (Status.FAILED, Status.EXPIRED)
CANCELLED = (Status.CANCELLED,)
DELETED = "(deleted)"


class UsageFilterForm(forms.Form):
    """The report's query string: period, date range, and optional member/provider/model."""

    period = forms.ChoiceField(choices=[(DAY, "Per day"), (MONTH, "Per month")], required=False)
    start = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    member = forms.ChoiceField(required=False, label="Member")
    provider = forms.ChoiceField(required=False, label="Provider")
    model = forms.CharField(required=False, max_length=100, label="Model")

    def __init__(self, data, *, team: Team):
        super().__init__(data)
        self.team = team
        self.members = {str(m.public_id): m for m in
                        Membership.objects.filter(team=team).select_related("user").order_by("user__email")}
        self.fields["member"].choices = [("", "Everyone"), *((k, m.user.email) for k, m in self.members.items())]
        self.fields["provider"].choices = [("", "All providers"), *PROVIDER_NAMES.items()]

    def clean(self):
        data = super().clean()
        for name in ("start", "end"):
            day = data.get(name)
            if day and not FIRST_DAY <= day <= LAST_DAY:
                # The report runs to the start of the day after ``end`` in the site's time zone.
                self.add_error(name, f"Enter a date between {FIRST_DAY.isoformat()} and {LAST_DAY.isoformat()}.")
                return data
        period = data.get("period") or DAY
        today = timezone.localdate()
        end = data.get("end") or today
        if period == DAY:
            start = data.get("start") or end - dt.timedelta(days=29)
        else:
            start = data.get("start") or add_months(end.replace(day=1), -11)
            start, end = start.replace(day=1), end
        if start > end:
            raise forms.ValidationError("The start date must be on or before the end date.")
        if period == DAY and (end - start).days >= MAX_DAYS:
            raise forms.ValidationError(f"Per day, a report covers at most {MAX_DAYS} days; choose per month for longer.")
        if period == MONTH and months_between(start, end) > MAX_MONTHS:
            raise forms.ValidationError(f"A report covers at most {MAX_MONTHS} months.")
        data.update(period=period, start=start, end=end)
        return data

    def filters(self) -> UsageFilters:
        d = self.cleaned_data
        return UsageFilters(period=d["period"], start=d["start"], end=d["end"],
                            member=self.members.get(d.get("member") or ""),
                            provider=d.get("provider") or "", model=(d.get("model") or "").strip())


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def months_between(start: dt.date, end: dt.date) -> int:
    return (end.year - start.year) * 12 + end.month - start.month + 1


@dataclass(frozen=True)
class UsageFilters:
    period: str
    start: dt.date
    end: dt.date  # inclusive
    member: Membership | None = None
    provider: str = ""
    model: str = ""

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        tz = timezone.get_current_timezone()
        return (dt.datetime.combine(self.start, dt.time.min, tzinfo=tz),
                dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time.min, tzinfo=tz))

    def periods(self) -> list[dt.date]:
        if self.period == DAY:
            return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]
        first = self.start.replace(day=1)
        return [add_months(first, i) for i in range(months_between(first, self.end))]

    def query(self) -> dict[str, str]:
        q = {"period": self.period, "start": self.start.isoformat(), "end": self.end.isoformat()}
        if self.member:
            q["member"] = str(self.member.public_id)
        if self.provider:
            q["provider"] = self.provider
        if self.model:
            q["model"] = self.model
        return q


@dataclass
class Totals:
    label: str = ""
    jobs: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0  # stopped by a member (or the provider): neither a success nor a failure
    credits: int = 0

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed

    @property
    def failure_rate(self) -> float | None:
        """Failed (or expired) out of the jobs that succeeded or failed (a cancelled job did
        neither); None when none did."""
        return self.failed / self.finished if self.finished else None

    @property
    def usd(self) -> float:
        return self.credits / CREDITS_PER_USD

    def add(self, other: Totals) -> None:
        self.jobs += other.jobs
        self.succeeded += other.succeeded
        self.failed += other.failed
        self.cancelled += other.cancelled
        self.credits += other.credits


@dataclass
class UsageRow(Totals):
    period: dt.date | None = None
    team: str = ""
    member: str = ""
    provider: str = ""
    model: str = ""


def usage_rows(team: Team | None, f: UsageFilters) -> list[UsageRow]:
    """One row per (period, team, member, provider, model) with jobs, their outcomes and
    credits spent; of one team, or of every team when ``team`` is None (the admin's report)."""
    start, end = f.bounds()
    trunc = TruncDate if f.period == DAY else TruncMonth

    gens = Generation.objects.filter(created__gte=start, created__lt=end)
    spend = LedgerEntry.objects.filter(kind=LedgerKind.CAPTURE, created__gte=start, created__lt=end)
    if team is not None:
        gens = gens.filter(team=team)
        spend = spend.filter(wallet__membership__team=team)
    if f.member:
        gens = gens.filter(author_id=f.member.user_id)
        spend = spend.filter(wallet__membership=f.member)
    if f.provider:
        gens = gens.filter(provider=f.provider)
        spend = spend.filter(generation__provider=f.provider)
    if f.model:
        gens = gens.filter(model=f.model)
        spend = spend.filter(generation__model=f.model)

    rows: dict[tuple, UsageRow] = {}

    def row(period, team_name, member, provider, model) -> UsageRow:
        if isinstance(period, dt.datetime):
            period = timezone.localdate(period) if timezone.is_aware(period) else period.date()
        key = (period, team_name or "", member or "", provider or DELETED, model or DELETED)
        if key not in rows:
            rows[key] = UsageRow(period=key[0], team=key[1], member=key[2], provider=key[3], model=key[4])
        return rows[key]

    counted = (gens.values(p=trunc("created", output_field=DateField()), tm=F("team__name"), who=F("author__email"),
                           prov=F("provider"), mod=F("model"))
               .annotate(jobs=Count("id"), succeeded=Count("id", filter=Q(status=Status.SUCCEEDED)),
                         failed=Count("id", filter=Q(status__in=FAILED)),
                         cancelled=Count("id", filter=Q(status__in=CANCELLED))).order_by())
    for c in counted:
        r = row(c["p"], c["tm"], c["who"], c["prov"], c["mod"])
        r.jobs += c["jobs"]
        r.succeeded += c["succeeded"]
        r.failed += c["failed"]
        r.cancelled += c["cancelled"]

    spent = (spend.values(p=trunc("created", output_field=DateField()), tm=F("wallet__membership__team__name"),
                          who=F("wallet__membership__user__email"),
                          prov=F("generation__provider"), mod=F("generation__model"))
             .annotate(credits=Sum(spend_expression())).order_by())
    for s in spent:
        row(s["p"], s["tm"], s["who"], s["prov"], s["mod"]).credits += s["credits"] or 0

    return sorted(rows.values(), key=lambda r: (r.period, r.team, r.member, r.provider, r.model))


@cache
def model_label(provider_id: str, model_id: str) -> str:
    try:
        spec = get_provider(provider_id).get_model(model_id)
    except (UnknownProvider, ImportError, AttributeError):
        spec = None
    return spec.label if spec else model_id


def provider_label(provider_id: str) -> str:
    return PROVIDER_NAMES.get(provider_id, provider_id)


def group(rows: list[UsageRow], key) -> list[Totals]:
    """Totals of the rows grouped by ``key(row) -> label``, most credits first."""
    out: dict[str, Totals] = {}
    for r in rows:
        label = key(r)
        out.setdefault(label, Totals(label=label)).add(r)
    return sorted(out.values(), key=lambda t: (-t.credits, -t.jobs, t.label))


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    period: dt.date
    credits: int
    jobs: int
    label: str = ""

    @property
    def center(self) -> float:
        return round(self.x + self.width / 2, 2)


@dataclass
class Chart:
    """A server-side SVG bar chart of credits spent per period (drawn by the template)."""

    width: int = 760
    height: int = 240
    left: int = 64
    bottom: int = 28
    top: int = 12
    bars: list[Bar] = field(default_factory=list)
    ticks: list[tuple[float, int]] = field(default_factory=list)  # (y, value)
    max_value: int = 0

    @property
    def plot_bottom(self) -> int:
        return self.height - self.bottom

    @property
    def plot_right(self) -> int:
        return self.width - 8


def nice_ceiling(value: int) -> int:
    """The smallest 1/2/5 x 10^n at or above ``value`` (at least 10)."""
    step = 10
    while True:
        for m in (1, 2, 5):
            if step * m >= value:
                return step * m
        step *= 10


def build_chart(series: list[Totals], periods: list[dt.date], period: str) -> Chart:
    chart = Chart()
    top = nice_ceiling(max([t.credits for t in series] + [1]))
    chart.max_value = top
    plot_h = chart.plot_bottom - chart.top
    plot_w = chart.plot_right - chart.left
    slot = plot_w / max(len(series), 1)
    gap = min(4.0, slot * 0.2)
    label_every = max(1, round(len(series) / 8))
    for i, (t, p) in enumerate(zip(series, periods, strict=True)):
        h = plot_h * t.credits / top
        label = ""
        if i % label_every == 0:
            label = p.strftime("%-d %b") if period == DAY else p.strftime("%b %Y")
        chart.bars.append(Bar(x=round(chart.left + i * slot + gap / 2, 2), y=round(chart.plot_bottom - h, 2),
                              width=round(max(slot - gap, 1), 2), height=round(h, 2), period=p,
                              credits=t.credits, jobs=t.jobs, label=label))
    chart.ticks = [(round(chart.plot_bottom - plot_h * frac, 2), int(top * frac)) for frac in (0, 0.25, 0.5, 0.75, 1)]
    return chart


@dataclass
class Report:
    filters: UsageFilters
    rows: list[UsageRow]
    total: Totals
    by_team: list[Totals]
    by_member: list[Totals]
    by_provider: list[Totals]
    by_model: list[Totals]
    by_period: list[Totals]
    chart: Chart


def build_report(team: Team | None, f: UsageFilters) -> Report:
    rows = usage_rows(team, f)
    total = Totals(label="Total")
    for r in rows:
        total.add(r)
    periods = f.periods()
    fmt = "%Y-%m-%d" if f.period == DAY else "%Y-%m"
    per_period = {p: Totals(label=p.strftime(fmt)) for p in periods}
    for r in rows:
        if r.period in per_period:
            per_period[r.period].add(r)
    series = [per_period[p] for p in periods]
    return Report(
        filters=f, rows=rows, total=total,
        by_team=group(rows, lambda r: r.team),
        by_member=group(rows, lambda r: r.member or "(removed user)"),
        by_provider=group(rows, lambda r: provider_label(r.provider)),
        by_model=group(rows, lambda r: r.model if r.model == DELETED
                       else f"{provider_label(r.provider)} · {model_label(r.provider, r.model)}"),
        by_period=series,
        chart=build_chart(series, periods, f.period),
    )


CSV_HEADER = ["period", "member", "provider", "model", "jobs", "succeeded", "failed", "cancelled", "failure_rate",
              "credits", "usd"]


def csv_safe(value):
    """Spreadsheets run cells that start with = + - @ as formulas: quote them."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_records(report: Report, *, with_team: bool = False):
    """The report's rows for a spreadsheet; ``with_team`` (the admin's, across teams) adds
    the team's name after the period."""
    fmt = "%Y-%m-%d" if report.filters.period == DAY else "%Y-%m"
    yield [*CSV_HEADER[:1], "team", *CSV_HEADER[1:]] if with_team else CSV_HEADER
    for r in report.rows:
        rate = "" if r.failure_rate is None else f"{r.failure_rate:.4f}"
        team = [r.team] if with_team else []
        yield [csv_safe(v) for v in (r.period.strftime(fmt), *team, r.member, r.provider, r.model, r.jobs,
                                     r.succeeded, r.failed, r.cancelled, rate, r.credits, f"{r.usd:.4f}")]

