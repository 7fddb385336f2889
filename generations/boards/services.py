"""Boards: making, renaming and deleting them, putting results on them and taking them off.

Any member of a team may make a board and add or remove results (a board is a shared
folder); renaming or deleting one is for the member who made it and the team's owners and
admins. Every function takes the acting membership and keeps to its team: a board or a
result of another team is never touched, whatever ids are passed in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from django.db import IntegrityError, transaction
from django.db.models import CharField, Count, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Lower

from accounts.models import Membership
from generations.boards.models import NAME_MAX_LENGTH, Board, BoardItem
from generations.models import Generation, Kind, Status

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


class BoardError(ValueError):
    """The board cannot be made or changed as asked; ``str(exc)`` says why, for the user."""


def can_manage_board(membership: Membership, board: Board) -> bool:
    """Rename and delete: the member who made it, or a team owner or admin."""
    return board.team_id == membership.team_id and (board.created_by_id == membership.user_id
                                                    or membership.is_manager)


def team_boards(membership: Membership) -> QuerySet[Board]:
    """The team's boards by name: what a list to pick from needs (one query)."""
    return Board.objects.filter(team_id=membership.team_id)


def find_board(membership: Membership, public_id) -> Board | None:
    return Board.objects.filter(team_id=membership.team_id, public_id=public_id).first()


def boards_overview(membership: Membership) -> QuerySet[Board]:
    """The boards page: each board with how many results it shows in the gallery (archived
    ones aside) and a cover, the thumbnail of its most recently added finished result.
    One query, however many boards."""
    # One filter() call: the media conditions must be about the same media row (one join).
    cover = (BoardItem.objects.filter(Q(generation__media__kind=Kind.IMAGE) | Q(generation__media__thumbnail__gt=""),
                                      board=OuterRef("pk"), generation__archived=False,
                                      generation__status=Status.SUCCEEDED, generation__media__position=0)
             .order_by("-added_at", "-id"))
    return (Board.objects.filter(team_id=membership.team_id).select_related("created_by")
            .annotate(item_count=Count("items", filter=Q(items__generation__archived=False)),
                      cover_media=Subquery(cover.values("generation__media__public_id")[:1])))


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())  # no leading, trailing or doubled spaces to tell apart
    if not name:
        raise BoardError("Give the board a name.")
    if len(name) > NAME_MAX_LENGTH:
        raise BoardError(f"A board's name can be at most {NAME_MAX_LENGTH} characters.")
    if _CONTROL_CHARS.search(name):
        raise BoardError("A board's name cannot hold control characters.")
    return name


def _named(membership: Membership, name: str) -> QuerySet[Board]:
    """The team's board of this name in any case, as the unique constraint sees it: both sides
    are lowered by the database, whose LOWER may fold fewer letters than Python (SQLite's folds
    only A-Z, so "Été" must meet LOWER("Été"), not "été")."""
    return (Board.objects.filter(team_id=membership.team_id).alias(lower=Lower("name"))
            .filter(lower=Lower(Value(name, output_field=CharField()))))


def _taken(membership: Membership, name: str, exclude: Board | None = None) -> bool:
    qs = _named(membership, name)
    return qs.exclude(pk=exclude.pk).exists() if exclude else qs.exists()


def create_board(membership: Membership, name: str) -> Board:
    name = _clean_name(name)
    if _taken(membership, name):
        raise BoardError(f"Your team already has a board called “{name}”.")
    try:
        with transaction.atomic():
            return Board.objects.create(team_id=membership.team_id, name=name, created_by_id=membership.user_id)
    except IntegrityError:  # made by a teammate between the check and the insert
        raise BoardError(f"Your team already has a board called “{name}”.") from None


def board_named(membership: Membership, name: str) -> tuple[Board, bool]:
    """The team's board of this name (any case), or a new one: ``(board, created)``.
    What "Add to board" does with a typed name."""
    cleaned = _clean_name(name)
    board = _named(membership, cleaned).first()
    if board is not None:
        return board, False
    try:
        return create_board(membership, cleaned), True
    except BoardError:  # a teammate made it meanwhile: use theirs
        board = _named(membership, cleaned).first()
        if board is None:
            raise
        return board, False


def rename_board(membership: Membership, board: Board, name: str) -> None:
    if not can_manage_board(membership, board):
        raise BoardError("Only the member who made this board or a team owner or admin can rename it.")
    name = _clean_name(name)
    if _taken(membership, name, exclude=board):
        raise BoardError(f"Your team already has a board called “{name}”.")
    try:
        with transaction.atomic():
            Board.objects.filter(pk=board.pk).update(name=name)
    except IntegrityError:
        raise BoardError(f"Your team already has a board called “{name}”.") from None
    board.name = name


def delete_board(membership: Membership, board: Board) -> None:
    """The board and its list go; its results stay where they are, and its share links stop
    opening anything (their board becomes NULL)."""
    if not can_manage_board(membership, board):
        raise BoardError("Only the member who made this board or a team owner or admin can delete it.")
    board.delete()


def add_to_board(membership: Membership, board: Board, generations: Sequence[Generation]) -> int:
    """Put these results on the board; returns how many went on it (those already there, or
    named twice, are not counted). Idempotent."""
    if board.team_id != membership.team_id or any(g.team_id != membership.team_id for g in generations):
        raise BoardError("Only your team's results can go on your team's boards.")
    try:
        with transaction.atomic():
            # Locking the board row makes a teammate's add to it wait (so the count is ours alone)
            # and tells a board deleted since it was looked up from one that is still there.
            if not Board.objects.select_for_update().filter(pk=board.pk).exists():
                raise BoardError(f"The board “{board.name}” was deleted meanwhile: nothing was added.")
            on_board = BoardItem.objects.filter(board=board, generation__in=generations)
            before = on_board.count()
            BoardItem.objects.bulk_create([BoardItem(board=board, generation=g, added_by_id=membership.user_id)
                                           for g in generations], ignore_conflicts=True)
            return on_board.count() - before
    except IntegrityError:  # a result deleted since it was selected (foreign keys are checked at commit)
        raise BoardError("A selected result was deleted meanwhile: nothing was added. "
                         "Reload the page and try again.") from None


def remove_from_board(membership: Membership, board: Board, generations: Sequence[Generation]) -> int:
    """Take these results off the board (they stay in the gallery); returns how many were on it."""
    if board.team_id != membership.team_id:
        raise BoardError("Only your team's boards can be changed.")
    removed, _ = BoardItem.objects.filter(board=board, generation__in=generations).delete()
    return removed


def boards_of(membership: Membership, generation: Generation) -> set[int]:
    """The ids of the team's boards this result is on."""
    return set(BoardItem.objects.filter(generation=generation, board__team_id=membership.team_id)
               .values_list("board_id", flat=True))
