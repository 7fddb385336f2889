"""The admin's boards: an operator sees a team's boards and what is on them, and a board's
share link names its board."""

import pytest
from django.test import Client

from accounts.models import User
from generations.boards import services as boards
from generations.share import services as sharing
from tests.generations.gallery.conftest import membership_of


@pytest.fixture
def operator_client(db):
    client = Client()
    client.force_login(User.objects.create_superuser("ops@kiln.test", "pw-not-used-here-123"))
    return client


def test_the_admin_lists_boards_with_their_items_and_board_links(operator_client, team, owner, image):
    member = membership_of(owner, team)
    board = boards.create_board(member, "Client picks")
    boards.add_to_board(member, board, [image])
    share, _ = sharing.create_share(member, [], board=board, title="For the client")
    listing = operator_client.get("/admin/generations/board/").content.decode()
    assert "Client picks" in listing and "Acme Studio" in listing
    page = operator_client.get(f"/admin/generations/board/{board.pk}/change/").content.decode()
    assert str(image) in page  # the inline of its items
    link = operator_client.get(f"/admin/generations/sharelink/{share.pk}/change/").content.decode()
    assert "Client picks" in link
