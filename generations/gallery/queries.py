"""The team gallery: the card queryset, filters from the query string, keyset pagination,
and the gallery's own actions (favourite, archive, delete).

Pages are keyed on ``(created, public_id)`` descending, so a page costs the same
at the top of a 200,000-row gallery as at its end, rows created in the same
microsecond are neither skipped nor repeated, and the cursor in the URL names no
integer id. Every query here is scoped to the member's team.

Full-text search: on PostgreSQL, a ``websearch`` query (quoted phrases, ``or``,
``-word``) against an English ``tsvector`` of the prompt and negative prompt,
served by a GIN expression index (migration ``gallery_indexes``); elsewhere
(SQLite, the embedded default) every word must appear in either text
(case-insensitive), ``-word`` excludes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import re
import statistics
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from urllib.parse import urlencode

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.text import slugify

from accounts.credits import services as credits
from accounts.models import Membership
from generations.models import (
    TERMINAL,
    Favourite,
    Generation,
    InputMedia,
    Kind,
    Media,
    Prompt,
    Status,
)
from generations.storage_errors import StorageUnavailable

logger = logging.getLogger(__name__)

PAGE_SIZE = 48
MAX_QUERY_LENGTH = 200
SEARCH_ID_LIMIT = 10_000  # see search_prompts
ACTIVE = "active"  # status filter: every job that has not finished yet
STATUS_FILTERS = [(ACTIVE, "In progress"), *Status.choices]
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
# The dates a filter may name. A day is turned into the start of it and of the next one in
# the site's time zone, which overflows Python's calendar at either end (9999-12-31 + 1 day).
FIRST_DAY, LAST_DAY = dt.date(1900, 1, 1), dt.date(9998, 12, 31)
# What the filter form calls each parameter, for the page's list of what it refused.
FILTER_LABELS = {"q": "Search", "by": "Who", "kind": "Kind", "provider": "Provider", "model": "Model",
                 "status": "Status", "from": "From", "to": "To", "board": "Board", "fav": "Favourites",
                 "archived": "Archive", "after": "Page"}


# ---------------------------------------------------------------------------
# Cards


def media_prefetch() -> Prefetch:
    return Prefetch("media", queryset=Media.objects.order_by("position"))


def card_queryset(membership: Membership) -> QuerySet[Generation]:
    """The member's team's generations, loaded the way a card needs them.

    Whatever the page size: one query for the rows (prompt and author joined,
    ``is_favourite`` for this member as an EXISTS) and one for their media."""
    favourite = Favourite.objects.filter(user_id=membership.user_id, generation=OuterRef("pk"))
    return (
        Generation.objects.filter(team_id=membership.team_id)
        .select_related("prompt", "author")
        .prefetch_related(media_prefetch())
        .annotate(is_favourite=Exists(favourite))
        .defer("raw_payload")
    )


# What a pending card shows that can change (``gallery_tags.state_token_of`` takes them in this order).
STATE_FIELDS = ("status", "progress", "provider_status", "error")


def card_states(user_id: int, public_ids: Sequence[uuid.UUID]) -> list[tuple]:
    """``(team_id, public_id, status, progress, provider_status, error)`` of those of
    ``public_ids`` that belong to a team ``user_id`` is an active member of.

    The live status poll asks this of every open page with pending cards, every tick.
    It is one indexed query either way; written out here because Django *building*
    it (an ``IN`` of up to 100 UUIDs and the membership subquery) took longer than
    PostgreSQL running it (0.41 vs 0.32 ms; docs/performance.md, optimisation 10)."""
    if not public_ids:
        return []
    g, m, qn = Generation._meta, Membership._meta, connection.ops.quote_name
    public_id = g.get_field("public_id")
    columns = ", ".join(qn(g.get_field(name).column) for name in ("team", "public_id", *STATE_FIELDS))
    sql = (f"SELECT {columns} FROM {qn(g.db_table)}"  # noqa: S608 (names from the models, values as parameters)
           f" WHERE {qn(public_id.column)} IN ({', '.join(['%s'] * len(public_ids))})"
           f" AND {qn(g.get_field('team').column)} IN (SELECT {qn(m.get_field('team').column)} FROM {qn(m.db_table)}"
           f" WHERE {qn(m.get_field('user').column)} = %s AND {qn(m.get_field('removed_at').column)} IS NULL)")
    params = [public_id.get_db_prep_value(value, connection) for value in public_ids]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, user_id])
        rows = cursor.fetchall()
    # PostgreSQL answers UUIDs, SQLite their hex: one type for the caller.
    return [(team_id, value if isinstance(value, uuid.UUID) else uuid.UUID(value), *state)
            for team_id, value, *state in rows]


@dataclass
class CardGroup:
    """Consecutive cards of one compare batch sit side by side; others are alone."""

    batch_id: int | None
    cards: list[Generation]

    @property
    def is_batch(self) -> bool:
        return self.batch_id is not None and len(self.cards) > 1


def group_cards(generations: Sequence[Generation]) -> list[CardGroup]:
    groups: list[CardGroup] = []
    for g in generations:
        if g.batch_id is not None and groups and groups[-1].batch_id == g.batch_id:
            groups[-1].cards.append(g)
        else:
            groups.append(CardGroup(g.batch_id, [g]))
    return groups


def pending_ids(generations: Sequence[Generation]) -> list[str]:
    return [str(g.public_id) for g in generations if g.status not in TERMINAL]


# ---------------------------------------------------------------------------
# How long a model usually takes, from the team's own history

HISTORY_SIZE = 20  # the last successes of a model the typical duration is the median of


@dataclass(frozen=True)
class Typical:
    """What a model's last successes in a team took, creation to finish (queue time included:
    the card's elapsed time counts from creation too)."""

    seconds: float  # the median
    count: int      # how many it is the median of (at most HISTORY_SIZE)


def typical_durations(team_id: int, models: set[tuple[str, str]]) -> dict[tuple[str, str], Typical]:
    """``{(provider, model): Typical}`` for those of ``models`` the team has finished a job with.

    One query whatever the number of models: an ``IN`` of each model's last HISTORY_SIZE
    successes, each found on the ``gen_model_history`` index (a short index walk per
    model, not a scan of the team's gallery). The median is taken here, in Python: at
    most HISTORY_SIZE rows a model, and SQLite has no median."""
    if not models:
        return {}
    ours = Generation.objects.filter(team_id=team_id, status=Status.SUCCEEDED, finished_at__isnull=False)
    last = Q()
    for provider, model in sorted(models):
        recent = ours.filter(provider=provider, model=model).order_by("-created").values("pk")[:HISTORY_SIZE]
        last |= Q(pk__in=recent)
    durations: dict[tuple[str, str], list[float]] = {}
    for provider, model, created, finished in ours.filter(last).values_list("provider", "model", "created",
                                                                             "finished_at"):
        durations.setdefault((provider, model), []).append(max(0.0, (finished - created).total_seconds()))
    return {key: Typical(statistics.median(values), len(values)) for key, values in durations.items()}


def with_typical_durations(generations: Sequence[Generation]) -> Sequence[Generation]:
    """Give each pending card of ``generations`` its model's ``typical`` duration (None without
    history), for the expected time left: one query for them all (``typical_durations``), none
    when nothing is pending. ``gallery_tags.card_info`` asks for a card not given one."""
    pending = [g for g in generations if g.status not in TERMINAL]
    by_team: dict[int, set[tuple[str, str]]] = {}
    for g in pending:
        by_team.setdefault(g.team_id, set()).add((g.provider, g.model))
    known = {team_id: typical_durations(team_id, models) for team_id, models in by_team.items()}
    for g in pending:
        g.typical = known[g.team_id].get((g.provider, g.model))
    return generations


# ---------------------------------------------------------------------------
# Filters


class InvalidFilters(ValueError):
    """The query string asked for something we cannot show; ``errors`` by parameter."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


@dataclass(frozen=True)
class GalleryFilters:
    """What the gallery shows. Every field is a query-string parameter of the same name
    (``date_from``/``date_to`` are ``from``/``to``), so a filtered view can be bookmarked."""

    by: str = ""            # "" everyone, "me", or a membership's public id
    kind: str = ""
    provider: str = ""
    model: str = ""
    status: str = ""        # a Status value, or "active"
    favourites: bool = False
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    q: str = ""
    archived: bool = False  # the archive: archived generations only
    board: str = ""         # a board's public id: the results on it
    errors: dict[str, str] = field(default_factory=dict, compare=False)

    _PARAM_NAMES = {"date_from": "from", "date_to": "to", "favourites": "fav"}

    def params(self) -> dict[str, str]:
        """The non-default filters as query-string parameters."""
        out = {}
        for f in fields(self):
            if f.name == "errors":
                continue
            value = getattr(self, f.name)
            if value in ("", None, False):
                continue
            name = self._PARAM_NAMES.get(f.name, f.name)
            out[name] = "1" if value is True else value.isoformat() if isinstance(value, dt.date) else str(value)
        return out

    def querystring(self, **extra: str) -> str:
        return urlencode({**self.params(), **extra})

    @property
    def is_filtered(self) -> bool:
        return bool(self.params())


def _one(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def _date(params, name: str, errors: dict[str, str]) -> dt.date | None:
    raw = _one(params, name)
    if not raw:
        return None
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        errors[name] = "Enter a date as YYYY-MM-DD."
        return None
    if not FIRST_DAY <= day <= LAST_DAY:
        errors[name] = f"Enter a date between {FIRST_DAY.isoformat()} and {LAST_DAY.isoformat()}."
        return None
    return day


def parse_filters(params: Mapping[str, str]) -> GalleryFilters:
    """Read the filters from a query string; raises ``InvalidFilters`` with a message per
    parameter that is not acceptable (nothing is silently dropped)."""
    errors: dict[str, str] = {}
    by = _one(params, "by")
    if by in ("everyone", "all"):
        by = ""
    if by and by != "me":
        try:
            by = str(uuid.UUID(by))
        except ValueError:
            errors["by"] = "Choose “mine”, “everyone” or a member of the team."
    kind = _one(params, "kind")
    if kind and kind not in Kind.values:
        errors["kind"] = "Choose image or video."
    status = _one(params, "status")
    if status and status != ACTIVE and status not in Status.values:
        errors["status"] = "Unknown status."
    provider, model = _one(params, "provider"), _one(params, "model")
    for name, value in (("provider", provider), ("model", model)):
        if len(value) > 100 or _CONTROL_CHARS.search(value):
            errors[name] = "Unknown value."
    q = _one(params, "q")
    if len(q) > MAX_QUERY_LENGTH:
        errors["q"] = f"Search for at most {MAX_QUERY_LENGTH} characters."
    elif _CONTROL_CHARS.search(q):
        errors["q"] = "Control characters are not allowed."
    date_from, date_to = _date(params, "from", errors), _date(params, "to", errors)
    if date_from and date_to and date_from > date_to:
        errors["to"] = "The end date is before the start date."
    board = _one(params, "board")
    if board:
        try:
            board = str(uuid.UUID(board))
        except ValueError:
            errors["board"] = "Choose one of your team's boards."
    flags = {}
    for name in ("fav", "archived"):
        raw = _one(params, name)
        if raw not in ("", "0", "1", "on"):
            errors[name] = "Use 1 or 0."
        flags[name] = raw in ("1", "on")
    if errors:
        raise InvalidFilters(errors)
    return GalleryFilters(by=by, kind=kind, provider=provider, model=model,
                          status=status, favourites=flags["fav"], date_from=date_from, date_to=date_to,
                          q=q, archived=flags["archived"], board=board)


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def search_prompts(qs: QuerySet[Generation], team_id: int, q: str) -> QuerySet[Generation]:
    """Generations whose prompt or negative prompt matches ``q`` (see the module docstring)."""
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery

        prompts = Prompt.objects.filter(team_id=team_id).annotate(search=prompt_search_vector()).filter(
            search=SearchQuery(q, search_type="websearch", config="english")).values_list("pk", flat=True)
        # One query on the GIN index first. Left to itself, PostgreSQL walks the gallery
        # index and computes each prompt's tsvector until it has a page: fine for a
        # common word, seconds for a rare one or none (measured on 200,000 rows). So:
        # up to SEARCH_ID_LIMIT matches, filter by those ids; more, and the word is
        # common enough that the walk finds a page quickly.
        ids = list(prompts[: SEARCH_ID_LIMIT + 1])
        if len(ids) <= SEARCH_ID_LIMIT:
            return qs.filter(prompt_id__in=ids)
        return qs.filter(prompt__in=prompts)
    for word in q.replace('"', " ").split()[:12]:
        negate = word.startswith("-") and len(word) > 1
        word = word.removeprefix("-") if negate else word
        match = Q(prompt__text__icontains=word) | Q(prompt__negative_prompt__icontains=word)
        qs = qs.exclude(match) if negate else qs.filter(match)
    return qs


def prompt_search_vector():
    """The expression the GIN index ``prompt_search`` is built on (PostgreSQL only)."""
    from django.contrib.postgres.search import SearchVector

    return SearchVector("text", "negative_prompt", config="english")


def apply_filters(qs: QuerySet[Generation], filters: GalleryFilters, membership: Membership) -> QuerySet[Generation]:
    qs = qs.filter(archived=filters.archived)
    if filters.by == "me":
        qs = qs.filter(author_id=membership.user_id)
    elif filters.by:
        # A member of this team (removed ones too: their work stays); anything else matches nothing.
        qs = qs.filter(author_id__in=Membership.objects.filter(
            team_id=membership.team_id, public_id=filters.by).values("user_id"))
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.provider:
        qs = qs.filter(provider=filters.provider)
    if filters.model:
        qs = qs.filter(model=filters.model)
    if filters.status == ACTIVE:
        qs = qs.exclude(status__in=TERMINAL)
    elif filters.status:
        qs = qs.filter(status=filters.status)
    if filters.favourites:
        qs = qs.filter(is_favourite=True)
    if filters.date_from:
        qs = qs.filter(created__gte=_day_start(filters.date_from))
    if filters.date_to:
        qs = qs.filter(created__lt=_day_start(filters.date_to + dt.timedelta(days=1)))
    if filters.board:
        # Joined, not looked up first: another team's board, or none, matches nothing. A result
        # is on a board at most once, so the join repeats no card.
        qs = qs.filter(board_items__board__public_id=filters.board, board_items__board__team_id=membership.team_id)
    if filters.q:
        qs = search_prompts(qs, membership.team_id, filters.q)
    return qs


# ---------------------------------------------------------------------------
# Keyset pagination on (created, public_id), newest first


class InvalidCursor(ValueError):
    pass


def encode_cursor(generation: Generation) -> str:
    raw = f"{generation.created.isoformat()}|{generation.public_id.hex}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, public_id = raw.split("|")
        when = dt.datetime.fromisoformat(created)
        if timezone.is_naive(when):
            raise ValueError("naive")
        return when, uuid.UUID(hex=public_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor("This page link is not valid; start again from the first page.") from None


@dataclass
class Page:
    items: list[Generation]
    next_cursor: str | None


def paginate(qs: QuerySet[Generation], after: str | None = None, size: int = PAGE_SIZE) -> Page:
    """One page of ``qs``, newest first, after the cursor ``after``.

    ``created <= c`` is redundant with the tuple comparison but lets the database
    start its index scan at the cursor instead of filtering everything before it."""
    qs = qs.order_by("-created", "-public_id")
    if after:
        created, public_id = decode_cursor(after)
        qs = qs.filter(Q(created__lt=created) | Q(created=created, public_id__lt=public_id),
                       created__lte=created)
    rows = list(qs[: size + 1])
    items = rows[:size]
    return Page(items, encode_cursor(items[-1]) if len(rows) > size else None)


def gallery_page(membership: Membership, filters: GalleryFilters, after: str | None = None,
                 size: int = PAGE_SIZE) -> Page:
    """The gallery's page: (items, next_cursor), its pending cards with their model's typical
    duration (``with_typical_durations``). Raises InvalidCursor for a bad cursor."""
    page = paginate(apply_filters(card_queryset(membership), filters, membership), after, size)
    with_typical_durations(page.items)
    return page


# ---------------------------------------------------------------------------
# Actions (the views check who may do them)


def toggle_favourite(membership: Membership, generation: Generation) -> bool:
    """Favourite or unfavourite for this member; returns the new state."""
    deleted, _ = Favourite.objects.filter(user_id=membership.user_id, generation=generation).delete()
    if deleted:
        return False
    Favourite.objects.get_or_create(user_id=membership.user_id, generation=generation)
    return True


def set_archived(generation: Generation, archived: bool) -> None:
    Generation.objects.filter(pk=generation.pk).update(archived=archived)
    generation.archived = archived


# ---------------------------------------------------------------------------
# Several cards at once (the gallery's selection)

MAX_SELECTION = 200  # cards one bulk action takes: about four pages of the gallery


class InvalidSelection(ValueError):
    """The ids posted are not a selection we can act on; ``str(exc)`` says why, for the user."""


def parse_ids(values: Sequence[str], *, limit: int = MAX_SELECTION) -> list[uuid.UUID]:
    """The selected generations' ids from ``ids=<uuid>`` repeated (or comma-separated),
    in order, each once. Raises ``InvalidSelection`` for none, too many or a malformed id."""
    raw = [part.strip() for value in values for part in value.split(",") if part.strip()]
    try:
        ids = list(dict.fromkeys(uuid.UUID(value) for value in raw))
    except ValueError:
        raise InvalidSelection("The selection holds something that is not a result's id.") from None
    if not ids:
        raise InvalidSelection("Select at least one result first.")
    if len(ids) > limit:
        raise InvalidSelection(f"Select at most {limit} results at once ({len(ids)} are selected).")
    return ids


def selected_cards(membership: Membership, ids: Sequence[uuid.UUID]) -> list[Generation] | None:
    """The member's team's generations with these ids, loaded as cards, in the order given;
    None when any of them is not one (another team's, or deleted): the caller answers 404
    for the whole request, so a selection reveals nothing about ids outside the team."""
    found = {g.public_id: g for g in card_queryset(membership).filter(public_id__in=ids)}
    if len(found) != len(ids):
        return None
    return [found[public_id] for public_id in ids]


def set_archived_many(generations: Sequence[Generation], archived: bool) -> None:
    """Archive or restore these generations in one UPDATE (the view has checked who may)."""
    Generation.objects.filter(pk__in=[g.pk for g in generations]).update(archived=archived)
    for g in generations:
        g.archived = archived


def set_favourite_many(membership: Membership, generations: Sequence[Generation], favourite: bool) -> int:
    """Make these generations this member's favourites (or not), whatever each was before;
    returns how many changed. Idempotent: a second click changes nothing."""
    if favourite:
        missing = [g for g in generations if not g.is_favourite]
        Favourite.objects.bulk_create([Favourite(user_id=membership.user_id, generation=g) for g in missing],
                                      ignore_conflicts=True)
        changed = len(missing)
    else:
        changed, _ = Favourite.objects.filter(user_id=membership.user_id, generation__in=generations).delete()
    for g in generations:
        g.is_favourite = favourite
    return changed


class CannotDelete(Exception):
    """The generation still has a job or credits in play; the message says what to do."""


def why_not_deletable(generation: Generation) -> str:
    """What has to happen before ``generation`` can be deleted; "" when it can be now."""
    if not generation.is_terminal:
        return "It is still in progress: cancel it or let it finish, then delete it."
    if credits.held_for(generation):
        return "Its credits are still held, waiting for an operator's review; it can be deleted once they are settled."
    return ""


def delete_generation(generation: Generation) -> None:
    """Delete a generation, its media rows and their files; the ledger stays.

    Only once it has ended and its credits are settled: deleting a job still in flight
    would leave its reservation held for ever (and the provider still working and
    billing), and an expired one waiting for review would vanish from the review queue.

    Rows first, in one transaction; the files go once it commits, so a failure
    never leaves rows pointing at files that are gone. Ledger entries keep the
    generation's uuid in ``generation_ref`` (their foreign key becomes NULL).
    The prompt goes too when nothing else was made from it."""
    if reason := why_not_deletable(generation):
        raise CannotDelete(reason)
    files = []
    for media in Media.objects.filter(generation=generation):
        files += [media.file, media.thumbnail]
    for item in InputMedia.objects.filter(generation=generation):
        files.append(item.file)
    names = [(f.storage, f.name) for f in files if f and f.name]
    prompt_id = generation.prompt_id
    with transaction.atomic():
        generation.delete()
        Prompt.objects.filter(pk=prompt_id).exclude(
            Exists(Generation.objects.filter(prompt_id=OuterRef("pk")))).delete()

        def remove_files():
            for storage, name in names:
                try:
                    storage.delete(name)
                except (OSError, StorageUnavailable) as exc:
                    # The rows are gone (the member's delete happened); what is left is the operator's.
                    logger.error("Generation %s deleted, but its file %s is left in the media storage: %s",
                                 generation.public_id, name, exc)

        transaction.on_commit(remove_files)


# ---------------------------------------------------------------------------
# File names

_EXTENSIONS = {
    "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif",
    "image/avif": "avif", "video/mp4": "mp4", "video/webm": "webm", "video/quicktime": "mov",
}


def extension_for(mime_type: str, name: str = "") -> str:
    return _EXTENSIONS.get(mime_type) or (name.rsplit(".", 1)[-1].lower() if "." in name else "bin")


def zip_members(generations: Sequence[Generation]) -> list[tuple[str, Media]]:
    """The files of ``generations`` (loaded by ``card_queryset``) as ``(name in the zip, media)``,
    in the order given: each named as its own download would be (``download_filename``), a
    name that repeats (same day, same first words) numbered ``-2``, ``-3`` before its extension."""
    members, taken = [], set()
    for g in generations:
        for media in g.media.all():
            media.generation = g  # its prompt is loaded already: no query per file
            name = download_filename(media)
            stem, dot, ext = name.rpartition(".")
            n = 1
            while name.lower() in taken:
                n += 1
                name = f"{stem}-{n}{dot}{ext}"
            taken.add(name.lower())
            members.append((name, media))
    return members


def download_filename(media: Media) -> str:
    """``2026-11-21-a-serene-lake-at-sunset.mp4``: the date, the prompt's first words,
    the position when a generation has several results."""
    generation = media.generation
    day = timezone.localtime(generation.created).date().isoformat()
    words = slugify(" ".join(generation.prompt.text.split()[:8]))[:60].strip("-")
    stem = "-".join(p for p in (day, words or slugify(generation.model.rsplit("/", 1)[-1]) or "kiln") if p)
    if media.position:
        stem += f"-{media.position + 1}"
    return f"{stem}.{extension_for(media.mime_type, media.file.name)}"
