"""The gallery, the detail page, live status, the actions on a result, and media.

Every view is scoped to the member's current team: an outsider asking for a
generation or a file of another team gets the same 404 as for one that does
not exist. Media goes out only through ``generations.serving.serve_file``.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from accounts.credits import services as credits
from accounts.models import Membership
from accounts.teams import require_membership
from generations import services
from generations.access import can_manage_generation, get_media_for_member
from generations.boards import services as board_services
from generations.gallery import queries as gallery_queries
from generations.gallery.actions import back, bulk_answer, results, selection
from generations.gallery.queries import (
    STATUS_FILTERS,
    InvalidCursor,
    InvalidFilters,
    InvalidSelection,
    card_queryset,
)
from generations.gallery.templatetags import state_token_of
from generations.models import TERMINAL, Generation, InputMedia, Kind, Status
from generations.providers.registry import PROVIDER_NAMES, PROVIDERS, get_provider
from generations.serving import preview_of, serve_file, zip_response
from generations.share.services import MAX_GENERATIONS as MAX_SHARED
from generations.studio import services as studio_services

STOP_POLLING = 286  # htmx: stop polling, this answer is final
MAX_STATUS_IDS = 100
ZIP_MAX_RESULTS = 100  # results in one "Download as zip": each streams for as long as the zip takes

CARD_SIZES = [("small", "Small"), ("medium", "Medium"), ("large", "Large")]  # the grid's densities (layout.js)



def _get_generation(membership: Membership, public_id) -> Generation:
    return get_object_or_404(card_queryset(membership), public_id=public_id)


def _may_manage(membership: Membership, generation: Generation) -> None:
    if not can_manage_generation(membership, generation):
        raise PermissionDenied("Only its author or a team admin can do this.")


def _back(request: HttpRequest, generation: Generation | None = None) -> HttpResponse:
    """Where a no-JS form goes after an action: ``next`` when it is ours, else the detail page."""
    return back(request, reverse("generations:detail", args=[generation.public_id]) if generation is not None
                else reverse("generations:gallery"))


def _catalog_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """Models for the filter form, grouped by provider: from the registry, no query."""
    return [(PROVIDER_NAMES[provider_id], [(m.id, m.label) for m in get_provider(provider_id).models()])
            for provider_id in PROVIDERS]


# ---------------------------------------------------------------------------
# Pages


@login_required
@require_GET
@vary_on_headers("HX-Request", "HX-Target")
def gallery(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)
    status, errors = 200, {}
    page = gallery_queries.Page([], None)
    try:
        filters = gallery_queries.parse_filters(request.GET)
        page = gallery_queries.gallery_page(membership, filters, request.GET.get("after") or None)
    except InvalidFilters as exc:
        filters, errors, status = gallery_queries.GalleryFilters(), exc.errors, 400
    except InvalidCursor as exc:
        errors, status = {"after": str(exc)}, 400
    base = reverse("generations:gallery")
    next_url = f"{base}?{filters.querystring(after=page.next_cursor)}" if page.next_cursor else ""
    context = {"generations": page.items, "next_url": next_url, "filters": filters, "errors": errors,
               "error_rows": [(name, gallery_queries.FILTER_LABELS.get(name, name), message)
                              for name, message in errors.items()],
               "selectable": True,
               # Filters in force besides the search box and the tab: what "Filters" counts on a phone.
               "active_filters": len(set(filters.params()) - {"q", "archived"})}
    # The filter form's answer (it targets the results) is the results and the form's state;
    # any other htmx request (the next page) is the cards alone.
    filtering = bool(request.htmx) and request.htmx.target == "gallery-results"
    if request.htmx and not request.htmx.boosted and not filtering:
        return render(request, "generations/gallery/gallery.html#page", context, status=status)
    # The filter's and the bar's list of boards, and the board shown, in one query. (A page
    # that htmx asks for needs neither: the filter joins the board within the team.)
    boards = list(board_services.team_boards(membership).select_related("created_by"))
    board = next((b for b in boards if str(b.public_id) == filters.board), None)
    if filters.board and board is None:
        raise Http404("No such board in your team.")
    members = (Membership.objects.filter(team_id=membership.team_id).select_related("user")
               .only("public_id", "removed_at", "user__email", "user__name").order_by("user__email"))
    context |= {
        "nav_section": "gallery",
        "raw": {k: request.GET.get(k, "") for k in ("by", "kind", "provider", "model", "status", "from", "to", "q", "board")},
        "members": members, "kinds": Kind.choices, "statuses": STATUS_FILTERS,
        "providers": list(PROVIDER_NAMES.items()), "model_groups": _catalog_choices(),
        "first_page_url": f"{base}?{filters.querystring()}" if request.GET.get("after") else "",
        "boards": boards, "board": board,
        "max_selection": gallery_queries.MAX_SELECTION, "zip_max": ZIP_MAX_RESULTS, "share_max": MAX_SHARED,
        "card_sizes": CARD_SIZES, "filters_oob": filtering,
    }
    template = "generations/gallery/gallery.html#results" if filtering else "generations/gallery/gallery.html"
    return render(request, template, context, status=status)


@login_required
@require_GET
@vary_on_headers("HX-Request")
def detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_membership(request)
    g = _get_generation(membership, public_id)
    cards = card_queryset(membership)
    inputs = list(InputMedia.objects.filter(generation=g).select_related("source_media__generation__prompt")
                  .defer("source_media__generation__raw_payload"))
    context = {
        "g": g,
        "inputs": inputs,
        "parent": cards.filter(pk=g.parent_id).first() if g.parent_id else None,
        "children": list(cards.filter(parent=g).order_by("created")),
        "used_by": list(cards.filter(inputs__source_media__generation=g).exclude(parent=g).distinct().order_by("created")),
        "siblings": list(cards.filter(batch_id=g.batch_id).exclude(pk=g.pk).order_by("created")) if g.batch_id else [],
        "nav_section": "gallery",
        "seed": studio_services.seed_shown(g),
    }
    return render(request, "generations/gallery/detail.html", context)


# ---------------------------------------------------------------------------
# Live status


@login_required
@require_GET
def card_status(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """One generation's fragment: the card, or with ``?panel=detail`` the detail page's
    live panel. 286 (htmx: stop) once it is final."""
    membership = require_membership(request)
    g = _get_generation(membership, public_id)
    detail_panel = request.GET.get("panel") == "detail"
    template = "generations/gallery/detail.html#live" if detail_panel else "generations/gallery/gallery.html#card"
    response = render(request, template, {"g": g, "poll": True,
                                         "seed": studio_services.seed_shown(g) if detail_panel else None})
    if g.status in TERMINAL:
        response.status_code = STOP_POLLING
    return response


@login_required
@require_GET
def status_batch(request: HttpRequest) -> HttpResponse:
    """Every pending card of a page in one request.

    ``?ids=<uuid>[:<state>],…`` (at most 100): the cards the page shows as pending, with
    the state token each shows. The answer swaps out of band the cards whose state
    changed, removes those that are gone, and is 286 when none is pending any more.

    Every open page asks this once a tick, so the usual answer (nothing changed) costs
    one query beyond signing in: the state columns of the asked-for rows *in the teams
    this user is an active member of*, the membership check and the lookup in one.
    A card of a team they left or never joined is answered exactly like a deleted one.
    Only cards that changed are loaded in full, with the member's membership of their
    team (so a page of team A left open after switching to team B still updates)."""
    wanted: dict[uuid.UUID, str] = {}
    raw = request.GET.get("ids", "")
    for item in filter(None, (part.strip() for part in raw.split(","))):
        public_id, _, state = item.partition(":")
        try:
            wanted[uuid.UUID(public_id)] = state
        except ValueError:
            return HttpResponseBadRequest("ids must be generation ids separated by commas.")
    if len(wanted) > MAX_STATUS_IDS:
        return HttpResponseBadRequest(f"Ask for at most {MAX_STATUS_IDS} generations at once.")
    states = gallery_queries.card_states(request.user.pk, list(wanted))
    found: dict[uuid.UUID, str] = {}
    changed: dict[int, list[uuid.UUID]] = {}
    for team_id, public_id, *state in states:
        found[public_id] = state[0]
        if state_token_of(*state) != wanted[public_id]:
            changed.setdefault(team_id, []).append(public_id)
    gone = set(wanted) - set(found)
    if changed or gone:
        parts = [_changed_cards(request, team_id, ids) for team_id, ids in changed.items()]
        if gone:
            parts.append(render_to_string("generations/gallery/gallery.html#status_oob", {"generations": (), "gone": gone}))
        response = HttpResponse("".join(parts))
    else:
        response = HttpResponse("")  # the usual answer: nothing to swap
    if not any(status not in TERMINAL for status in found.values()):
        response.status_code = STOP_POLLING
    return response


def _changed_cards(request: HttpRequest, team_id: int, ids: list[uuid.UUID]) -> str:
    """The out-of-band cards of one team, rendered for the member's role in that team."""
    membership = (Membership.objects.active().select_related("team", "wallet", "user")
                  .filter(user_id=request.user.pk, team_id=team_id).first())
    if membership is None:  # removed between the two queries: nothing to show
        return ""
    request.membership = membership  # the cards' buttons follow this team's role
    cards = gallery_queries.with_typical_durations(list(card_queryset(membership).filter(public_id__in=ids)))
    return render_to_string("generations/gallery/gallery.html#status_oob", {"generations": cards, "gone": ()}, request)


# ---------------------------------------------------------------------------
# Actions


def _card_or_back(request, membership, g: Generation, notice: str = "") -> HttpResponse:
    if request.htmx:
        g = _get_generation(membership, g.public_id)
        return render(request, "generations/gallery/gallery.html#card", {"g": g, "notice": notice})
    if notice:
        messages.info(request, notice)
    return _back(request, g)


@login_required
@require_POST
def cancel(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_membership(request)
    g = _get_generation(membership, public_id)
    _may_manage(membership, g)
    notice = services.cancel_generation(g, actor=request.user)
    return _card_or_back(request, membership, g, notice)


@login_required
@require_POST
def favourite(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_membership(request)
    g = _get_generation(membership, public_id)
    g.is_favourite = gallery_queries.toggle_favourite(membership, g)
    if request.htmx:
        return render(request, "generations/gallery/gallery.html#favourite", {"g": g})
    return _back(request, g)


def _set_archived(request: HttpRequest, public_id: uuid.UUID, archived: bool) -> HttpResponse:
    membership = require_membership(request)
    g = _get_generation(membership, public_id)
    _may_manage(membership, g)
    gallery_queries.set_archived(g, archived)
    notice = "Archived: hidden from the gallery, kept in the archive." if archived else "Restored to the gallery."
    if request.htmx and request.POST.get("then") == "card":  # "Undo" in the gallery: the card comes back
        return render(request, "generations/gallery/gallery.html#card", {"g": g})
    if request.htmx:
        return render(request, "generations/gallery/gallery.html#tombstone", {"g": g, "notice": notice})
    messages.success(request, notice)
    return _back(request, g)


@login_required
@require_POST
def archive(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    return _set_archived(request, public_id, True)


@login_required
@require_POST
def restore(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    return _set_archived(request, public_id, False)


@login_required
@require_POST
def delete(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_membership(request)
    g = _get_generation(membership, public_id)
    _may_manage(membership, g)
    try:
        gallery_queries.delete_generation(g)
    except gallery_queries.CannotDelete as exc:
        return _card_or_back(request, membership, g, str(exc))
    if request.htmx:
        return render(request, "generations/gallery/gallery.html#tombstone", {"g": g, "notice": "Deleted.", "deleted": True})
    messages.success(request, "Deleted, with its files.")
    return redirect("generations:gallery")


@login_required
@require_POST
def retry(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_membership(request)
    g = _get_generation(membership, public_id)
    if g.status not in (Status.FAILED, Status.EXPIRED, Status.CANCELLED):
        messages.error(request, "Only a failed, expired or cancelled generation can be retried.")
        return redirect("generations:detail", public_id=g.public_id)
    try:
        new = services.retry_generation(g, membership=membership)
    except services.NeedsEdit as exc:
        # A page drawn before the job failed still offers "Retry": open it to edit instead.
        messages.error(request, exc.summary())
        return redirect(f"{reverse('generations:studio')}?remix={g.public_id}")
    except services.GenerationRejected as exc:
        messages.error(request, f"Could not retry: {exc.summary()}")
        return redirect("generations:detail", public_id=g.public_id)
    messages.success(request, "Retrying: a new generation, linked to this one.")
    return redirect("generations:detail", public_id=new.public_id)


@login_required
@require_POST
def settle(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """Settle a job that needs review from its card or page: ``action=release`` refunds the
    held credits, ``action=capture`` charges them (the provider's reported charge, else the
    estimate). Team owners and admins only; the same service as the credits page and the
    Django admin (``credits.resolve_review``), so a second click changes nothing."""
    membership = require_membership(request)
    g = _get_generation(membership, public_id)   # another team's job: 404
    if not membership.is_manager:
        raise PermissionDenied("Only a team owner or admin can settle a job's credits.")
    action = request.POST.get("action", "")
    if action not in credits.REVIEW_ACTIONS:
        return HttpResponseBadRequest("action must be release (refund) or capture (charge).")
    if not g.needs_review:
        return _card_or_back(request, membership, g, "This job was already settled.")
    amount = (g.actual_cost if g.actual_cost is not None else g.estimated_cost) if action == "capture" else None
    entry = credits.resolve_review(g, action=action, actor=request.user, amount=amount)
    who = g.author.get_short_name() if g.author_id else "its author"
    if entry is None:
        notice = "Nothing was held for this job any more; it is marked as settled."
    elif action == "release":
        notice = f"Refunded: {entry.available_delta:,} credits went back to {who}."
    else:
        notice = f"Charged {-(entry.available_delta + entry.reserved_delta):,} credits to {who}."
    return _card_or_back(request, membership, g, notice)


# ---------------------------------------------------------------------------
# Several cards at once: the gallery's selection bar (its requests and answers: actions.py)
#
# Each card follows the rules of its own action: archive and restore only where the member
# may manage it (the others are left as they were, and the answer says so); favourites are
# the member's own.


def _bulk_set_archived(request: HttpRequest, archived: bool) -> HttpResponse:
    membership = require_membership(request)
    try:
        cards = selection(request, membership)
    except InvalidSelection as exc:
        return bulk_answer(request, str(exc), refused=True)
    allowed = [g for g in cards if can_manage_generation(membership, g)]
    gallery_queries.set_archived_many(allowed, archived)
    verb = "archive" if archived else "restore"
    notice = f"{verb.capitalize()}d {results(len(allowed))}." if allowed else ""
    if skipped := len(cards) - len(allowed):
        notice += (f" {results(skipped)} left as it was: only its author or a team owner or admin can {verb} it."
                   if skipped == 1 else f" {results(skipped)} left as they were: only their authors or a team"
                   f" owner or admin can {verb} them.")
    tombstone = "Archived: hidden from the gallery, kept in the archive." if archived else "Restored to the gallery."
    return bulk_answer(request, notice.strip(), tombstones=allowed, tombstone_notice=tombstone, refused=not allowed)


@login_required
@require_POST
def bulk_archive(request: HttpRequest) -> HttpResponse:
    return _bulk_set_archived(request, True)


@login_required
@require_POST
def bulk_restore(request: HttpRequest) -> HttpResponse:
    return _bulk_set_archived(request, False)


@login_required
@require_POST
def bulk_favourite(request: HttpRequest) -> HttpResponse:
    """``favourite=on`` (the default) makes every selected card one of the member's
    favourites, ``off`` none of them: a mixed selection ends the same either way."""
    membership = require_membership(request)
    try:
        cards = selection(request, membership)
    except InvalidSelection as exc:
        return bulk_answer(request, str(exc), refused=True)
    on = request.POST.get("favourite", "on") != "off"
    changed = gallery_queries.set_favourite_many(membership, cards, on)
    if on:
        notice = f"Added {results(changed)} to your favourites." if changed else "They were all favourites already."
    else:
        notice = f"Removed {results(changed)} from your favourites." if changed else "None of them was a favourite."
    return bulk_answer(request, notice, cards=cards)


@login_required
@require_POST
def bulk_share(request: HttpRequest) -> HttpResponse:
    """To the share form for the selection (``share_new``, which creates the link): the
    finished results only, and a word about any left out."""
    membership = require_membership(request)
    try:
        cards = selection(request, membership)
    except InvalidSelection as exc:
        return bulk_answer(request, str(exc), refused=True)
    finished = [g for g in cards if g.status == Status.SUCCEEDED]
    if not finished:
        return bulk_answer(request, "Only finished results can be shared, and none of the selected ones has "
                                    "finished.", refused=True)
    if len(finished) > MAX_SHARED:
        return bulk_answer(request, f"A link can share at most {MAX_SHARED} results; {len(finished)} are "
                                    "selected. Select fewer.", refused=True)
    if left_out := len(cards) - len(finished):
        messages.info(request, f"{results(left_out)} of the selection {'is' if left_out == 1 else 'are'} left out: "
                               "only finished results can be shared.")
    query = ",".join(str(g.public_id) for g in finished)
    return redirect(f"{reverse('generations:share_new')}?ids={query}")


@login_required
@require_POST
def bulk_download(request: HttpRequest) -> HttpResponse:
    """The selected results' files as one zip, streamed (``serving.zip_response``): the
    stored originals, each named as its own download would be. At most ZIP_MAX_RESULTS."""
    membership = require_membership(request)
    try:
        cards = selection(request, membership)
    except InvalidSelection as exc:
        return bulk_answer(request, str(exc), refused=True)
    if len(cards) > ZIP_MAX_RESULTS:
        return bulk_answer(request, f"A zip holds at most {ZIP_MAX_RESULTS} results; {len(cards)} are selected. "
                                    "Select fewer and download again.", refused=True)
    files = [(name, media.file) for name, media in gallery_queries.zip_members(cards)]
    day = timezone.localdate().isoformat()
    response = zip_response(files, f"kiln-{day}-{results(len(cards)).replace(' ', '-')}.zip") if files else None
    if response is None:
        return bulk_answer(request, "None of the selected results has a file to download: they failed, were "
                                    "cancelled or have not finished yet.", refused=True)
    return response


# ---------------------------------------------------------------------------
# Media: only through these access-checked views


def _media(request: HttpRequest, media_public_id: uuid.UUID):
    # Anonymous visitors have no membership: 404, like an outsider (no login redirect).
    return get_media_for_member(require_membership(request), media_public_id)


@require_GET
def media(request: HttpRequest, media_public_id: uuid.UUID) -> HttpResponse:
    item = _media(request, media_public_id)
    return serve_file(request, item.file, item.mime_type)


@require_GET
def thumbnail(request: HttpRequest, media_public_id: uuid.UUID) -> HttpResponse:
    preview = preview_of(_media(request, media_public_id))
    if preview is None:
        raise Http404("No poster frame for this video.")
    return serve_file(request, *preview)


@require_GET
def download(request: HttpRequest, media_public_id: uuid.UUID) -> HttpResponse:
    item = _media(request, media_public_id)
    item.generation.prompt  # noqa: B018 (one query, for the file name)
    return serve_file(request, item.file, item.mime_type, download_name=gallery_queries.download_filename(item))


@require_GET
def input_media(request: HttpRequest, public_id: uuid.UUID, role: str, position: int) -> HttpResponse:
    """A file a generation was made from (an upload or a copy of gallery media)."""
    membership = require_membership(request)
    item = get_object_or_404(InputMedia, generation__public_id=public_id, generation__team_id=membership.team_id,
                             role=role, position=position)
    return serve_file(request, item.file, item.mime_type)


urlpatterns = [
    path("gallery/", gallery, name="gallery"),
    path("gallery/status/", status_batch, name="status_batch"),
    path("gallery/selection/archive/", bulk_archive, name="bulk_archive"),
    path("gallery/selection/restore/", bulk_restore, name="bulk_restore"),
    path("gallery/selection/favourite/", bulk_favourite, name="bulk_favourite"),
    path("gallery/selection/share/", bulk_share, name="bulk_share"),
    path("gallery/selection/download/", bulk_download, name="bulk_download"),
    path("g/<uuid:public_id>/", detail, name="detail"),
    path("g/<uuid:public_id>/status/", card_status, name="card_status"),
    path("g/<uuid:public_id>/cancel/", cancel, name="cancel"),
    path("g/<uuid:public_id>/favourite/", favourite, name="favourite"),
    path("g/<uuid:public_id>/archive/", archive, name="archive"),
    path("g/<uuid:public_id>/restore/", restore, name="restore"),
    path("g/<uuid:public_id>/delete/", delete, name="delete"),
    path("g/<uuid:public_id>/retry/", retry, name="retry"),
    path("g/<uuid:public_id>/settle/", settle, name="settle"),
    path("g/<uuid:public_id>/inputs/<slug:role>/<int:position>/", input_media, name="input_media"),
    path("m/<uuid:media_public_id>/", media, name="media"),
    path("m/<uuid:media_public_id>/thumb/", thumbnail, name="thumbnail"),
    path("m/<uuid:media_public_id>/download/", download, name="download"),
]
