"""The team's gallery over HTTP: the same filters and keyset pages as the gallery page.

``GET /gallery`` reads its query string with the page's own ``parse_filters`` and pages with
``gallery_page`` (``generations.gallery.queries``), so a query string gives the API the same
results, in the same order, as the page; ``after`` is the page's cursor.
"""

from __future__ import annotations

from ninja import Field, Query, Router, Schema

from generations.api.auth import require_scope
from generations.api.catalog import credits
from generations.api.generations import media_body
from generations.api.problems import ApiProblem
from generations.api.schemas import GalleryPage, Problem
from generations.boards import services as board_services
from generations.gallery import queries as gallery_queries
from generations.gallery.queries import InvalidCursor, InvalidFilters
from generations.models import Generation

router = Router(tags=["Gallery"])

MAX_LIMIT = 100


class GalleryQuery(Schema):
    """The gallery page's query string (documented here; read by the page's own parser)."""

    by: str | None = Field(None, description="“me”, or a member's membership id; default everyone.")
    kind: str | None = Field(None, description="image or video")
    provider: str | None = Field(None, description="A provider's id, e.g. shark.")
    model: str | None = Field(None, description="A model's id (without the provider).")
    status: str | None = Field(None, description="A status, or “active” for every job not finished yet.")
    fav: str | None = Field(None, description="1: only the token member's favourites.")
    date_from: str | None = Field(None, alias="from", description="Made on or after this day (YYYY-MM-DD).")
    date_to: str | None = Field(None, alias="to", description="Made on or before this day (YYYY-MM-DD).")
    q: str | None = Field(None, description="Search the prompts (words; “-word” excludes; quotes for a phrase).")
    archived: str | None = Field(None, description="1: the archive (archived results only) instead of the gallery.")
    board: str | None = Field(None, description="A board's id: the results on it (404 if the team has no such board).")
    after: str | None = Field(None, description="The cursor of the page to continue from (``next`` of the last one).")
    limit: str | None = Field(None, description=f"Results a page, 1 to {MAX_LIMIT} (default "
                                                f"{gallery_queries.PAGE_SIZE}, as the page).")


def _limit(raw: str | None) -> int:
    if raw in (None, ""):
        return gallery_queries.PAGE_SIZE
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_LIMIT:
        raise ApiProblem(422, f"limit: a whole number from 1 to {MAX_LIMIT}.",
                         errors={"limit": f"A whole number from 1 to {MAX_LIMIT}."})
    return value


def _absolute(request, path: str) -> str:
    return request.build_absolute_uri(path)


def summary(request, g: Generation) -> dict:
    """A compact generation, from a row of ``card_queryset`` (prompt, author, media loaded)."""
    media = [media_body(request, m) for m in g.media.all()]
    cost = g.actual_cost if g.actual_cost is not None else g.estimated_cost
    return {"id": str(g.public_id), "status": g.status, "model": f"{g.provider}:{g.model}", "provider": g.provider,
            "kind": g.kind, "operation": g.operation, "prompt": g.prompt.text, "created": g.created.isoformat(),
            "finished": g.finished_at.isoformat() if g.finished_at else None,
            "author": g.author.email if g.author_id else None, "favourite": bool(getattr(g, "is_favourite", False)),
            "archived": g.archived, "cost": credits(cost), "cost_is_estimate": g.actual_cost is None,
            "thumbnail_url": next((m["thumbnail_url"] for m in media if m["thumbnail_url"]), None), "media": media}


@router.get("/gallery", response={200: GalleryPage, 401: Problem, 403: Problem, 404: Problem, 422: Problem},
            summary="The team's results, filtered and paged as the gallery page",
            description="The gallery page's filters as the same query-string parameters (a bookmarked gallery "
                        "URL's query string works here), newest first, in pages joined by a cursor: pass "
                        "``next`` as ``after`` (or follow ``next_url``) until it is null. A filter that is not "
                        "acceptable, or a cursor that is not one, is a 422 naming it. Scope: ``read``.")
def gallery(request, filters: Query[GalleryQuery]):
    require_scope(request, "read")
    membership = request.membership
    size = _limit(request.GET.get("limit"))
    try:
        parsed = gallery_queries.parse_filters(request.GET)
    except InvalidFilters as exc:
        raise ApiProblem(422, str(exc), errors=exc.errors) from None
    if parsed.board and board_services.find_board(membership, parsed.board) is None:
        raise ApiProblem(404, "Your team has no such board.", errors={"board": "Not one of your team's boards."})
    try:
        page = gallery_queries.gallery_page(membership, parsed, request.GET.get("after") or None, size)
    except InvalidCursor as exc:
        raise ApiProblem(422, f"after: {exc}", errors={"after": str(exc)}) from None
    extra = {"limit": str(size)} if request.GET.get("limit") else {}
    next_url = (_absolute(request, f"{request.path}?{parsed.querystring(**extra, after=page.next_cursor)}")
                if page.next_cursor else None)
    return {"items": [summary(request, g) for g in page.items], "next": page.next_cursor, "next_url": next_url}
