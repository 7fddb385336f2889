"""Share links over HTTP: list, create, revoke, by the rules of the Share links page.

The same services as the pages (``generations.share.services``): any member of the team may
share the team's finished results or boards, list the team's links and revoke any of them.
A link's token is in the answer that creates it and nowhere else, ever.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone
from ninja import Field, Query, Router, Schema

from generations.access import team_generations
from generations.api.auth import require_scope
from generations.api.problems import ApiProblem
from generations.api.schemas import Problem, ShareCreated, ShareIn, SharePage
from generations.boards import services as boards
from generations.share import services as sharing
from generations.share.models import ShareLink

router = Router(tags=["Share links"])

PER_PAGE = 50  # as the Share links page
MAX_EXPIRY_DAYS = 3650  # as the page's "on a date"


class SharePageQuery(Schema):
    page: int = Field(1, ge=1, description="Which page of 50, newest links first.")


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def share_entry(link: ShareLink) -> dict:
    """What the Share links page shows of a link (a row of ``team_shares``), and no token."""
    return {"id": str(link.public_id), "title": link.title, "state": link.state, "created": link.created.isoformat(),
            "created_by": link.created_by.email if link.created_by_id else None,
            "expires_at": _iso(link.expires_at), "revoked_at": _iso(link.revoked_at),
            "revoked_by": link.revoked_by.email if link.revoked_by_id else None,
            "show_prompt": link.show_prompt, "views": link.view_count,
            "board": str(link.board.public_id) if link.board_id else None,
            "board_name": link.board.name if link.board_id else None,
            "generations": [{"id": str(g.public_id), "kind": g.kind, "model": f"{g.provider}:{g.model}"}
                            for g in link.generations.all()]}


def _public_url(request, token: str) -> str:
    path = reverse("generations:share_public", args=[token])
    base = settings.KILN_PUBLIC_URL  # as the page: the site's public address when one is set
    return f"{base}{path}" if base else request.build_absolute_uri(path)


def _require_share_or_read(request) -> None:
    if not {"read", "share"} & set(request.auth.scopes):
        require_scope(request, "read")  # answers the 403 naming the scope


@router.get("/shares", response={200: SharePage, 401: Problem, 403: Problem},
            summary="The team's share links, as the Share links page lists them",
            description="Every link of the team, newest first, 50 a page: what it shares, who made it, its "
                        "expiry, views and state. Never its token: that is shown once, when it is created. "
                        "Scope: ``read`` or ``share``.")
def list_shares(request, query: Query[SharePageQuery]):
    _require_share_or_read(request)
    paginator = Paginator(sharing.team_shares(request.membership), PER_PAGE)
    page = paginator.get_page(query.page)
    next_url = (request.build_absolute_uri(f"{request.path}?page={page.next_page_number()}")
                if page.has_next() else None)
    return {"items": [share_entry(link) for link in page.object_list], "page": page.number,
            "pages": paginator.num_pages, "next_url": next_url}


def _ids(values: list[str]) -> list[uuid.UUID]:
    try:
        return list(dict.fromkeys(uuid.UUID(str(v)) for v in values))
    except ValueError:
        raise ApiProblem(422, "generations: every entry must be a result's id.",
                         errors={"generations": "Every entry must be a result's id."}) from None


def _expiry(payload: ShareIn) -> tuple[dt.timedelta | None, dt.datetime | None]:
    if payload.expires_in_days is not None and payload.expires_at is not None:
        raise ApiProblem(422, "Give expires_in_days or expires_at, not both.",
                         errors={"expires_at": "Give expires_in_days or expires_at, not both."})
    if payload.expires_in_days is not None:
        if not 1 <= payload.expires_in_days <= MAX_EXPIRY_DAYS:
            raise ApiProblem(422, f"expires_in_days: from 1 to {MAX_EXPIRY_DAYS}.",
                             errors={"expires_in_days": f"From 1 to {MAX_EXPIRY_DAYS}."})
        return dt.timedelta(days=payload.expires_in_days), None
    if payload.expires_at is not None:
        try:
            when = dt.datetime.fromisoformat(payload.expires_at)
        except ValueError:
            when = None
        if when is None or when.tzinfo is None:
            raise ApiProblem(422, "expires_at: an ISO 8601 date and time with its time zone.",
                             errors={"expires_at": "An ISO 8601 date and time with its time zone, e.g. "
                                                   "2030-01-31T18:00:00+00:00."})
        if when <= timezone.now():
            raise ApiProblem(422, "expires_at: the expiry must be in the future.",
                             errors={"expires_at": "The expiry must be in the future."})
        return None, when
    return None, None


@router.post("/shares", response={201: ShareCreated, 401: Problem, 403: Problem, 404: Problem, 422: Problem},
             summary="Make a share link to results or a board; its URL is shown this once",
             description="Share finished results of the team (``generations``) or a board (``board``: the link "
                         "shows what is on it when opened). Any member may, as on the pages. The answer's "
                         "``url`` holds the link's token: Kiln keeps only its hash, so store the URL now. An id "
                         "that is not the team's is a 404; a result not finished, too many, or an expiry in the "
                         "past a 422. Scope: ``share``.")
def create_share(request, payload: ShareIn, response: HttpResponse):
    require_scope(request, "share")
    membership = request.membership
    title = payload.title.strip()
    if len(title) > sharing.TITLE_MAX_LENGTH:
        raise ApiProblem(422, f"title: at most {sharing.TITLE_MAX_LENGTH} characters.",
                         errors={"title": f"At most {sharing.TITLE_MAX_LENGTH} characters."})
    expires_in, expires_at = _expiry(payload)
    ids = _ids(payload.generations)
    if len(ids) > sharing.MAX_GENERATIONS:
        raise ApiProblem(422, f"A link can share at most {sharing.MAX_GENERATIONS} results.",
                         errors={"generations": f"At most {sharing.MAX_GENERATIONS}."})
    board = None
    if payload.board is not None:
        try:
            board = boards.find_board(membership, uuid.UUID(payload.board))
        except ValueError:
            board = None
        if board is None:
            raise ApiProblem(404, "Your team has no such board.", errors={"board": "Not one of your team's boards."})
    generations = list(team_generations(membership).filter(public_id__in=ids).order_by("created", "id"))
    if len(generations) != len(ids):
        raise ApiProblem(404, "No such result in your team.", errors={"generations": "Not all of your team's."})
    try:
        link, token = sharing.create_share(membership, generations, board=board, title=title,
                                           show_prompt=payload.show_prompt, expires_in=expires_in,
                                           expires_at=expires_at)
    except sharing.ShareError as exc:
        raise ApiProblem(422, str(exc), errors={"board" if board is not None else "generations": str(exc)}) from None
    response["Cache-Control"] = "no-store"  # the token is in this answer and nowhere else
    link = sharing.team_shares(membership).get(pk=link.pk)
    return 201, {**share_entry(link), "url": _public_url(request, token)}


@router.delete("/shares/{share_id}", response={204: None, 401: Problem, 403: Problem, 404: Problem},
               summary="Revoke a share link: it stops opening anything at once",
               description="Any member of the team may revoke any of its links, as on the Share links page. "
                           "Revoking a link that is already revoked changes nothing and is also a 204 (it keeps "
                           "who revoked it first, and when). Another team's link is a 404. Scope: ``share``.")
def revoke_share(request, share_id: uuid.UUID):
    require_scope(request, "share")
    membership = request.membership
    link = sharing.team_shares(membership).filter(public_id=share_id).first()
    if link is None:
        raise ApiProblem(404, "No such share link in this team.")
    try:
        sharing.revoke(link, membership)
    except sharing.ShareError as exc:  # the service's own rule (the link's team only)
        raise ApiProblem(403, str(exc)) from None
    return 204, None
