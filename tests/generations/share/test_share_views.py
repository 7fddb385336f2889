"""Members create, list and revoke links; outsiders and anonymous visitors get nothing."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from generations.models import Kind, Status
from generations.share import services as sharing
from generations.share.models import ShareLink
from tests.generations.share.conftest import make_result

TOKEN_URL = re.compile(r"http://testserver/s/([A-Za-z0-9_-]{43})/")


def create_url(generation):
    return reverse("generations:share_create", args=[generation.public_id])


def test_a_member_creates_a_link_and_sees_its_url_once(owner_client, image_result):
    response = owner_client.post(create_url(image_result), {"title": "Dusk", "expiry": "never"})

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    token = TOKEN_URL.search(page).group(1)
    assert "will not be shown again" in page
    share = ShareLink.objects.get()
    assert share.title == "Dusk" and share.expires_at is None and share.show_prompt is False
    assert list(share.generations.all()) == [image_result]
    assert sharing.find_live_share(token) == share
    # The list page never shows it again.
    assert token not in owner_client.get(reverse("generations:share_list")).content.decode()


def test_the_form_options_become_the_links_settings(owner_client, image_result):
    owner_client.post(create_url(image_result), {"show_prompt": "on", "expiry": "7d"})

    share = ShareLink.objects.get()
    assert share.show_prompt is True
    assert abs(share.expires_at - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)


def test_a_custom_date_keeps_the_link_working_until_the_end_of_that_day(owner_client, image_result):
    day = timezone.localdate() + timedelta(days=3)
    owner_client.post(create_url(image_result), {"expiry": "date", "expires_on": day.isoformat()})

    expires = timezone.localtime(ShareLink.objects.get().expires_at)
    assert expires.date() == day + timedelta(days=1)
    assert (expires.hour, expires.minute) == (0, 0)


@pytest.mark.parametrize(("data", "message"), [
    ({"expiry": "date"}, "Choose the date the link stops working."),
    ({"expiry": "date", "expires_on": "2001-01-01"}, "Choose today or a later date."),
    ({"expiry": "date", "expires_on": "not a date"}, "Enter a valid date."),
    ({"expiry": "forever"}, "Select a valid choice."),
    ({"title": "x" * 201}, "at most 200 characters"),
])
def test_bad_input_is_refused_with_a_clear_message_and_nothing_is_created(owner_client, image_result, data, message):
    response = owner_client.post(create_url(image_result), data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ShareLink.objects.exists()


def test_an_unfinished_result_cannot_be_shared(owner_client, team, owner):
    running = make_result(team, owner, status=Status.RUNNING)

    response = owner_client.post(create_url(running), {"expiry": "never"})

    assert response.status_code == 400
    assert "has not finished" in response.content.decode()
    assert not ShareLink.objects.exists()


def test_the_create_form_is_shown_for_one_result(owner_client, image_result):
    response = owner_client.get(create_url(image_result))

    assert response.status_code == 200
    assert 'name="expiry"' in response.content.decode()
    assert not ShareLink.objects.exists()


def test_a_selection_from_the_gallery_becomes_one_link(owner_client, team, owner, teammate):
    results = [make_result(team, owner), make_result(team, teammate, kind=Kind.VIDEO)]
    ids = [str(g.public_id) for g in results]

    form = owner_client.get(reverse("generations:share_new"), {"ids": ",".join(ids)})
    assert form.status_code == 200
    assert all(f'value="{i}"' in form.content.decode() for i in ids)

    response = owner_client.post(reverse("generations:share_new"), {"ids": ids, "title": "Both"})

    assert response.status_code == 200
    share = ShareLink.objects.get()
    assert set(share.generations.all()) == set(results)
    assert TOKEN_URL.search(response.content.decode())


@pytest.mark.parametrize(("ids", "status"), [([], 400), (["not-a-uuid"], 400)])
def test_a_selection_must_be_result_ids(owner_client, ids, status):
    response = owner_client.post(reverse("generations:share_new"), {"ids": ids})
    assert response.status_code == status
    assert not ShareLink.objects.exists()


def test_an_outsider_cannot_share_another_teams_result(outsider_client, image_result, other_team, outsider):
    own = make_result(other_team, outsider)

    assert outsider_client.post(create_url(image_result), {"expiry": "never"}).status_code == 404
    assert outsider_client.get(create_url(image_result)).status_code == 404
    mixed = {"ids": [str(own.public_id), str(image_result.public_id)]}
    assert outsider_client.post(reverse("generations:share_new"), mixed).status_code == 404
    assert not ShareLink.objects.exists()


def test_anonymous_visitors_are_sent_to_sign_in(client, image_result, owner_membership):
    share, _ = sharing.create_share(owner_membership, [image_result])
    for method, url in [
        ("get", reverse("generations:share_list")),
        ("get", create_url(image_result)),
        ("post", create_url(image_result)),
        ("post", reverse("generations:share_new")),
        ("post", reverse("generations:share_revoke", args=[share.public_id])),
    ]:
        response = getattr(client, method)(url, {"expiry": "never"})
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/")
    assert ShareLink.objects.count() == 1
    assert ShareLink.objects.get(pk=share.pk).revoked_at is None


def test_the_team_sees_all_its_links_and_no_other_teams(teammate_client, owner_membership, teammate_membership,
                                                        outsider_membership, image_result, other_team, outsider):
    sharing.create_share(owner_membership, [image_result], title="Owner's link")
    sharing.create_share(teammate_membership, [image_result], title="Mate's link")
    sharing.create_share(outsider_membership, [make_result(other_team, outsider)], title="Rival link")

    page = teammate_client.get(reverse("generations:share_list")).content.decode()

    assert "Owner&#x27;s link" in page and "Mate&#x27;s link" in page
    assert "Rival link" not in page
    assert "outsider@rivals.test" not in page


def test_the_list_shows_each_links_status_and_views(owner_client, owner_membership, image_result):
    live, _ = sharing.create_share(owner_membership, [image_result], title="Live one")
    sharing.count_view(live)
    expired, _ = sharing.create_share(owner_membership, [image_result], title="Old one")
    ShareLink.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    revoked, _ = sharing.create_share(owner_membership, [image_result], title="Closed one")
    sharing.revoke(revoked, owner_membership)

    page = owner_client.get(reverse("generations:share_list")).content.decode()

    assert page.count('class="share-badge badge-live"') == 1
    assert page.count('class="share-badge badge-expired"') == 1
    assert page.count('class="share-badge badge-revoked"') == 1
    assert page.count('class="share-revoke">Revoke<') == 2  # its object follows, visually hidden


def test_the_list_takes_the_same_number_of_queries_for_2_or_12_links(owner_client, owner_membership, team, owner):
    results = [make_result(team, owner) for _ in range(3)]

    def queries_for_list():
        with CaptureQueriesContext(connection) as ctx:
            assert owner_client.get(reverse("generations:share_list")).status_code == 200
        return len(ctx)

    for _ in range(2):
        sharing.create_share(owner_membership, results)
    few = queries_for_list()
    for _ in range(10):
        sharing.create_share(owner_membership, results[:2])
    assert queries_for_list() == few


def test_any_member_can_revoke_any_link_of_the_team(teammate_client, owner_membership, image_result):
    share, token = sharing.create_share(owner_membership, [image_result], title="Owner's link")

    response = teammate_client.post(reverse("generations:share_revoke", args=[share.public_id]))

    assert response.status_code == 302
    assert response["Location"] == reverse("generations:share_list")
    assert sharing.find_live_share(token) is None
    assert "is revoked" in teammate_client.get(response["Location"]).content.decode()


def test_revoking_with_htmx_answers_the_updated_row(owner_client, owner_membership, image_result):
    share, _ = sharing.create_share(owner_membership, [image_result], title="Row")

    response = owner_client.post(reverse("generations:share_revoke", args=[share.public_id]),
                                 headers={"HX-Request": "true"})

    assert response.status_code == 200
    row = response.content.decode()
    assert row.strip().startswith(f'<tr class="share-row share-revoked" id="share-{share.public_id}"')
    assert "badge-revoked" in row and 'class="share-revoke"' not in row
    assert "HX-Request" in response["Vary"]


def test_an_outsider_cannot_revoke_or_see_another_teams_link(outsider_client, owner_membership, image_result):
    share, token = sharing.create_share(owner_membership, [image_result], title="Ours")

    assert outsider_client.post(reverse("generations:share_revoke", args=[share.public_id])).status_code == 404
    assert "Ours" not in outsider_client.get(reverse("generations:share_list")).content.decode()
    assert sharing.find_live_share(token) == share


def test_csrf_is_enforced_on_create_and_revoke(csrf_client, owner_membership, image_result):
    share, token = sharing.create_share(owner_membership, [image_result])

    assert csrf_client.post(create_url(image_result), {"expiry": "never"}).status_code == 403
    assert csrf_client.post(reverse("generations:share_new"), {"ids": [str(image_result.public_id)]}).status_code == 403
    assert csrf_client.post(reverse("generations:share_revoke", args=[share.public_id])).status_code == 403
    assert ShareLink.objects.count() == 1
    assert sharing.find_live_share(token) == share
