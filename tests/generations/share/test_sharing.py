"""The share-link service: tokens, who may share what, expiry, revocation, the view counter."""

import hashlib
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from generations.models import Status
from generations.share import services as sharing
from generations.share.models import ShareLink
from tests.generations.share.conftest import make_result


def test_a_link_stores_only_the_sha256_of_its_token(owner_membership, image_result):
    share, token = sharing.create_share(owner_membership, [image_result], title="Dusk")

    assert len(token) >= 43
    row = ShareLink.objects.filter(pk=share.pk).values().get()
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in str(value) for value in row.values())
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM generations_sharelink")
        assert token not in repr(cursor.fetchall())


def test_each_link_gets_its_own_token(owner_membership, image_result):
    tokens = {sharing.create_share(owner_membership, [image_result])[1] for _ in range(5)}
    assert len(tokens) == 5


def test_a_token_opens_its_own_link_and_nothing_else(owner_membership, image_result):
    share, token = sharing.create_share(owner_membership, [image_result])

    assert sharing.find_live_share(token) == share
    assert sharing.find_live_share(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert sharing.find_live_share("") is None
    assert sharing.find_live_share("../../etc/passwd") is None


def test_it_refuses_to_share_another_teams_result(owner_membership, other_team, outsider):
    theirs = make_result(other_team, outsider)

    with pytest.raises(sharing.ShareError, match="your team's results"):
        sharing.create_share(owner_membership, [theirs])
    assert not ShareLink.objects.exists()


@pytest.mark.parametrize("status", [Status.QUEUED, Status.RUNNING, Status.FAILED, Status.CANCELLED])
def test_it_refuses_to_share_a_result_that_has_not_succeeded(owner_membership, team, owner, status):
    unfinished = make_result(team, owner, status=status)

    with pytest.raises(sharing.ShareError, match="not finished"):
        sharing.create_share(owner_membership, [unfinished])
    assert not ShareLink.objects.exists()


def test_it_refuses_an_empty_selection_and_an_expiry_in_the_past(owner_membership, image_result):
    with pytest.raises(sharing.ShareError, match="at least one"):
        sharing.create_share(owner_membership, [])
    with pytest.raises(sharing.ShareError, match="future"):
        sharing.create_share(owner_membership, [image_result], expires_in=timedelta(seconds=-1))
    with pytest.raises(sharing.ShareError, match="future"):
        sharing.create_share(owner_membership, [image_result], expires_at=timezone.now() - timedelta(days=1))
    assert not ShareLink.objects.exists()


def test_an_expired_link_is_not_live_but_can_still_be_found_for_its_status(owner_membership, image_result):
    share, token = sharing.create_share(owner_membership, [image_result], expires_in=timedelta(hours=1))
    assert sharing.find_live_share(token) == share

    ShareLink.objects.filter(pk=share.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert sharing.find_live_share(token) is None
    assert sharing.find_share(token).state == "expired"


def test_any_member_of_the_team_can_revoke_a_link_once(owner_membership, teammate_membership, image_result):
    share, token = sharing.create_share(owner_membership, [image_result])

    assert sharing.revoke(share, teammate_membership) is True
    assert sharing.revoke(share, owner_membership) is False

    share.refresh_from_db()
    assert share.state == "revoked"
    assert share.revoked_by_id == teammate_membership.user_id
    assert sharing.find_live_share(token) is None


def test_an_outsider_cannot_revoke_a_link(owner_membership, outsider_membership, image_result):
    share, token = sharing.create_share(owner_membership, [image_result])

    with pytest.raises(sharing.ShareError):
        sharing.revoke(share, outsider_membership)
    assert sharing.find_live_share(token) == share


def test_a_view_is_counted_with_one_update(owner_membership, image_result):
    share, _ = sharing.create_share(owner_membership, [image_result])

    with CaptureQueriesContext(connection) as queries:
        sharing.count_view(share)
    sharing.count_view(share)

    assert len(queries) == 1
    assert queries[0]["sql"].lstrip().upper().startswith("UPDATE")
    share.refresh_from_db()
    assert share.view_count == 2


def test_a_download_name_never_contains_a_hidden_prompt(owner_membership, image_result):
    hidden, _ = sharing.create_share(owner_membership, [image_result])
    shown, _ = sharing.create_share(owner_membership, [image_result], show_prompt=True)
    titled, _ = sharing.create_share(owner_membership, [image_result], title="Dusk, take 3")
    media = image_result.media.get()

    assert sharing.download_name(hidden, media).startswith("kiln-")
    assert sharing.download_name(shown, media).startswith("a-lighthouse-at-dusk-")
    assert sharing.download_name(titled, media).startswith("dusk-take-3-")
    assert sharing.download_name(hidden, media).endswith(".png")
