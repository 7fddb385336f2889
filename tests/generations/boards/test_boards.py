"""Boards: making them, the card picker and the selection bar, the gallery's board filter,
and the edges (another team's board or result, roles, bad names, CSRF)."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from generations.boards import services as boards
from generations.boards.models import Board, BoardItem
from generations.models import Generation, Kind, Status
from tests.conftest import make_member
from tests.generations.gallery.conftest import (
    add_media,
    bulk_generations,
    make_generation,
    membership_of,
)

GALLERY = reverse("generations:gallery")


def board_of(team, user, name="Moodboard") -> Board:
    return boards.create_board(membership_of(user, team), name)


def put(board, *generations, by=None):
    BoardItem.objects.bulk_create(BoardItem(board=board, generation=g, added_by=by) for g in generations)


def cards_in(response) -> list[str]:
    return [str(g.public_id) for g in response.context["generations"]]


# ---------------------------------------------------------------------------
# Making, renaming, deleting


def test_a_member_makes_a_board_from_the_boards_page(teammate_client, team, teammate):
    response = teammate_client.post(reverse("generations:board_create"), {"name": "  Lighthouse   ideas "})
    assert response.status_code == 302
    board = Board.objects.get(team=team)
    assert board.name == "Lighthouse ideas" and board.created_by == teammate
    page = teammate_client.get(reverse("generations:boards")).content.decode()
    assert "Lighthouse ideas" in page and "0 results" in page


@pytest.mark.parametrize(("name", "message"), [
    ("", "Give the board a name."),
    ("   ", "Give the board a name."),
    ("x" * 81, "at most 80 characters"),
    ("MOODBOARD", "already has a board called"),
])
def test_a_bad_or_taken_name_is_refused_with_a_message(owner_client, team, owner, name, message):
    board_of(team, owner, "Moodboard")
    response = owner_client.post(reverse("generations:board_create"), {"name": name})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Board.objects.filter(team=team).count() == 1


def test_the_same_name_in_another_team_is_fine(team, other_team, owner, outsider):
    board_of(team, owner, "Moodboard")
    assert board_of(other_team, outsider, "moodboard").team == other_team


def test_only_its_maker_or_an_admin_renames_or_deletes_a_board(client, team, owner, teammate):
    board = board_of(team, owner)
    third = make_member(team, "third@acme.test", Role.MEMBER)
    client.force_login(third)
    client.post(reverse("generations:board_rename", args=[board.public_id]), {"name": "Mine now"})
    client.post(reverse("generations:board_delete", args=[board.public_id]))
    board.refresh_from_db()
    assert board.name == "Moodboard"
    page = client.get(reverse("generations:boards")).content.decode()
    assert "Rename" not in page and "Made by" in page  # says who may, instead of a button that fails

    mine = board_of(team, third, "Third's")
    client.post(reverse("generations:board_rename", args=[mine.public_id]), {"name": "Renamed"})
    mine.refresh_from_db()
    assert mine.name == "Renamed"

    admin = make_member(team, "admin@acme.test", Role.ADMIN)
    client.force_login(admin)
    client.post(reverse("generations:board_rename", args=[board.public_id]), {"name": "Admin's pick"})
    board.refresh_from_db()
    assert board.name == "Admin's pick"


def test_renaming_to_a_taken_or_empty_name_changes_nothing(owner_client, team, owner):
    board, other = board_of(team, owner, "One"), board_of(team, owner, "Two")
    for name in ("two", ""):
        response = owner_client.post(reverse("generations:board_rename", args=[board.public_id]), {"name": name},
                                     follow=True)
        assert "already has a board" in response.content.decode() or "Give the board a name" in response.content.decode()
    board.refresh_from_db()
    assert board.name == "One" and other.name == "Two"


def test_deleting_a_board_keeps_its_results(owner_client, team, owner, image):
    board = board_of(team, owner)
    put(board, image)
    owner_client.post(reverse("generations:board_delete", args=[board.public_id]))
    assert not Board.objects.exists() and not BoardItem.objects.exists()
    assert Generation.objects.filter(pk=image.pk).exists()


# ---------------------------------------------------------------------------
# Another team


def test_another_teams_board_is_a_404_everywhere(outsider_client, team, owner, image):
    board = board_of(team, owner)
    put(board, image)
    assert outsider_client.get(GALLERY, {"board": board.public_id}).status_code == 404
    assert outsider_client.get(reverse("generations:share_board", args=[board.public_id])).status_code == 404
    for name in ("board_rename", "board_delete"):
        assert outsider_client.post(reverse(f"generations:{name}", args=[board.public_id]), {"name": "x"}).status_code == 404
    assert "Moodboard" not in outsider_client.get(reverse("generations:boards")).content.decode()
    board.refresh_from_db()  # still there, unchanged


def test_another_teams_result_can_never_go_on_a_board(owner_client, team, owner, image, foreign):
    board = board_of(team, owner)
    # One card at a time: 404, as for a result that does not exist.
    response = owner_client.post(reverse("generations:card_board_add", args=[foreign.public_id]),
                                 {"board": board.public_id})
    assert response.status_code == 404
    # In a selection with one of ours: 404 for the whole request, nothing added.
    response = owner_client.post(reverse("generations:bulk_board_add"),
                                 {"ids": [image.public_id, foreign.public_id], "board_name": "Moodboard"})
    assert response.status_code == 404
    assert not BoardItem.objects.exists()
    # And the service refuses it whoever calls it.
    with pytest.raises(boards.BoardError):
        boards.add_to_board(membership_of(owner, team), board, [foreign])


def test_a_result_cannot_go_on_another_teams_board(owner_client, other_team, outsider, image):
    theirs = board_of(other_team, outsider, "Rival board")
    response = owner_client.post(reverse("generations:card_board_add", args=[image.public_id]),
                                 {"board": theirs.public_id})
    assert response.status_code == 404
    assert not BoardItem.objects.exists()


# ---------------------------------------------------------------------------
# One card: the picker


def test_the_card_picker_adds_to_a_board_and_takes_off_again(teammate_client, team, owner, teammate, image):
    board = board_of(team, owner)  # someone else's board: any member may add to it
    picker = teammate_client.get(reverse("generations:card_boards", args=[image.public_id]),
                                 headers={"HX-Request": "true"}).content.decode()
    assert "Moodboard" in picker and 'aria-pressed="false"' in picker
    response = teammate_client.post(reverse("generations:card_board_add", args=[image.public_id]),
                                    {"board": board.public_id}, headers={"HX-Request": "true"})
    assert "Added to “Moodboard”." in response.content.decode() and 'aria-pressed="true"' in response.content.decode()
    item = BoardItem.objects.get()
    assert item.board == board and item.generation == image and item.added_by == teammate
    # Twice changes nothing.
    teammate_client.post(reverse("generations:card_board_add", args=[image.public_id]), {"board": board.public_id},
                         headers={"HX-Request": "true"})
    assert BoardItem.objects.count() == 1
    response = teammate_client.post(reverse("generations:card_board_remove", args=[image.public_id]),
                                    {"board": board.public_id}, headers={"HX-Request": "true"})
    assert "Removed from “Moodboard”." in response.content.decode()
    assert not BoardItem.objects.exists() and Generation.objects.filter(pk=image.pk).exists()


def test_the_picker_makes_a_new_board_by_name_and_refuses_an_empty_one(owner_client, team, image):
    url = reverse("generations:card_board_add", args=[image.public_id])
    response = owner_client.post(url, {"name": "Sunsets"}, headers={"HX-Request": "true"})
    assert "Added to “Sunsets”." in response.content.decode()
    assert Board.objects.get(team=team).name == "Sunsets"
    # The same name in another case is the same board.
    owner_client.post(url, {"name": "sunsets"}, headers={"HX-Request": "true"})
    assert Board.objects.count() == 1 and BoardItem.objects.count() == 1
    response = owner_client.post(url, {"name": "  "}, headers={"HX-Request": "true"})
    assert response.status_code == 200 and "Give the board a name." in response.content.decode()
    assert Board.objects.count() == 1


def test_the_picker_works_without_javascript(owner_client, team, owner, image):
    board = board_of(team, owner)
    page = owner_client.get(reverse("generations:card_boards", args=[image.public_id]))
    assert page.status_code == 200 and b"<h1>Add to board</h1>" in page.content
    response = owner_client.post(reverse("generations:card_board_add", args=[image.public_id]),
                                 {"board": board.public_id}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("generations:card_boards", args=[image.public_id])
    assert "Added to “Moodboard”." in response.content.decode() and BoardItem.objects.count() == 1


def test_remove_from_this_board_leaves_a_note_with_undo(owner_client, team, owner, image):
    board = board_of(team, owner)
    put(board, image)
    page = owner_client.get(GALLERY, {"board": board.public_id}).content.decode()
    assert "Remove from this board" in page
    assert "Remove from this board" not in owner_client.get(GALLERY).content.decode()
    response = owner_client.post(reverse("generations:card_board_remove", args=[image.public_id]),
                                 {"board": board.public_id, "then": "tombstone"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert "gcard-tombstone" in html and "Undo" in html
    assert not BoardItem.objects.exists()
    response = owner_client.post(reverse("generations:card_board_add", args=[image.public_id]),
                                 {"board": board.public_id, "then": "card"}, headers={"HX-Request": "true"})
    assert f'id="card-{image.public_id}"' in response.content.decode() and "gcard-tombstone" not in response.content.decode()
    assert BoardItem.objects.count() == 1


# ---------------------------------------------------------------------------
# The selection bar


def test_bulk_add_by_name_makes_the_board_and_says_what_was_there_already(owner_client, team, owner):
    made = [make_generation(team, owner, prompt=f"p{i}") for i in range(4)]
    url = reverse("generations:bulk_board_add")
    response = owner_client.post(url, {"ids": [g.public_id for g in made[:2]], "board_name": "Picks"},
                                 headers={"HX-Request": "true"})
    html = response.content.decode()
    assert "New board “Picks”. Added 2 results to “Picks”." in html
    assert "kiln:boardCreated" in response["HX-Trigger"]  # the page's lists of boards learn the new one
    response = owner_client.post(url, {"ids": [g.public_id for g in made], "board_name": "picks"},
                                 headers={"HX-Request": "true"})
    assert "Added 2 results to “Picks”. 2 results were on it already." in response.content.decode()
    assert BoardItem.objects.count() == 4
    response = owner_client.post(url, {"ids": [made[0].public_id], "board_name": ""}, headers={"HX-Request": "true"})
    assert "Give the board a name." in response.content.decode()
    response = owner_client.post(url, {"board_name": "Picks"}, headers={"HX-Request": "true"})
    assert "Select at least one result first." in response.content.decode()


def test_bulk_remove_takes_the_selection_off_the_board_only(teammate_client, team, owner):
    board = board_of(team, owner)
    made = [make_generation(team, owner, prompt=f"p{i}") for i in range(3)]
    put(board, *made)
    response = teammate_client.post(reverse("generations:bulk_board_remove"),
                                    {"ids": [g.public_id for g in made[:2]], "board": board.public_id},
                                    headers={"HX-Request": "true"})
    assert "Removed 2 results from “Moodboard”; they stay in the gallery." in response.content.decode()
    assert list(BoardItem.objects.values_list("generation", flat=True)) == [made[2].pk]
    assert Generation.objects.count() == 3


def test_the_bar_offers_remove_only_when_the_gallery_shows_a_board(owner_client, team, owner, image):
    board = board_of(team, owner)
    put(board, image)
    assert "Remove from “Moodboard”" in owner_client.get(GALLERY, {"board": board.public_id}).content.decode()
    page = owner_client.get(GALLERY).content.decode()
    assert "Add to board" in page and "Remove from “Moodboard”" not in page


def test_board_writes_need_the_csrf_token(csrf_client, team, owner, image):
    board = board_of(team, owner)
    assert csrf_client.post(reverse("generations:card_board_add", args=[image.public_id]),
                            {"board": board.public_id}).status_code == 403
    assert csrf_client.post(reverse("generations:bulk_board_add"),
                            {"ids": [image.public_id], "board_name": "x"}).status_code == 403
    assert csrf_client.post(reverse("generations:board_delete", args=[board.public_id])).status_code == 403
    assert not BoardItem.objects.exists() and Board.objects.count() == 1


# ---------------------------------------------------------------------------
# The gallery's board filter


def test_the_board_filter_shows_the_board_and_combines_with_the_others(owner_client, team, owner):
    board = board_of(team, owner)
    picture = make_generation(team, owner, prompt="a red fox")
    clip = make_generation(team, owner, prompt="a red fox running", kind=Kind.VIDEO, model="alibaba/wan-2.7")
    elsewhere = make_generation(team, owner, prompt="a red fox asleep")
    archived = make_generation(team, owner, prompt="a red fox, archived", archived=True)
    put(board, picture, clip, archived)
    response = owner_client.get(GALLERY, {"board": board.public_id})
    assert set(cards_in(response)) == {str(picture.public_id), str(clip.public_id)}
    assert str(elsewhere.public_id) not in cards_in(response)
    assert response.context["board"] == board
    assert cards_in(owner_client.get(GALLERY, {"board": board.public_id, "kind": "video"})) == [str(clip.public_id)]
    assert cards_in(owner_client.get(GALLERY, {"board": board.public_id, "archived": "1"})) == [str(archived.public_id)]
    assert owner_client.get(GALLERY, {"board": "not-a-board"}).status_code == 400


def test_the_board_filter_pages_with_the_cursor(owner_client, team, owner):
    board = board_of(team, owner)
    rows = bulk_generations(team, owner, 60, same_time=True)
    put(board, *rows[:55])
    first = owner_client.get(GALLERY, {"board": board.public_id})
    assert len(cards_in(first)) == 48 and f"board={board.public_id}" in first.context["next_url"]
    second = owner_client.get(first.context["next_url"], headers={"HX-Request": "true"})
    assert len(cards_in(second)) == 7 and not set(cards_in(first)) & set(cards_in(second))
    assert set(cards_in(first)) | set(cards_in(second)) == {str(g.public_id) for g in rows[:55]}


def test_an_htmx_page_of_another_teams_board_shows_nothing(outsider_client, team, owner, image):
    board = board_of(team, owner)
    put(board, image)
    response = outsider_client.get(GALLERY, {"board": board.public_id}, headers={"HX-Request": "true"})
    assert cards_in(response) == []


@pytest.mark.parametrize("count", [10, 200])
def test_a_board_costs_the_gallery_no_more_queries_than_the_whole_gallery(owner_client, team, owner, count,
                                                                           django_assert_num_queries):
    from tests.generations.gallery.test_queries import GALLERY_QUERIES, fill

    board = board_of(team, owner)
    put(board, *fill(team, owner, count))
    with django_assert_num_queries(GALLERY_QUERIES):
        response = owner_client.get(GALLERY, {"board": board.public_id})
    assert len(cards_in(response)) == min(count, 48)
    with django_assert_num_queries(GALLERY_QUERIES - 3):  # the next page, as htmx asks for it
        owner_client.get(response.context["next_url"] or GALLERY, headers={"HX-Request": "true"})


def test_the_boards_page_counts_and_covers_in_one_query(owner_client, team, owner, django_assert_max_num_queries):
    for i in range(5):
        board = board_of(team, owner, f"Board {i}")
        for j in range(3):
            g = make_generation(team, owner, prompt=f"b{i} {j}", created=timezone.now() - dt.timedelta(minutes=j),
                                finished_at=timezone.now())
            add_media(g)
            put(board, g)
    pending = make_generation(team, owner, status=Status.RUNNING)
    put(board, pending)  # counted, but no cover: nothing to show yet
    with django_assert_max_num_queries(7):  # session, user, membership, header, the boards, the messages
        page = owner_client.get(reverse("generations:boards")).content.decode()
    assert page.count("3 results") == 4 and "4 results" in page
    assert page.count('class="board-cover"') == 5 and page.count("/thumb/") == 5


# ---------------------------------------------------------------------------
# Names with letters beyond A-Z, and adds that race a deletion


def test_a_board_with_a_non_ascii_capital_is_found_again_by_name(owner_client, team, owner, image):
    # SQLite's LOWER folds only A-Z: the name must be compared folded the same way on both sides.
    board = board_of(team, owner, "Été")
    response = owner_client.post(reverse("generations:card_board_add", args=[image.public_id]), {"name": "Été"},
                                 headers={"HX-Request": "true"})
    assert "Added to “Été”." in response.content.decode()
    assert list(board.generations.all()) == [image] and Board.objects.filter(team=team).count() == 1
    assert boards.board_named(membership_of(owner, team), "Été") == (board, False)
    with pytest.raises(boards.BoardError, match="already has a board called"):
        board_of(team, owner, "Été")
    moodboard = board_of(team, owner, "Moodboard")
    assert boards.board_named(membership_of(owner, team), "MOODBOARD") == (moodboard, False)  # A-Z still folds


def test_adding_counts_only_what_went_on_the_board(team, owner):
    board, g = board_of(team, owner), make_generation(team, owner)
    member = membership_of(owner, team)
    assert boards.add_to_board(member, board, [g, g]) == 1  # the same result twice goes on once
    assert boards.add_to_board(member, board, [g]) == 0
    assert board.items.count() == 1


def test_adding_to_a_board_deleted_meanwhile_is_refused_with_a_message(team, owner):
    board, g = board_of(team, owner), make_generation(team, owner)
    Board.objects.filter(pk=board.pk).delete()  # a teammate deletes it after the name was looked up
    with pytest.raises(boards.BoardError, match="deleted meanwhile"):
        boards.add_to_board(membership_of(owner, team), board, [g])
    assert not BoardItem.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_result_deleted_meanwhile_is_a_refusal_not_an_error_page(owner_client, team, owner, monkeypatch):
    board_of(team, owner)
    kept, gone = make_generation(team, owner), make_generation(team, owner)
    board_named = boards.board_named

    def author_deletes_one_meanwhile(membership, name):  # after the selection was read
        Generation.objects.filter(pk=gone.pk).delete()
        return board_named(membership, name)

    monkeypatch.setattr(boards, "board_named", author_deletes_one_meanwhile)
    response = owner_client.post(reverse("generations:bulk_board_add"),
                                 {"ids": [kept.public_id, gone.public_id], "board_name": "Moodboard"},
                                 headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "deleted meanwhile" in response.content.decode()
    assert not BoardItem.objects.exists()  # nothing half-written
