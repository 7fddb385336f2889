"""Share links: members create, list and revoke them; anyone with a live token sees
the shared results (and nothing else of the team) on a page that needs no login."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django.views.decorators.vary import vary_on_headers

from accounts.models import Membership
from accounts.teams import require_membership
from generations.access import get_generation_for_member, team_generations
from generations.boards import services as boards
from generations.boards.models import Board
from generations.models import Generation, Kind, Media
from generations.serving import serve_file, thumbnail_type
from generations.share import services as sharing
from generations.share.models import ShareLink
from project.cache_headers import no_store
from project.ratelimit import client_address

EXPIRY_CHOICES = [
    ("never", "Never"),
    ("1d", "1 day"),
    ("7d", "7 days"),
    ("30d", "30 days"),
    ("date", "On a date"),
]
_EXPIRY_DAYS = {"1d": 1, "7d": 7, "30d": 30}
_MAX_EXPIRY_DAYS = 3650
# Chat tools fetch og:image themselves; most refuse images above 5 MB.
_OG_IMAGE_MAX_BYTES = 5 * 1024 * 1024
SHARES_PER_PAGE = 50


class ShareForm(forms.Form):
    title = forms.CharField(max_length=sharing.TITLE_MAX_LENGTH, required=False)
    show_prompt = forms.BooleanField(required=False)
    expiry = forms.ChoiceField(choices=EXPIRY_CHOICES, required=False)
    expires_on = forms.DateField(required=False)

    def clean(self):
        cleaned = super().clean()
        expiry = cleaned.get("expiry") or "never"
        cleaned["expiry"] = expiry
        cleaned["expires_in"] = cleaned["expires_at"] = None
        if expiry in _EXPIRY_DAYS:
            cleaned["expires_in"] = timedelta(days=_EXPIRY_DAYS[expiry])
        elif expiry == "date" and "expires_on" not in self.errors:
            day = cleaned.get("expires_on")
            today = timezone.localdate()
            if day is None:
                self.add_error("expires_on", "Choose the date the link stops working.")
            elif day < today:
                self.add_error("expires_on", "Choose today or a later date.")
            elif day > today + timedelta(days=_MAX_EXPIRY_DAYS):
                self.add_error("expires_on", "Choose a date within ten years.")
            else:  # the link works until the end of that day
                cleaned["expires_at"] = datetime.combine(day + timedelta(days=1), time.min,
                                                         tzinfo=timezone.get_current_timezone())
        return cleaned


# ---------------------------------------------------------------- members


@login_required
@require_http_methods(["GET", "POST"])
def share_create(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """Share one result (the form on its detail page posts here)."""
    membership = require_membership(request)
    generation = get_generation_for_member(membership, public_id)
    return _create(request, membership, [generation], single=generation)


@login_required
@require_http_methods(["GET", "POST"])
def share_new(request: HttpRequest) -> HttpResponse:
    """Share a selection: ``ids=<uuid>`` repeated (or comma-separated), from the gallery.
    GET shows the form for the selection; POST creates the link."""
    membership = require_membership(request)
    data = request.POST if request.method == "POST" else request.GET
    raw = [part.strip() for value in data.getlist("ids") for part in value.split(",") if part.strip()]
    try:
        ids = list(dict.fromkeys(uuid.UUID(value) for value in raw))
    except ValueError:
        return HttpResponse("ids must be result ids (UUIDs).", status=400, content_type="text/plain")
    if not ids:
        return HttpResponse("Choose at least one result to share.", status=400, content_type="text/plain")
    if len(ids) > sharing.MAX_GENERATIONS:
        return HttpResponse(f"A link can share at most {sharing.MAX_GENERATIONS} results.", status=400,
                            content_type="text/plain")
    generations = list(team_generations(membership).filter(public_id__in=ids)
                       .prefetch_related("media").order_by("created", "id"))
    if len(generations) != len(ids):
        raise Http404("No such result in your team.")
    return _create(request, membership, generations, single=None)


@login_required
@require_http_methods(["GET", "POST"])
def share_board(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """Share a board (any member may, as any member may share a result): the link shows
    what is on the board when it is opened."""
    membership = require_membership(request)
    board = boards.find_board(membership, public_id)
    if board is None:
        raise Http404("No such board in your team.")
    return _create(request, membership, [], single=None, board=board)


def _create(request: HttpRequest, membership: Membership, generations: list[Generation], *,
            single: Generation | None, board: Board | None = None) -> HttpResponse:
    context = {"generation": single, "generations": generations, "board": board}
    if request.method == "GET":
        initial = {"title": board.name} if board is not None else {}
        return render(request, "generations/share/new.html", {**context, "share_form": ShareForm(initial=initial)})
    form = ShareForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            share, token = sharing.create_share(
                membership, generations, board=board, title=data["title"], show_prompt=data["show_prompt"],
                expires_in=data["expires_in"], expires_at=data["expires_at"])
        except sharing.ShareError as exc:
            form.add_error(None, str(exc))
        else:
            url = _absolute(request, reverse("generations:share_public", args=[token]))
            response = render(request, "generations/share/created.html", {**context, "share": share, "share_url": url})
            # The token is in this page and nowhere else: keep it out of every cache.
            return no_store(response)
    return render(request, "generations/share/new.html", {**context, "share_form": form}, status=400)


@login_required
@require_safe
def share_list(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)
    page = Paginator(sharing.team_shares(membership), SHARES_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "generations/share/share.html", {"links": page.object_list, "page": page})


@login_required
@require_POST
@vary_on_headers("HX-Request")
def share_revoke(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """Any member of the link's team may revoke it; it stops working on the next request."""
    membership = require_membership(request)
    link = get_object_or_404(sharing.team_shares(membership), public_id=public_id)
    sharing.revoke(link, membership)
    if request.htmx:
        link = sharing.team_shares(membership).get(pk=link.pk)
        return render(request, "generations/share/share.html#row", {"link": link})
    messages.success(request, f"“{link.title}” is revoked: it no longer opens anything." if link.title
                     else "The link is revoked: it no longer opens anything.")
    return redirect("generations:share_list")


# ---------------------------------------------------------------- public


@dataclass
class SharedItem:
    generation: Generation
    media: list[Media]
    model: str
    made: datetime
    prompt: str


def _public(response: HttpResponse) -> HttpResponse:
    """Headers for everything served under /s/: the token never leaks through a
    Referer, search engines stay out, and nothing is cached past a revocation."""
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow, noarchive"
    response["Cache-Control"] = "no-store"
    return response


def _gone(request: HttpRequest, share: ShareLink | None = None) -> HttpResponse:
    status = 410 if share is not None and share.revoked_at is not None else 404
    return _public(render(request, "generations/share/gone.html", status=status))


def _absolute(request: HttpRequest, path: str) -> str:
    base = settings.KILN_PUBLIC_URL
    return f"{base}{path}" if base else request.build_absolute_uri(path)


@require_safe
def share_public(request: HttpRequest, token: str) -> HttpResponse:
    share = sharing.find_share(token)
    if share is None or not share.is_live():
        return _gone(request, share)
    generations = sharing.shared_generations(share)
    if not generations:  # every shared result was deleted since
        return _gone(request)
    sharing.count_view(share, viewer=f"{client_address(request)} {request.headers.get('User-Agent', '')}")

    items = [
        SharedItem(generation=g, media=list(g.media.all()), model=sharing.model_label(g),
                   made=g.finished_at or g.created, prompt=g.prompt.text if share.show_prompt else "")
        for g in generations
    ]
    for item in items:
        for m in item.media:
            m.share_url = reverse("generations:share_media", args=[token, m.public_id])
            m.share_thumb_url = (reverse("generations:share_thumbnail", args=[token, m.public_id])
                                 if m.thumbnail else "")
            m.share_download_url = reverse("generations:share_download", args=[token, m.public_id])
    context = {
        "share": share,
        "items": items,
        "page_title": _page_title(share, items),
        "og": _open_graph(request, token, share, items),
    }
    return _public(render(request, "generations/share/public.html", context))


def _page_title(share: ShareLink, items: list[SharedItem]) -> str:
    if share.title:
        return share.title
    if share.show_prompt and items[0].prompt:
        prompt = items[0].prompt.strip()
        return prompt if len(prompt) <= 80 else prompt[:79].rstrip() + "…"
    kind = "video" if items[0].generation.kind == Kind.VIDEO else "image"
    return f"A shared {kind}" if len(items) == 1 else f"{len(items)} shared results"


def _open_graph(request: HttpRequest, token: str, share: ShareLink, items: list[SharedItem]) -> dict:
    """Open Graph / Twitter card values, every URL absolute, so a pasted link previews."""
    first = items[0]
    media = first.media[0]
    if first.prompt:
        description = first.prompt if len(first.prompt) <= 200 else first.prompt[:199] + "…"
    else:
        description = f"{first.model}, {date_format(timezone.localtime(first.made), 'j F Y')}"
    og = {
        "title": _page_title(share, items),
        "description": description,
        "url": _absolute(request, reverse("generations:share_public", args=[token])),
        "type": "video.other" if media.kind == Kind.VIDEO else "website",
        "image": "", "image_width": None, "image_height": None, "video": None,
    }
    if media.kind == Kind.IMAGE and media.bytes <= _OG_IMAGE_MAX_BYTES:
        og["image"] = _absolute(request, media.share_url)
        og["image_type"] = media.mime_type
        og["image_width"], og["image_height"] = media.width, media.height
    elif media.thumbnail:
        og["image"] = _absolute(request, media.share_thumb_url)
        og["image_type"] = thumbnail_type(media.thumbnail) or ""
    if media.kind == Kind.VIDEO:
        og["video"] = {"url": _absolute(request, media.share_url), "type": media.mime_type,
                       "width": media.width, "height": media.height,
                       "secure": og["url"].startswith("https://")}
    return og


def _serve_shared(request: HttpRequest, token: str, media_id: uuid.UUID, variant: str) -> HttpResponse:
    share = sharing.find_share(token)
    if share is None or not share.is_live():
        return _gone(request, share)
    media = sharing.shared_media(share, media_id)
    if media is None:
        return _gone(request)
    if variant == "thumb":
        field, content_type = media.thumbnail, thumbnail_type(media.thumbnail)
        if not field or content_type is None:
            return _gone(request)
    else:
        field, content_type = media.file, media.mime_type
    name = sharing.download_name(share, media, index=media.position + 1 if media.position else None) \
        if variant == "download" else None
    try:
        response = serve_file(request, field, content_type, download_name=name, private=False)
    except FileNotFoundError:  # removed from storage since (deleted result)
        return _gone(request)
    return _public(response)


@require_safe
def share_media(request: HttpRequest, token: str, media_id: uuid.UUID) -> HttpResponse:
    return _serve_shared(request, token, media_id, "file")


@require_safe
def share_thumbnail(request: HttpRequest, token: str, media_id: uuid.UUID) -> HttpResponse:
    return _serve_shared(request, token, media_id, "thumb")


@require_safe
def share_download(request: HttpRequest, token: str, media_id: uuid.UUID) -> HttpResponse:
    return _serve_shared(request, token, media_id, "download")


urlpatterns = [
    path("g/<uuid:public_id>/share/", share_create, name="share_create"),
    path("shares/", share_list, name="share_list"),
    path("shares/new/", share_new, name="share_new"),
    path("boards/<uuid:public_id>/share/", share_board, name="share_board"),
    path("shares/<uuid:public_id>/revoke/", share_revoke, name="share_revoke"),
    path("s/<str:token>/", share_public, name="share_public"),
    path("s/<str:token>/m/<uuid:media_id>/", share_media, name="share_media"),
    path("s/<str:token>/m/<uuid:media_id>/thumb/", share_thumbnail, name="share_thumbnail"),
    path("s/<str:token>/m/<uuid:media_id>/download/", share_download, name="share_download"),
]
