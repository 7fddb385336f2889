"""GET /gallery over real HTTP against gunicorn: the page's filters and pages, the team's rows only."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from generations.boards.models import Board, BoardItem
from generations.models import Favourite, Kind, Status
from tests.generations.api.test_tokens_api import assert_problem
from tests.generations.gallery.conftest import add_media, bulk_generations, make_generation

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mixed(team, owner, teammate, other_team, outsider):
    """A gallery whose rows differ in every filter, and a rival team's rows that match them all."""
    now = timezone.now()
    rows = {
        "fox": make_generation(team, owner, prompt="a red fox in snow", created=now - dt.timedelta(days=3),
                               finished_at=now, actual_cost=900),
        "fox_video": make_generation(team, owner, prompt="a red fox running", kind=Kind.VIDEO,
                                     model="alibaba/wan-2.7", created=now - dt.timedelta(days=2)),
        "mate_fox": make_generation(team, teammate, prompt="fox cubs playing", status=Status.FAILED,
                                    created=now - dt.timedelta(days=1)),
        "lake": make_generation(team, teammate, prompt="a quiet lake", status=Status.RUNNING),
        "old": make_generation(team, owner, prompt="an old fox", created=now - dt.timedelta(days=40)),
        "archived": make_generation(team, owner, prompt="archived fox", archived=True),
        "rival": make_generation(other_team, outsider, prompt="a red fox in snow", created=now - dt.timedelta(days=3)),
    }
    add_media(rows["fox"])
    add_media(rows["fox_video"])
    add_media(rows["rival"])
    Favourite.objects.create(user=owner, generation=rows["lake"])
    board = Board.objects.create(team=team, name="Foxes", created_by=owner)
    BoardItem.objects.create(board=board, generation=rows["fox"], added_by=owner)
    BoardItem.objects.create(board=board, generation=rows["mate_fox"], added_by=owner)
    rows["board"] = board
    return rows


def page_ids(user, query: str) -> list[str]:
    """What the gallery page shows for this query string (its view's context), signed in as ``user``."""
    client = Client()
    client.force_login(user)
    response = client.get(f"{reverse('generations:gallery')}?{query}")
    assert response.status_code == 200, response.content[:500]
    return [str(g.public_id) for g in response.context["generations"]]


def api_ids(call, token, query: str) -> list[str]:
    answer = call("GET", f"/gallery?{query}", token)
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


@pytest.mark.parametrize("query", [
    "", "by=me", "kind=video", "status=failed", "status=active", "q=fox", "q=fox+-red", "fav=1", "archived=1",
    "provider=shark&model=alibaba/wan-2.7", "by=me&kind=image&q=fox", "BOARD", "MATE", "FROM_TO",
])
def test_the_same_query_string_gives_the_same_results_as_the_page(call, token_for, owner, teammate, team, mixed,
                                                                  query):
    if query == "BOARD":
        query = f"board={mixed['board'].public_id}"
    elif query == "MATE":
        query = f"by={Membership.objects.get(user=teammate, team=team).public_id}"
    elif query == "FROM_TO":
        today = timezone.localdate()
        query = f"from={(today - dt.timedelta(days=5)).isoformat()}&to={(today - dt.timedelta(days=1)).isoformat()}"
    expected = page_ids(owner, query)
    assert api_ids(call, token_for(owner, team, scopes=("read",)), query) == expected
    assert str(mixed["rival"].public_id) not in expected


def test_an_item_is_a_compact_summary_with_download_urls(call, token_for, owner, team, mixed, api_url):
    answer = call("GET", "/gallery?q=snow", token_for(owner, team, scopes=("read",)))
    assert answer.status_code == 200, answer.text
    [item] = answer.json()["items"]
    fox = mixed["fox"]
    media = fox.media.get()
    assert item["id"] == str(fox.public_id) and item["status"] == "succeeded"
    assert item["model"] == "shark:openai/gpt-image-2" and item["kind"] == "image"
    assert item["prompt"] == "a red fox in snow" and item["author"] == "owner@acme.test"
    assert item["cost"] == {"credits": 900, "usd": 0.09} and item["cost_is_estimate"] is False
    assert item["archived"] is False and item["favourite"] is False and item["finished"]
    [m] = item["media"]
    assert m["id"] == str(media.public_id) and m["mime_type"] == "image/png"
    assert m["download_url"] == f"{api_url}/media/{media.public_id}/download"
    assert item["thumbnail_url"] == m["thumbnail_url"] == f"{api_url}/media/{media.public_id}/thumbnail"
    # The preview opens with the token, and only with it.
    token = token_for(owner, team, scopes=("read",))
    thumb = call("GET", f"/media/{media.public_id}/thumbnail", token)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    assert_problem(call("GET", f"/media/{media.public_id}/thumbnail"), 401)


def test_cursor_pages_walk_the_whole_gallery_once(call, token_for, owner, team, other_team, outsider):
    made = bulk_generations(team, owner, 23) + bulk_generations(team, owner, 8, same_time=True)
    bulk_generations(other_team, outsider, 5)
    token = token_for(owner, team, scopes=("read",))
    seen: list[str] = []
    url, pages = "/gallery?limit=7", 0
    while url:
        answer = call("GET", url, token)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert len(body["items"]) <= 7
        seen += [item["id"] for item in body["items"]]
        pages += 1
        if body["next"] is None:
            assert body["next_url"] is None
            break
        next_url = urlsplit(body["next_url"])
        assert parse_qs(next_url.query) == {"limit": ["7"], "after": [body["next"]]}
        url = f"{next_url.path.removeprefix('/api/v1')}?{next_url.query}"
    assert pages == 5
    assert len(seen) == len(set(seen)) == 31
    assert set(seen) == {str(g.public_id) for g in made}
    # The same order as the page's first page.
    assert seen[:31] == page_ids(owner, "")[:31]


@pytest.mark.parametrize(("query", "field"), [
    ("kind=sculpture", "kind"), ("status=nope", "status"), ("from=yesterday", "from"),
    ("from=2026-05-02&to=2026-05-01", "to"), ("fav=maybe", "fav"), ("by=somebody", "by"),
    ("board=not-a-board", "board"), ("after=bm90IGEgY3Vyc29y", "after"), ("after=%%%", "after"),
    ("limit=0", "limit"), ("limit=500", "limit"), ("q=" + "x" * 201, "q"),
])
def test_a_bad_filter_or_cursor_is_422_naming_it(call, token_for, owner, team, query, field):
    body = assert_problem(call("GET", f"/gallery?{query}", token_for(owner, team, scopes=("read",))), 422)
    assert body["field"] == field
    assert field in [e["field"] for e in body["errors"]]


def test_another_team_s_board_is_404_and_its_rows_never_appear(call, token_for, owner, team, mixed, other_team,
                                                               outsider):
    theirs = Board.objects.create(team=other_team, name="Rival board", created_by=outsider)
    BoardItem.objects.create(board=theirs, generation=mixed["rival"], added_by=outsider)
    token = token_for(owner, team, scopes=("read",))
    body = assert_problem(call("GET", f"/gallery?board={theirs.public_id}", token), 404)
    assert body["field"] == "board"
    rival_media = mixed["rival"].media.get()
    assert_problem(call("GET", f"/media/{rival_media.public_id}/thumbnail", token), 404)
    everything = api_ids(call, token, "limit=100") + api_ids(call, token, "archived=1&limit=100")
    assert str(mixed["rival"].public_id) not in everything
    # The rival sees theirs and none of ours.
    assert api_ids(call, token_for(outsider, other_team), "") == [str(mixed["rival"].public_id)]


def test_the_gallery_needs_the_read_scope(call, token_for, owner, team):
    body = assert_problem(call("GET", "/gallery", token_for(owner, team, scopes=("share",))), 403)
    assert "“read”" in body["detail"]
