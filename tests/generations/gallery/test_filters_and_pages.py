"""Filters from the query string, full-text search, and keyset pages."""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from generations.gallery.queries import (
    GalleryFilters,
    InvalidCursor,
    InvalidFilters,
    decode_cursor,
    gallery_page,
    parse_filters,
)
from generations.models import Favourite, Kind, Status

from .conftest import bulk_generations, make_generation, membership_of

GALLERY = reverse("generations:gallery")


def shown(response) -> list[str]:
    return re.findall(r'<article id="card-([0-9a-f-]{36})"', response.text)


def test_filters_combine_mine_kind_status_search_and_dates(owner_client, team, owner, teammate):
    day = timezone.now() - dt.timedelta(days=3)
    target = make_generation(team, owner, prompt="a red fox in snow", kind=Kind.VIDEO, status=Status.FAILED,
                             created=day)
    # Each of these differs from the target in exactly one filter.
    others = [
        make_generation(team, teammate, prompt="a red fox in snow", kind=Kind.VIDEO, status=Status.FAILED, created=day),
        make_generation(team, owner, prompt="a red fox in snow", kind=Kind.IMAGE, status=Status.FAILED, created=day),
        make_generation(team, owner, prompt="a red fox in snow", kind=Kind.VIDEO, status=Status.SUCCEEDED, created=day),
        make_generation(team, owner, prompt="a grey wolf in snow", kind=Kind.VIDEO, status=Status.FAILED, created=day),
        make_generation(team, owner, prompt="a red fox in snow", kind=Kind.VIDEO, status=Status.FAILED,
                        created=day - dt.timedelta(days=10)),
    ]
    query = {"by": "me", "kind": "video", "status": "failed", "q": "fox",
             "from": (day - dt.timedelta(days=1)).date().isoformat(), "to": day.date().isoformat()}
    response = owner_client.get(GALLERY, query)
    assert response.status_code == 200
    assert shown(response) == [str(target.public_id)]
    assert all(str(o.public_id) not in response.text for o in others)


def test_a_member_filter_uses_the_membership_public_id(owner_client, team, owner, teammate):
    mine = make_generation(team, owner)
    theirs = make_generation(team, teammate)
    membership = Membership.objects.get(team=team, user=teammate)
    response = owner_client.get(GALLERY, {"by": str(membership.public_id)})
    assert shown(response) == [str(theirs.public_id)]
    assert str(mine.public_id) not in response.text
    # The form offers each member by that id, never by an integer.
    full = owner_client.get(GALLERY)
    assert f'value="{membership.public_id}"' in full.text


def test_a_member_filter_with_another_teams_membership_shows_nothing(owner_client, team, owner, outsider,
                                                                     other_team):
    make_generation(team, owner)
    response = owner_client.get(GALLERY, {"by": str(membership_of(outsider, other_team).public_id)})
    assert response.status_code == 200 and shown(response) == []


def test_the_search_covers_the_negative_prompt_and_excludes_with_a_minus(owner_client, team, owner):
    lake = make_generation(team, owner, prompt="Mountain lake at dawn", negative_prompt="blurry, text")
    sea = make_generation(team, owner, prompt="Stormy sea at dawn")
    assert shown(owner_client.get(GALLERY, {"q": "BLURRY"})) == [str(lake.public_id)]
    assert set(shown(owner_client.get(GALLERY, {"q": "dawn"}))) == {str(lake.public_id), str(sea.public_id)}
    assert shown(owner_client.get(GALLERY, {"q": "dawn -lake"})) == [str(sea.public_id)]


def test_favourites_filter_is_per_member(owner_client, team, owner, teammate):
    liked = make_generation(team, owner)
    make_generation(team, owner)
    Favourite.objects.create(user=owner, generation=liked)
    teammates_fav = make_generation(team, owner)
    Favourite.objects.create(user=teammate, generation=teammates_fav)
    assert shown(owner_client.get(GALLERY, {"fav": "1"})) == [str(liked.public_id)]


def test_archived_ones_are_hidden_unless_the_archive_is_asked_for(owner_client, team, owner):
    kept = make_generation(team, owner)
    archived = make_generation(team, owner, archived=True)
    assert shown(owner_client.get(GALLERY)) == [str(kept.public_id)]
    assert shown(owner_client.get(GALLERY, {"archived": "1"})) == [str(archived.public_id)]


def test_in_progress_means_every_status_that_is_not_final(owner_client, team, owner):
    running = make_generation(team, owner, status=Status.RUNNING)
    queued = make_generation(team, owner, status=Status.QUEUED)
    make_generation(team, owner, status=Status.SUCCEEDED)
    assert set(shown(owner_client.get(GALLERY, {"status": "active"}))) == {str(running.public_id), str(queued.public_id)}


@pytest.mark.parametrize("query, field, label", [
    ({"kind": "audio"}, "kind", "Kind"), ({"status": "exploded"}, "status", "Status"),
    ({"from": "2026-13-45"}, "from", "From"), ({"from": "2026-05-02", "to": "2026-05-01"}, "to", "To"),
    ({"by": "someone@example.com"}, "by", "Who"), ({"q": "x" * 201}, "q", "Search"),
    ({"provider": "x" * 101}, "provider", "Provider"), ({"model": "x" * 101}, "model", "Model"),
    ({"board": "not-a-board"}, "board", "Board"), ({"fav": "maybe"}, "fav", "Favourites"),
    ({"after": "not-a-cursor"}, "after", "Page"),
])
def test_bad_filters_get_a_400_with_the_reason(owner_client, team, owner, query, field, label):
    make_generation(team, owner)
    response = owner_client.get(GALLERY, query)
    assert response.status_code == 400
    # The reason is named as the form names the filter, not by its parameter ("To", not "to").
    reason = re.search(rf'<li id="gallery-error-{field}"><strong>([^<]*)</strong>: ([^<]+)</li>', response.text)
    assert reason and reason.group(1) == label, response.text
    assert shown(response) == []
    if field == "after":  # the page's cursor: no control of the form
        return
    # The control it names says it is invalid and is described by the reason (a screen reader
    # hears both on reaching it); no other control is marked.
    controls = re.findall(r'<(?:input|select)\b[^>]*\bname="([a-z]+)"[^>]*>', response.text)
    assert field in controls
    marked = re.findall(r'<(?:input|select)\b[^>]*\bname="([a-z]+)"[^>]*\baria-invalid="true" '
                        r'aria-describedby="gallery-error-([a-z]+)"', response.text)
    assert marked == [(field, field)], marked


def test_parse_filters_round_trips_through_the_query_string():
    filters = parse_filters({"by": "me", "kind": "image", "q": " lake ", "from": "2026-01-02", "fav": "1"})
    assert filters == GalleryFilters(by="me", kind="image", q="lake", date_from=dt.date(2026, 1, 2), favourites=True)
    assert parse_filters(filters.params()) == filters
    with pytest.raises(InvalidFilters) as exc:
        parse_filters({"kind": "audio", "to": "yesterday"})
    assert set(exc.value.errors) == {"kind", "to"}


# ---------------------------------------------------------------------------
# Keyset pages


def test_pages_have_no_duplicates_or_gaps_even_with_identical_timestamps(team, owner):
    rows = bulk_generations(team, owner, 130, same_time=True)
    membership = membership_of(owner, team)
    seen, after = [], None
    while True:
        page = gallery_page(membership, GalleryFilters(), after, size=48)
        seen += [g.public_id for g in page.items]
        if not page.next_cursor:
            break
        after = page.next_cursor
    assert len(seen) == len(set(seen)) == 130
    assert set(seen) == {g.public_id for g in rows}
    assert seen == sorted(seen, reverse=True)  # ties broken by public_id, descending


def test_pages_stay_stable_when_new_generations_arrive_between_requests(team, owner):
    bulk_generations(team, owner, 60)
    membership = membership_of(owner, team)
    first = gallery_page(membership, GalleryFilters(), None, size=48)
    make_generation(team, owner, prompt="brand new")  # lands on top, not in the next page
    second = gallery_page(membership, GalleryFilters(), first.next_cursor, size=48)
    assert len(second.items) == 12 and second.next_cursor is None
    assert not {g.pk for g in first.items} & {g.pk for g in second.items}


def test_the_cursor_names_no_integer_id(team, owner):
    bulk_generations(team, owner, 3)
    page = gallery_page(membership_of(owner, team), GalleryFilters(), None, size=2)
    created, public_id = decode_cursor(page.next_cursor)
    assert public_id == page.items[-1].public_id and created == page.items[-1].created
    with pytest.raises(InvalidCursor):
        decode_cursor("bm90IGEgY3Vyc29y")


def test_the_page_links_to_the_next_page_for_browsers_without_javascript(owner_client, team, owner):
    bulk_generations(team, owner, 50)
    response = owner_client.get(GALLERY, {"kind": "image"})
    assert len(shown(response)) == 48
    next_url = re.search(r'<a class="button secondary" href="([^"]+)" hx-get="\1" hx-trigger="revealed"', response.text)
    assert next_url, "a real link that htmx also loads when revealed"
    url = next_url.group(1).replace("&amp;", "&")
    assert url.startswith("/gallery/?") and "kind=image" in url and "after=" in url
    second = owner_client.get(url)
    assert second.status_code == 200 and len(shown(second)) == 2
    assert "Back to the newest" in second.text
    assert "Next page" not in second.text


def test_htmx_asks_for_the_next_page_and_gets_only_the_cards(owner_client, team, owner):
    bulk_generations(team, owner, 50)
    first = owner_client.get(GALLERY)
    url = re.search(r'hx-get="(/gallery/\?[^"]+)"', first.text).group(1).replace("&amp;", "&")
    response = owner_client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" not in response.text and 'class="gallery-filters"' not in response.text
    assert len(shown(response)) == 2
    assert response["Vary"] and "HX-Request" in response["Vary"]


def test_compare_batches_sit_together_in_one_group(owner_client, team, owner):
    from generations.models import Batch

    batch = Batch.objects.create(team=team, author=owner)
    now = timezone.now()
    members = [make_generation(team, owner, model=m, batch=batch, created=now)
               for m in ("openai/gpt-image-2", "alibaba/wan-2.7")]
    make_generation(team, owner, created=now - dt.timedelta(minutes=1))
    response = owner_client.get(GALLERY)
    group = re.search(r'<section class="batch".*?</section>', response.text, re.S).group(0)
    assert all(str(g.public_id) in group for g in members)
    assert "Compare" in group


@pytest.mark.postgres
def test_full_text_search_on_postgresql_understands_phrases_stems_and_common_words(owner_client, team, owner,
                                                                                    monkeypatch):
    from generations.gallery import queries as gallery

    foxes = [make_generation(team, owner, prompt=f"Red foxes running, take {i}") for i in range(5)]
    make_generation(team, owner, prompt="a fox that is not red")
    assert set(shown(owner_client.get(GALLERY, {"q": '"red fox"'}))) == {str(g.public_id) for g in foxes}
    # A word so common its matches exceed the id list takes the other road, same answer.
    monkeypatch.setattr(gallery, "SEARCH_ID_LIMIT", 2)
    assert set(shown(owner_client.get(GALLERY, {"q": '"red fox"'}))) == {str(g.public_id) for g in foxes}
    assert shown(owner_client.get(GALLERY, {"q": "zebra"})) == []
