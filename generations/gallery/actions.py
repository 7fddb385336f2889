"""What the gallery's actions and the boards' share: where a no-JS form goes back to, and the
selection bar's side of a request (the selected cards, a count in words, the answer).

The selection bar posts the selected cards' ids (``ids``, repeated) in one CSRF-protected
POST. An id that is not the member's team's answers 404 for the whole request, as a single
card's action does. With htmx the answer is a line for the bar and the changed cards out of
band; without, a message and back to the page.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.models import Membership
from generations.gallery import queries as gallery_queries
from generations.models import Generation

BULK_RESULT = "generations/gallery/gallery.html#bulk_result"


def back(request: HttpRequest, default: str) -> HttpResponse:
    """Where a no-JS form goes after an action: ``next`` when it is ours, else ``default``."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return redirect(target)
    return redirect(default)


def results(count: int) -> str:
    return f"{count} result{'' if count == 1 else 's'}"


def selection(request: HttpRequest, membership: Membership) -> list[Generation]:
    """The selected cards; raises ``InvalidSelection`` (none, or too many) for the bar to say."""
    cards = gallery_queries.selected_cards(membership, gallery_queries.parse_ids(request.POST.getlist("ids")))
    if cards is None:  # another team's id, or a deleted one: nothing is done
        raise Http404("No such result in your team.")
    return cards


def bulk_answer(request: HttpRequest, notice: str, *, refused: bool = False, cards=(), tombstones=(),
                tombstone_notice: str = "", template: str = BULK_RESULT, **context) -> HttpResponse:
    """The bar's answer: ``cards`` are redrawn, ``tombstones`` make way for ``tombstone_notice``;
    ``template`` is a partial that includes the gallery's ``bulk_result`` (with ``context``)."""
    if request.htmx:
        gallery_queries.with_typical_durations(cards)
        # 200 even when refused: htmx swaps only successful answers, and the bar must say why.
        return render(request, template, context | {
            "bulk_notice": notice, "refused": refused, "cards": cards, "tombstones": tombstones,
            "tombstone_notice": tombstone_notice})
    (messages.error if refused else messages.success)(request, notice)
    return back(request, reverse("generations:gallery"))
