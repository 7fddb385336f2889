"""Share links: a public, revocable link to one or more of a team's results.

The token (``secrets.token_urlsafe(32)``, 256 bits) is returned once, when the
link is created; only its SHA-256 is stored, so a database dump reveals no
working link. Looking a link up hashes the presented token and finds the row by
that hash: no comparison against stored secrets ever happens in Python.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Prefetch, QuerySet
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Membership
from generations.boards.models import Board
from generations.models import Generation, Media, Status
from generations.providers.registry import PROVIDER_NAMES, get_model
from generations.share.models import ShareLink
from generations.team_webhooks import outbox

MAX_GENERATIONS = 50
BOARD_PAGE_MAX = 200  # a board link's page shows the newest this many
TITLE_MAX_LENGTH = 200
# token_urlsafe(32) is 43 characters of the URL-safe base64 alphabet.
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


class ShareError(ValueError):
    """A share link cannot be created as asked; ``str(exc)`` says why, for the user."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_share(membership: Membership, generations: Iterable[Generation], *, board: Board | None = None,
                 title: str = "", show_prompt: bool = False, expires_in: timedelta | None = None,
                 expires_at: datetime | None = None) -> tuple[ShareLink, str]:
    """Create a link to ``generations`` (all the member's team's, all succeeded), or to
    ``board`` (the member's team's) with no generations: a board's link shows the board's
    finished results as they are when it is opened.

    Returns the link and its token; the token is not stored and cannot be shown again.
    Give at most one of ``expires_in`` / ``expires_at``; neither means it never expires.
    """
    generations = list(generations)
    if board is not None:
        if board.team_id != membership.team_id:
            raise ShareError("You can only share your team's boards.")
        if generations:
            raise ShareError("A board's link shares the board, not chosen results.")
    elif not generations:
        raise ShareError("Choose at least one result to share.")
    if len(generations) > MAX_GENERATIONS:
        raise ShareError(f"A link can share at most {MAX_GENERATIONS} results.")
    if any(g.team_id != membership.team_id for g in generations):
        raise ShareError("You can only share your team's results.")
    unfinished = [g for g in generations if g.status != Status.SUCCEEDED]
    if unfinished:
        raise ShareError("Only finished results can be shared." if len(generations) > 1
                         else "This result has not finished, so there is nothing to share yet.")
    title = (title or "").strip()
    if len(title) > TITLE_MAX_LENGTH:
        raise ShareError(f"The title can be at most {TITLE_MAX_LENGTH} characters.")
    if expires_in is not None and expires_at is not None:
        raise ShareError("Give an expiry as a duration or as a date, not both.")
    now = timezone.now()
    if expires_in is not None:
        if expires_in <= timedelta(0):
            raise ShareError("The expiry must be in the future.")
        expires_at = now + expires_in
    if expires_at is not None and expires_at <= now:
        raise ShareError("The expiry must be in the future.")

    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        share = ShareLink.objects.create(
            team_id=membership.team_id, created_by_id=membership.user_id, token_hash=hash_token(token),
            title=title, show_prompt=show_prompt, expires_at=expires_at, created=now, board=board,
        )
        share.generations.add(*generations)
    return share, token


def find_share(token: str) -> ShareLink | None:
    """The link this token opens, live or not (None for a token that never existed)."""
    if not isinstance(token, str) or not _TOKEN_SHAPE.match(token):
        return None
    return ShareLink.objects.filter(token_hash=hash_token(token)).first()


def find_live_share(token: str) -> ShareLink | None:
    """The link this token opens if it is neither revoked nor expired."""
    share = find_share(token)
    return share if share is not None and share.is_live() else None


def revoke(share: ShareLink, actor: Membership) -> bool:
    """Revoke at once (any member of the link's team may). False if it already was."""
    if actor.team_id != share.team_id:
        raise ShareError("Only the link's team can revoke it.")
    now = timezone.now()
    if revoke_links(ShareLink.objects.filter(pk=share.pk), actor.user_id, now=now):
        share.revoked_at, share.revoked_by_id = now, actor.user_id
        return True
    return False


def revoke_links(links: QuerySet[ShareLink], user_id: int, *, now: datetime | None = None) -> int:
    """Revoke the live ones among ``links``, by ``user_id``, in one UPDATE (a link already
    revoked keeps who did it and when). Returns how many were revoked. No team check: callers
    are ``revoke`` above and the admin's action for operators."""
    return links.filter(revoked_at__isnull=True).update(revoked_at=now or timezone.now(), revoked_by_id=user_id)


def count_view(share: ShareLink, viewer: str | None = None) -> None:
    """One UPDATE with F(): concurrent views are never lost. With ``viewer`` (the visitor's address
    and browser, hashed, never sent), the team's ``share.viewed`` webhooks, throttled per link and
    viewer (``team_webhooks.outbox.share_viewed``)."""
    ShareLink.objects.filter(pk=share.pk).update(view_count=F("view_count") + 1)
    if viewer is not None:
        share.view_count += 1
        outbox.share_viewed(share, viewer)


def _board_generations(share: ShareLink) -> QuerySet[Generation]:
    """A board link's results: on the board now, of the link's team, not archived (the team's
    own board view hides those too)."""
    return Generation.objects.filter(board_items__board_id=share.board_id, team_id=share.team_id, archived=False)


def _shown(share: ShareLink) -> QuerySet[Generation]:
    """The results the public page shows, in its order: the link's finished results that still
    have media, oldest first (the order they were made); for a board, what is on it now, newest
    first as the board shows them, at most BOARD_PAGE_MAX. The page and the files served
    under its token both read this, so a file is served exactly when its result is on the page."""
    has_media = Exists(Media.objects.filter(generation=OuterRef("pk")))  # not a join: no duplicates to fold
    if share.board_id is not None:
        return (_board_generations(share).filter(has_media, status=Status.SUCCEEDED)
                .order_by("-created", "-id")[:BOARD_PAGE_MAX])
    return share.generations.filter(has_media, status=Status.SUCCEEDED).order_by("created", "id")


def shared_generations(share: ShareLink) -> list[Generation]:
    """What the public page shows (see ``_shown``), with prompt and media loaded."""
    return list(_shown(share).select_related("prompt").prefetch_related("media"))


def shared_media(share: ShareLink, media_public_id) -> Media | None:
    """A media file of a result the link's page shows, or None: a valid token opens nothing else."""
    return (Media.objects.select_related("generation__prompt")
            .filter(public_id=media_public_id, generation__in=_shown(share).values("pk")).first())


def team_shares(membership: Membership):
    """The member's team's links with what the list page shows, in a fixed number of queries."""
    return (ShareLink.objects.filter(team_id=membership.team_id)
            .select_related("created_by", "revoked_by", "board")
            .prefetch_related(Prefetch("generations",
                                       queryset=Generation.objects.prefetch_related("media").order_by("created", "id"))))


def download_name(share: ShareLink, media: Media, *, index: int | None = None) -> str:
    """A file name that reveals nothing the page does not: the title (or "kiln"),
    the date, and the prompt only when the link shows it."""
    made = media.generation.finished_at or media.generation.created
    stem = slugify(share.title)[:60]
    if not stem and share.show_prompt:
        stem = slugify(media.generation.prompt.text)[:60]
    stem = stem or "kiln"
    suffix = f"-{index}" if index else ""
    ext = media.file.name.rsplit(".", 1)[-1].lower() if "." in media.file.name else "bin"
    return f"{stem}-{made:%Y%m%d}{suffix}.{ext}"


def model_label(generation: Generation) -> str:
    """The model's display name and provider ("Shark Flux · Shark AI"), or its id if unknown."""
    try:
        spec = get_model(generation.provider, generation.model)
    except (LookupError, ImportError):  # a provider since removed from this install
        spec = None
    label = spec.label if spec is not None else generation.model
    provider = PROVIDER_NAMES.get(generation.provider)
    return f"{label} · {provider}" if provider else label
