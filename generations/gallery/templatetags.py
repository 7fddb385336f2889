"""What a gallery card or the detail page shows about a generation, computed in one place.

``{% card_info g membership as c %}`` needs no query: the provider and model come
from the registry, the rest from the row (loaded by ``generations.gallery.queries.card_queryset``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
import zlib
from dataclasses import dataclass
from functools import cache

from django import template
from django.urls import reverse
from django.utils import timezone

from accounts.credits.models import CREDITS_PER_USD
from generations.access import can_manage_generation
from generations.gallery import queries as gallery
from generations.models import IN_FLIGHT, TERMINAL, Generation, Media, Status
from generations.providers.base import Param
from generations.providers.registry import (
    UnknownProvider,
    get_provider,
    job_model,
    model_label,
    provider_name,
    takes_seed,
)

register = template.Library()

RETRYABLE = frozenset({Status.FAILED, Status.EXPIRED, Status.CANCELLED})


@cache
def _provider(provider_id: str):
    try:
        return get_provider(provider_id)
    except UnknownProvider:  # a provider Kiln no longer has: show its id
        return None


_ZERO = str(uuid.UUID(int=0))
_LINKS = frozenset({"detail", "card_status", "cancel", "favourite", "archive", "restore", "delete", "retry",
                    "media", "thumbnail", "download", "share_create", "settle",
                    "card_boards", "card_board_add", "card_board_remove"})


@cache
def _url_pattern(name: str) -> str:
    return reverse(f"generations:{name}", args=[_ZERO])


class Links:
    """``links.detail`` etc.: our one-uuid URLs, reversed once per name and filled in,
    so a page of 48 cards does not pay for hundreds of ``reverse()`` calls."""

    def __init__(self, public_id):
        self.public_id = str(public_id)

    def __getitem__(self, name: str) -> str:
        if name not in _LINKS:
            raise KeyError(name)
        return _url_pattern(name).replace(_ZERO, self.public_id)


@cache
def studio_url() -> str:
    return reverse("generations:studio")


@dataclass
class CardInfo:
    g: Generation
    pending: bool
    primary: Media | None
    media: list[Media]
    provider_name: str
    model_label: str
    can_manage: bool
    can_cancel: bool          # this member may, and it is queued (ours to stop) or sent to a provider that can
    cancel_help: str          # why there is no cancel button, once it is with a provider that cannot
    can_retry: bool
    needs_edit: bool          # failed because of what it asked: "Edit and retry" opens the studio instead
    can_delete: bool          # this member may, and it has ended with nothing held (see gallery.delete_generation)
    can_share: bool           # what sharing.create_share allows: the member's team's, and succeeded
    can_settle: bool          # it needs review and this member is an owner or admin of its team
    since: dt.datetime        # what the elapsed time counts from (creation)
    elapsed: str
    state: str                # changes whenever what the card shows changes

    @property
    def cost(self) -> int:
        return self.g.actual_cost if self.g.actual_cost is not None else self.g.estimated_cost

    @property
    def cost_is_estimate(self) -> bool:
        return self.g.actual_cost is None

    @property
    def held(self) -> int:
        """Credits still reserved for it (asked only for a job that needs review)."""
        from accounts.credits.services import held_for

        return held_for(self.g)

    @property
    def settle_amount(self) -> int:
        """What "Charge" takes: the provider's reported charge where it gave one, else the estimate."""
        return self.g.actual_cost if self.g.actual_cost is not None else self.g.estimated_cost

    @property
    def not_charged(self) -> bool:
        """Failed or cancelled with its reservation released: the estimate was never spent."""
        return (self.g.actual_cost is None and not self.g.needs_review
                and self.g.status in (Status.FAILED, Status.CANCELLED))

    @property
    def url(self) -> Links:
        return Links(self.g.public_id)

    @property
    def primary_url(self) -> Links | None:
        return Links(self.primary.public_id) if self.primary else None

    @property
    def extra_media(self) -> list[tuple[Media, Links]]:
        return [(m, Links(m.public_id)) for m in self.media[1:]]

    @property
    def studio(self) -> str:
        return studio_url()

    @property
    def typical(self) -> gallery.Typical | None:
        """Its model's usual duration in this team (pending cards only). A page's cards are given
        theirs in one query (``gallery.with_typical_durations``); a card on its own asks here."""
        if not self.pending:
            return None
        if not hasattr(self.g, "typical"):
            gallery.with_typical_durations([self.g])
        return self.g.typical

    @property
    def expected_left(self) -> str:
        """The expected time left, from the typical duration: "about 2 min left", "taking longer
        than usual" once past it, "" without history (gallery.js keeps it up to date)."""
        if self.typical is None:
            return ""
        return time_left_text(self.typical.seconds - (timezone.now() - self.since).total_seconds())

    @property
    def typical_help(self) -> str:
        if self.typical is None:
            return (f"No estimate yet: Kiln estimates from this team's finished jobs with {self.model_label}, "
                    "and there are none so far.")
        n = self.typical.count
        return (f"{self.model_label} usually takes {duration_text(self.typical.seconds)} in this team "
                f"(the median of its last {n} finished job{'s' if n != 1 else ''}).")

    @property
    def announcement(self) -> str:
        """What the page's live region says when this job reaches its state (kiln.js, once each):
        "Wan 2.7: running", "GPT Image 2 failed: Content was blocked by the safety system."."""
        return announcement(self.g)

    @property
    def controls_key(self) -> str:
        """Changes only when the set of controls in the card's actions (or the status panel's)
        changes: the id of their container, kept across status polls (hx-preserve), so a keyboard
        user on Cancel keeps it; a new key (Cancel gone on finish) brings the new controls."""
        g = self.g
        parts = (self.can_cancel, bool(self.cancel_help and self.can_manage), self.primary.public_id if self.primary else "",
                 self.can_share, self.needs_edit, self.can_retry, self.can_manage, g.archived, self.can_delete,
                 g.needs_review, self.can_settle, g.status if g.status in TERMINAL else "pending")
        return f"{zlib.crc32(repr(parts).encode()):x}"

    @property
    def takes_seed(self) -> bool:
        """Its model has a seed parameter: "Reuse seed" can fix it in the studio."""
        return takes_seed(self.g.provider, self.g.model, self.g.operation)


def duration_text(seconds: float | None) -> str:
    """ "12 s", "1 min 12 s", "2 h 5 min" (gallery.js's ``durationText`` says the same)."""
    if seconds is None:
        return ""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _round(x: float) -> int:
    return math.floor(x + 0.5)  # halves up, as JavaScript's Math.round (Python's round() goes to even)


def time_left_text(seconds: float) -> str:
    """An estimate, so no false precision: "about 40 s left" (to 10 s), "about 3 min left"
    (to the minute), and never a negative time (gallery.js's ``timeLeftText`` says the same)."""
    if seconds <= 0:
        return "taking longer than usual"
    if seconds < 55:
        return f"about {max(10, _round(seconds / 10) * 10)} s left"
    minutes = max(1, _round(seconds / 60))
    if minutes < 60:
        return f"about {minutes} min left"
    return f"about {duration_text(minutes * 60)} left"


def state_token(g: Generation) -> str:
    """Changes whenever what a pending card shows changes (status, progress, the provider's
    words); the page sends it back with each status poll so unchanged cards are not re-sent.
    Media need no part in it: a generation is marked succeeded after its files are stored."""
    return state_token_of(g.status, g.progress, g.provider_status, g.error)


# The columns ``state_token_of`` takes, in order: the status poll reads only these.
STATE_FIELDS = gallery.STATE_FIELDS


def state_token_of(status: str, progress: int | None, provider_status: str, error: str) -> str:
    """``state_token`` from the bare column values (no model instance needed)."""
    checksum = zlib.crc32(f"{provider_status}|{error}".encode())
    return f"{status}-{progress if progress is not None else ''}-{checksum:x}"


def announcement(g: Generation) -> str:
    """One sentence for a screen reader, in the model's display name and the provider's own words
    for a failure as Kiln stores them."""
    label = model_label(g.provider, g.model)
    state = g.get_status_display().lower()
    if g.status in (Status.FAILED, Status.EXPIRED) and g.error:
        error = g.error.strip()
        return f"{label} {state}: {error}" + ("" if error.endswith((".", "!", "?")) else ".")
    return f"{label}: {state}"


def _media_of(g: Generation) -> list[Media]:
    cache_ = getattr(g, "_prefetched_objects_cache", {})
    if "media" in cache_:
        return list(cache_["media"])
    return list(g.media.order_by("position"))


@register.simple_tag
def card_info(g: Generation, membership) -> CardInfo:
    media = _media_of(g)
    pending = g.status not in TERMINAL
    provider = _provider(g.provider)
    supports_cancel = bool(provider and provider.supports_cancel)
    may_manage = bool(membership) and can_manage_generation(membership, g)
    end = g.finished_at if g.finished_at else timezone.now()
    return CardInfo(
        g=g, pending=pending, primary=media[0] if media else None, media=media,
        provider_name=provider_name(g.provider), model_label=model_label(g.provider, g.model),
        can_manage=may_manage,
        can_cancel=may_manage and (g.status == Status.QUEUED or (g.status == Status.SUBMITTED and supports_cancel)),
        cancel_help=(provider.cancel_help if provider and not supports_cancel and g.status in IN_FLIGHT else ""),
        can_retry=g.status in RETRYABLE,
        needs_edit=g.needs_edit,
        can_delete=may_manage and not pending and not g.needs_review,
        can_share=bool(membership) and membership.team_id == g.team_id and g.status == Status.SUCCEEDED,
        can_settle=(g.needs_review and bool(membership) and membership.team_id == g.team_id
                    and membership.is_manager),
        since=g.created, elapsed=duration_text((end - g.created).total_seconds()),
        state=state_token(g),
    )


@register.filter
def links(public_id) -> Links:
    """``{% with u=g.public_id|links %}{{ u.detail }}``: fast URLs outside a card's ``card_info``."""
    return Links(public_id)


@register.filter
def card_groups(generations):
    return gallery.group_cards(list(generations))


@register.filter
def credits(value) -> str:
    if value is None:
        return "—"
    return f"{int(value):,} cr"


@register.filter
def usd(value) -> str:
    if value is None:
        return ""
    amount = int(value) / CREDITS_PER_USD
    return f"≈ ${amount:,.2f}" if amount >= 0.01 or amount == 0 else f"≈ ${amount:,.4f}"


@register.filter
def ago(when: dt.datetime | None) -> str:
    """A short relative time for cards: "just now", "5m ago", "3h ago", "2d ago", else the date."""
    if not when:
        return ""
    seconds = (timezone.now() - when).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h ago"
    if seconds < 7 * 86400:
        return f"{int(seconds // 86400)}d ago"
    local = timezone.localtime(when)
    return local.strftime("%-d %b %Y") if local.year != timezone.localtime().year else local.strftime("%-d %b")


@register.filter
def duration(seconds) -> str:
    return duration_text(seconds)


@register.simple_tag
def span(start, end) -> str:
    """The time between two datetimes, for the timings table ("" when either is missing)."""
    if not start or not end:
        return ""
    return duration_text((end - start).total_seconds())


@register.filter
def param_value(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


# A unit in a schema label ("Duration (seconds)") goes to the value on the detail page: "Duration: 5 s".
_LABEL_UNIT = re.compile(r"^(?P<label>.+?) \((?P<unit>seconds|px)\)$")


def _param_text(param: Param | None, value) -> tuple[str, str]:
    """(label, value) as the studio names them, for one stored parameter."""
    label = param.display_label if param else ""
    unit = ""
    if match := _LABEL_UNIT.match(label):
        label, unit = match["label"], match["unit"]
    if param is not None and param.name == "seed" and value in (-1, None):
        return label, "random"  # -1 (Shark) or none: the provider picked one
    if unit == "seconds" and isinstance(value, int | float) and not isinstance(value, bool):
        return label, duration_text(value)
    text = param_value(value)
    return label, f"{text} {unit}" if unit and text else text


@register.simple_tag
def param_rows(g: Generation) -> list[tuple[str, str]]:
    """The detail page's parameters: named and shown as the studio shows them, in the
    model's own order ("Duration: 5 s", "Seed: random"); a key the schema does not know
    (a retired parameter, an unknown model) keeps its name, made readable."""
    stored = dict(g.params or {})
    spec = job_model(g.provider, g.model)
    rows = []
    for param in spec.params if spec else ():
        if param.name in stored:
            rows.append(_param_text(param, stored.pop(param.name)))
    for name, value in sorted(stored.items()):
        rows.append((name.replace("_", " ").capitalize(), param_value(value)))
    return rows


@register.filter
def prompt_label(g) -> str:
    """What a card calls its generation: the prompt, or for a prompt template its id."""
    if g.prompt.text:
        return g.prompt.text
    template_id = (g.params or {}).get("template_id")
    return f"Prompt template “{template_id}”" if template_id else "(no prompt)"
