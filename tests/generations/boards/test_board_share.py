"""A board shared by link: the link follows the board (what is on it when opened), and its token
opens exactly the board's finished results, nothing else of the team."""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from generations.boards import services as boards
from generations.boards.models import BoardItem
from generations.models import Status
from generations.share import services as sharing
from generations.share.models import ShareLink
from tests.generations.gallery.conftest import add_media, make_generation, membership_of


def finished(team, owner, prompt):
    g = make_generation(team, owner, prompt=prompt, finished_at=timezone.now())
    add_media(g)
    return g


@pytest.fixture
def board(team, owner):
    return boards.create_board(membership_of(owner, team), "Moodboard")


def link_to(board, team, owner, **options):
    share, token = sharing.create_share(membership_of(owner, team), [], board=board, **options)
    return share, token


def public(token):
    return reverse("generations:share_public", args=[token])


def media_url(token, g, variant="share_media"):
    return reverse(f"generations:{variant}", args=[token, g.media.get().public_id])


def test_sharing_a_board_from_its_page_makes_a_link_shown_once(owner_client, team, owner, board):
    lake = finished(team, owner, "a lake")
    boards.add_to_board(membership_of(owner, team), board, [lake])
    form = owner_client.get(reverse("generations:share_board", args=[board.public_id])).content.decode()
    assert "The link follows the board." in form and 'value="Moodboard"' in form  # the title starts as its name
    response = owner_client.post(reverse("generations:share_board", args=[board.public_id]),
                                 {"title": "Moodboard", "expiry": "7d"})
    assert response.status_code == 200 and response["Cache-Control"].startswith("no-store")
    html = response.content.decode()
    assert "The board “Moodboard”, as it is when the link is opened" in html
    token = re.search(r"/s/([A-Za-z0-9_-]{43})/", html).group(1)
    share = ShareLink.objects.get()
    assert share.board == board and share.token_hash == sharing.hash_token(token) and token not in share.token_hash
    assert share.expires_at > timezone.now() + dt.timedelta(days=6)
    # The team's list of links says it is a board's.
    assert "Board “Moodboard”" in owner_client.get(reverse("generations:share_list")).content.decode()


def test_the_link_shows_what_is_on_the_board_when_opened(client, team, owner, board):
    member = membership_of(owner, team)
    first, later = finished(team, owner, "first"), finished(team, owner, "added later")
    running = make_generation(team, owner, prompt="still running", status=Status.RUNNING)
    boards.add_to_board(member, board, [first, running])
    _, token = link_to(board, team, owner, show_prompt=True)
    page = client.get(public(token)).content.decode()
    assert "first" in page and "added later" not in page and "still running" not in page
    boards.add_to_board(member, board, [later])  # added after sharing: it shows too
    page = client.get(public(token)).content.decode()
    assert "first" in page and "added later" in page
    assert client.get(media_url(token, later)).status_code == 200
    boards.remove_from_board(member, board, [first])  # taken off: gone from the page and its files 404
    page = client.get(public(token)).content.decode()
    assert "first" not in page
    for variant in ("share_media", "share_thumbnail", "share_download"):
        assert client.get(media_url(token, first, variant)).status_code == 404


def test_the_token_opens_nothing_that_is_not_on_the_board(client, team, owner, board, foreign):
    on, off = finished(team, owner, "on the board"), finished(team, owner, "not on the board")
    boards.add_to_board(membership_of(owner, team), board, [on])
    _, token = link_to(board, team, owner)
    assert client.get(media_url(token, on)).status_code == 200
    assert client.get(media_url(token, off)).status_code == 404
    assert client.get(media_url(token, foreign)).status_code == 404
    # Nor does a link to one result open the board's other results.
    _, single = sharing.create_share(membership_of(owner, team), [off])
    assert client.get(media_url(single, on)).status_code == 404


def test_an_archived_result_leaves_the_shared_board(client, team, owner, board):
    g = finished(team, owner, "archived later")
    boards.add_to_board(membership_of(owner, team), board, [g])
    _, token = link_to(board, team, owner)
    g.archived = True
    g.save(update_fields=["archived"])
    assert client.get(media_url(token, g)).status_code == 404


@pytest.mark.media
def test_revoked_expired_and_deleted_board_links_open_nothing(client, team, owner, board):
    member = membership_of(owner, team)
    g = finished(team, owner, "a lake")
    boards.add_to_board(member, board, [g])
    share, token = link_to(board, team, owner)
    sharing.revoke(share, member)
    assert client.get(public(token)).status_code == 410
    assert client.get(media_url(token, g)).status_code == 410

    other = boards.create_board(member, "Second")
    boards.add_to_board(member, other, [g])
    share, token = link_to(other, team, owner)
    ShareLink.objects.filter(pk=share.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert client.get(public(token)).status_code == 404

    third = boards.create_board(member, "Third")
    boards.add_to_board(member, third, [g])
    share, token = link_to(third, team, owner)
    assert client.get(public(token)).status_code == 200
    boards.delete_board(member, third)
    assert client.get(public(token)).status_code == 404
    assert client.get(media_url(token, g)).status_code == 404
    assert BoardItem.objects.filter(generation=g).count() == 2  # the other boards keep it


def test_an_empty_board_link_says_so_until_something_is_added(client, team, owner, board):
    _, token = link_to(board, team, owner)
    assert client.get(public(token)).status_code == 404
    boards.add_to_board(membership_of(owner, team), board, [finished(team, owner, "now")])
    assert client.get(public(token)).status_code == 200


def test_only_the_boards_team_can_share_it(team, owner, other_team, outsider, board):
    with pytest.raises(sharing.ShareError):
        sharing.create_share(membership_of(outsider, other_team), [], board=board)
    assert not ShareLink.objects.exists()


@pytest.mark.media
def test_a_board_link_serves_the_files_of_what_its_page_shows_only(client, team, owner, board, monkeypatch):
    monkeypatch.setattr(sharing, "BOARD_PAGE_MAX", 2)
    oldest, middle, newest = (finished(team, owner, name) for name in ("oldest", "middle", "newest"))
    boards.add_to_board(membership_of(owner, team), board, [oldest, middle, newest])
    _, token = link_to(board, team, owner, show_prompt=True)
    page = client.get(public(token)).content.decode()
    assert "newest" in page and "middle" in page and "oldest" not in page
    assert client.get(media_url(token, newest)).status_code == 200
    assert client.get(media_url(token, middle)).status_code == 200
    for variant in ("share_media", "share_thumbnail", "share_download"):  # past the page's cap: not served
        assert client.get(media_url(token, oldest, variant)).status_code == 404
