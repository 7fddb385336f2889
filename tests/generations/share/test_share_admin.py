"""The admin's share links: an operator sees every team's public links (never their tokens)
and revokes one on request; the public page stops at once."""

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.utils import timezone

from accounts.models import User
from generations.share import services as sharing
from generations.share.models import ShareLink
from tests.generations.share.conftest import make_result

CHANGELIST = "/admin/generations/sharelink/"


@pytest.fixture
def operator(db):
    return User.objects.create_superuser("ops@kiln.test", "pw-not-used-here-123")


@pytest.fixture
def operator_client(operator):
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture
def links(owner_membership, teammate_membership, outsider_membership, image_result, video_result, other_team,
          outsider):
    ours, our_token = sharing.create_share(owner_membership, [image_result, video_result], title="Client preview")
    theirs, their_token = sharing.create_share(outsider_membership, [make_result(other_team, outsider)],
                                               title="Rivals teaser")
    old, _ = sharing.create_share(owner_membership, [image_result], title="Old draft")
    sharing.revoke(old, teammate_membership)
    return {"ours": (ours, our_token), "theirs": (theirs, their_token), "old": old}


def test_every_team_s_links_are_listed_with_their_state_and_never_their_token(operator_client, links):
    body = operator_client.get(CHANGELIST).content.decode()
    for title in ("Client preview", "Rivals teaser", "Old draft"):
        assert title in body
    assert body.count(">live<") == 2 and body.count(">revoked<") == 1
    for link, token in (links["ours"], links["theirs"]):
        assert token not in body and link.token_hash not in body

    ours, token = links["ours"]
    page = operator_client.get(f"{CHANGELIST}{ours.pk}/change/").content.decode()
    assert all(str(g.public_id) in page for g in ours.generations.all())
    assert token not in page and ours.token_hash not in page
    assert 'name="_save"' not in page  # read-only: nothing to save

    live = operator_client.get(CHANGELIST, {"state": "live"}).content.decode()
    assert "Client preview" in live and "Rivals teaser" in live and "Old draft" not in live
    revoked = operator_client.get(CHANGELIST, {"state": "revoked"}).content.decode()
    assert "Old draft" in revoked and "Client preview" not in revoked
    ShareLink.objects.filter(pk=ours.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    expired = operator_client.get(CHANGELIST, {"state": "expired"}).content.decode()
    assert "Client preview" in expired and "Rivals teaser" not in expired and "Old draft" not in expired


def test_links_are_not_created_here(operator_client, links):
    assert operator_client.get(f"{CHANGELIST}add/").status_code == 403


def test_the_revoke_action_takes_links_down_at_once(operator_client, operator, links, teammate):
    token = links["ours"][1]
    assert Client().get(f"/s/{token}/").status_code == 200

    selected = [links["ours"][0].pk, links["theirs"][0].pk, links["old"].pk]
    response = operator_client.post(CHANGELIST, {"action": "revoke_selected", ACTION_CHECKBOX_NAME: selected},
                                    follow=True)
    assert "Revoked 2 links; they no longer open anything." in response.content.decode()

    assert Client().get(f"/s/{token}/").status_code == 410
    assert Client().get(f"/s/{links['theirs'][1]}/").status_code == 410
    by = dict(ShareLink.objects.values_list("title", "revoked_by"))
    assert by == {"Client preview": operator.pk, "Rivals teaser": operator.pk, "Old draft": teammate.pk}
