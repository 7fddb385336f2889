"""The gallery's filters apply as they change (issue 16, point 13): the filter form's htmx
request gets the results and the form's state; the page without JavaScript is unchanged."""

import re

from django.urls import reverse

from generations.models import Kind
from tests.generations.gallery.conftest import add_media, make_generation

GALLERY = reverse("generations:gallery")
FILTERING = {"HX-Request": "true", "HX-Target": "gallery-results"}


def cards(html: str) -> list[str]:
    return re.findall(r'<article id="card-([0-9a-f-]+)"', html)


def test_the_filter_form_gets_the_results_and_its_state(owner_client, team, owner, other_team, outsider):
    video = make_generation(team, owner, kind=Kind.VIDEO, model="alibaba/wan-2.7", prompt="a fox in the snow")
    add_media(video)
    make_generation(team, owner, prompt="a still life")
    make_generation(other_team, outsider, kind=Kind.VIDEO, model="alibaba/wan-2.7", prompt="a fox of theirs")
    response = owner_client.get(GALLERY, {"kind": "video", "status": "succeeded", "q": "fox"}, headers=FILTERING)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="gallery-results"') and "<html" not in html
    assert cards(html) == [str(video.public_id)]  # filtered, and only the team's
    # What the form shows is brought up to date: two filters in force (the search is not counted).
    assert re.search(r'<span id="filter-count" class="filter-count" hx-swap-oob="true">2<', html)
    assert re.search(r'<span id="filter-clear" hx-swap-oob="true"><a class="button secondary" href="/gallery/">Clear</a>', html)
    assert "HX-Target" in response["Vary"]


def test_no_filters_no_count_and_no_clear(owner_client, team, owner):
    make_generation(team, owner)
    html = owner_client.get(GALLERY, headers=FILTERING).content.decode()
    assert '<span id="filter-count" class="filter-count is-none" hx-swap-oob="true"></span>' in html
    assert '<span id="filter-clear" hx-swap-oob="true"></span>' in html


def test_a_refused_filter_answers_400_with_the_reason_in_the_results(owner_client, team, owner):
    response = owner_client.get(GALLERY, {"from": "2026-02-02", "to": "2026-02-01"}, headers=FILTERING)
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="gallery-results"' in html and "The end date is before the start date." in html


def test_the_next_page_is_still_the_cards_alone(owner_client, team, owner):
    make_generation(team, owner)
    html = owner_client.get(GALLERY, headers={"HX-Request": "true"}).content.decode()
    assert 'id="gallery-results"' not in html and len(cards(html)) == 1


def test_the_page_applies_filters_as_they_change_and_keeps_a_submit_without_javascript(owner_client, team, owner):
    make_generation(team, owner)
    html = owner_client.get(GALLERY, {"kind": "image"}).content.decode()
    form = re.search(r'<form class="gallery-filters[^>]*>', html).group(0)
    assert 'hx-get="/gallery/"' in form and 'hx-push-url="true"' in form and 'hx-target="#gallery-results"' in form
    assert "change" in form and "input changed delay:400ms from:#f-q" in form
    assert '<button type="submit" class="js-hide">Apply</button>' in html  # without JavaScript
    toggle = re.search(r'<button type="button" class="filters-toggle.*?</button>', html, re.S).group(0)
    assert 'aria-controls="filter-row"' in toggle and ">1<" in toggle  # one filter in force
    for size in ("small", "medium", "large"):
        assert f'value="{size}" form="" data-card-size' in html
    assert re.search(r'<script src="/static/generations/gallery/layout.js" nonce="[^"]+"></script>', html)  # not deferred


def test_names_on_cards_are_whole_in_the_markup(owner_client, team, owner):
    """The model's label and the author's name go out whole (CSS wraps them; nothing truncates)."""
    owner.name = "Dorothea Wilhelmina Featherstonehaugh-Cholmondeley"
    owner.save()
    make_generation(team, owner, provider="gateway", model="viduq3p-1080p-offpeak", kind=Kind.VIDEO)
    html = owner_client.get(GALLERY).content.decode()
    assert re.search(r'<span class="card-model"[^>]*>Vidu Q3 Pro 1080p \(off-peak\)</span>', html)
    assert '<span class="card-author">Dorothea Wilhelmina Featherstonehaugh-Cholmondeley</span>' in html


def test_ticking_favourites_makes_the_page_the_favourites_view(owner_client, team, owner):
    html = owner_client.get(GALLERY, {"fav": "1"}, headers=FILTERING).content.decode()
    assert '<h1 id="gallery-title" hx-swap-oob="true">Favourites</h1>' in html
    assert re.search(r'<a href="/gallery/\?fav=1" aria-current="page">Favourites</a>', html)
