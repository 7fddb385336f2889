"""Boards: the boards page, a card's "Add to board" picker, and the selection bar's board actions.

A board is shown in the gallery itself (``/gallery/?board=<id>``, a filter like the others);
sharing one is the share room's ``share_board``. Every view keeps to the member's team: a
board or a result of another team answers 404, as one that does not exist.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST, require_safe
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from accounts.models import Membership
from accounts.teams import require_membership
from generations.boards import services as boards
from generations.boards.forms import BoardNameForm
from generations.boards.models import Board
from generations.gallery import queries as gallery_queries
from generations.gallery.actions import back, bulk_answer, results, selection
from generations.models import Generation

PICKER = "generations/boards/boards.html#picker"
BULK_RESULT = "generations/boards/boards.html#bulk_result"  # the gallery's, and a link to the board


def _board(membership: Membership, public_id) -> Board:
    board = boards.find_board(membership, public_id)
    if board is None:
        raise Http404("No such board in your team.")
    return board


def _posted_board(request: HttpRequest, membership: Membership) -> Board:
    try:
        return _board(membership, uuid.UUID(request.POST.get("board", "")))
    except ValueError:
        raise Http404("No such board in your team.") from None


def _card(membership: Membership, public_id) -> Generation:
    return get_object_or_404(gallery_queries.card_queryset(membership), public_id=public_id)


# ---------------------------------------------------------------------------
# The boards page


@login_required
@require_safe
def board_list(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)
    return _list_page(request, membership, BoardNameForm())


def _list_page(request, membership, form, status=200):
    rows = [(board, boards.can_manage_board(membership, board)) for board in boards.boards_overview(membership)]
    return render(request, "generations/boards/boards.html", {
        "rows": rows, "form": form, "nav_section": "gallery"}, status=status)


@login_required
@require_POST
def board_create(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)
    form = BoardNameForm(request.POST)
    if form.is_valid():
        try:
            board = boards.create_board(membership, form.cleaned_data["name"])
        except boards.BoardError as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(request, f"Board “{board.name}” made. Add results from a card's ⋯ menu or the "
                                      "selection bar in the gallery.")
            return redirect("generations:boards")
    return _list_page(request, membership, form, status=400)


@login_required
@require_POST
def board_rename(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_membership(request)
    board = _board(membership, public_id)
    form = BoardNameForm(request.POST)
    try:
        if not form.is_valid():
            raise boards.BoardError(form.errors["name"][0])
        boards.rename_board(membership, board, form.cleaned_data["name"])
    except boards.BoardError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Renamed to “{board.name}”.")
    return back(request, reverse("generations:boards"))


@login_required
@require_POST
def board_delete(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_membership(request)
    board = _board(membership, public_id)
    try:
        boards.delete_board(membership, board)
    except boards.BoardError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Board “{board.name}” deleted. Its results are still in the gallery.")
    return redirect("generations:boards")


# ---------------------------------------------------------------------------
# One card: the picker in its ⋯ menu


def _picker(request: HttpRequest, membership: Membership, g: Generation, notice: str = "",
            error: str = "", status: int = 200) -> HttpResponse:
    on = boards.boards_of(membership, g)
    context = {"g": g, "boards": list(boards.team_boards(membership)), "on": on, "notice": notice, "error": error,
               "name_max": boards.NAME_MAX_LENGTH}
    if request.htmx:
        # 200 even for a refusal: htmx swaps only successful answers, and the picker must say why.
        return render(request, PICKER, context)
    return render(request, "generations/boards/picker_page.html", context | {"nav_section": "gallery"}, status=status)


@login_required
@require_GET
@vary_on_headers("HX-Request")
def card_boards(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_membership(request)
    return _picker(request, membership, _card(membership, public_id))


@login_required
@require_POST
def card_board_add(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """``board=<id>`` puts the result on that board; ``name=…`` on the board of that name,
    made if the team has none. With ``then=card`` (the Undo of a removal) the card answers."""
    membership = require_membership(request)
    g = _card(membership, public_id)
    try:
        board, created = ((_posted_board(request, membership), False) if request.POST.get("board")
                          else boards.board_named(membership, request.POST.get("name", "")))
        boards.add_to_board(membership, board, [g])
    except boards.BoardError as exc:
        return _picker(request, membership, g, error=str(exc), status=400)
    if request.htmx and request.POST.get("then") == "card":
        return render(request, "generations/gallery/gallery.html#card",
                      {"g": _card(membership, public_id), "filters": {"board": str(board.public_id)}})
    if not request.htmx:
        messages.success(request, f"Added to “{board.name}”.")
        return back(request, reverse("generations:card_boards", args=[g.public_id]))
    response = _picker(request, membership, g, notice=f"Added to “{board.name}”.")
    return _announce(response, board) if created and request.htmx else response


@login_required
@require_POST
def card_board_remove(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """Take the result off ``board``. With ``then=tombstone`` (the card's "Remove from this
    board" while the gallery shows that board) the card makes way for a note with an Undo."""
    membership = require_membership(request)
    g = _card(membership, public_id)
    board = _posted_board(request, membership)
    boards.remove_from_board(membership, board, [g])
    notice = f"Removed from “{board.name}”."
    if request.htmx and request.POST.get("then") == "tombstone":
        return render(request, "generations/boards/boards.html#removed", {"g": g, "board": board, "notice": notice})
    if not request.htmx:
        messages.success(request, notice)
        return back(request, reverse("generations:card_boards", args=[g.public_id]))
    return _picker(request, membership, g, notice=notice)


# ---------------------------------------------------------------------------
# The gallery's selection bar


def _announce(response: HttpResponse, board: Board) -> HttpResponse:
    """A board made from a card or the bar joins the page's lists of boards (the gallery's
    filter, the bar's names) without a reload: boards.js listens for this event."""
    return trigger_client_event(response, "kiln:boardCreated", {"id": str(board.public_id), "name": board.name})


@login_required
@require_POST
def bulk_board_add(request: HttpRequest) -> HttpResponse:
    """The selection onto the board named ``board_name`` (typed or picked; made if new)."""
    membership = require_membership(request)
    try:
        cards = selection(request, membership)
        board, created = boards.board_named(membership, request.POST.get("board_name", ""))
        added = boards.add_to_board(membership, board, cards)
    except (gallery_queries.InvalidSelection, boards.BoardError) as exc:
        return bulk_answer(request, str(exc), refused=True, template=BULK_RESULT)
    if added:
        notice = f"Added {results(added)} to “{board.name}”."
        if skipped := len(cards) - added:
            notice += f" {results(skipped)} {'was' if skipped == 1 else 'were'} on it already."
    else:
        notice = f"They were all on “{board.name}” already."
    if created:
        notice = f"New board “{board.name}”. " + notice
    response = bulk_answer(request, notice, template=BULK_RESULT, board=board)
    return _announce(response, board) if created and request.htmx else response


@login_required
@require_POST
def bulk_board_remove(request: HttpRequest) -> HttpResponse:
    """The selection off ``board`` (the gallery is showing it): they leave the view, not the gallery."""
    membership = require_membership(request)
    board = _posted_board(request, membership)
    try:
        cards = selection(request, membership)
    except gallery_queries.InvalidSelection as exc:
        return bulk_answer(request, str(exc), refused=True, template=BULK_RESULT)
    removed = boards.remove_from_board(membership, board, cards)
    notice = f"Removed {results(removed)} from “{board.name}”; they stay in the gallery."
    return bulk_answer(request, notice, template=BULK_RESULT, board=board, tombstones=cards,
                       tombstone_notice=f"Removed from “{board.name}”.")


urlpatterns = [
    path("boards/", board_list, name="boards"),
    path("boards/new/", board_create, name="board_create"),
    path("boards/<uuid:public_id>/rename/", board_rename, name="board_rename"),
    path("boards/<uuid:public_id>/delete/", board_delete, name="board_delete"),
    path("g/<uuid:public_id>/boards/", card_boards, name="card_boards"),
    path("g/<uuid:public_id>/boards/add/", card_board_add, name="card_board_add"),
    path("g/<uuid:public_id>/boards/remove/", card_board_remove, name="card_board_remove"),
    path("gallery/selection/board/", bulk_board_add, name="bulk_board_add"),
    path("gallery/selection/board/remove/", bulk_board_remove, name="bulk_board_remove"),
]
