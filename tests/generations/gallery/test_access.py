"""Who may see and touch what: members see their team's generations; everyone else gets 404."""

import pytest
from django.urls import reverse

from generations.models import Generation, Status

from .conftest import add_media, make_generation


def generation_urls(g):
    media = g.media.first()
    input_url = reverse("generations:input_media", args=[g.public_id, "first_frame", 0])
    return [
        reverse("generations:detail", args=[g.public_id]),
        reverse("generations:card_status", args=[g.public_id]),
        reverse("generations:card_status", args=[g.public_id]) + "?panel=detail",
        reverse("generations:media", args=[media.public_id]),
        reverse("generations:thumbnail", args=[media.public_id]),
        reverse("generations:download", args=[media.public_id]),
        input_url,
    ]


ACTIONS = ["cancel", "favourite", "archive", "restore", "delete", "retry"]


def test_it_refuses_outsiders_on_every_view_with_404(outsider_client, image):
    for url in generation_urls(image):
        assert outsider_client.get(url).status_code == 404, url
    for action in ACTIONS:
        url = reverse(f"generations:{action}", args=[image.public_id])
        assert outsider_client.post(url).status_code == 404, url
    assert Generation.objects.filter(pk=image.pk, archived=False).exists()


def test_it_refuses_anonymous_visitors(client, image):
    for url in generation_urls(image):
        response = client.get(url)
        if "/m/" in url or "/inputs/" in url:
            assert response.status_code == 404, url  # media: never a login page, never the file
        else:
            assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url
    assert client.get(reverse("generations:gallery")).status_code == 302
    assert client.get(reverse("generations:status_batch")).status_code == 302
    for action in ACTIONS:
        response = client.post(reverse(f"generations:{action}", args=[image.public_id]))
        assert response.status_code == 302
    assert Generation.objects.filter(pk=image.pk).exists()


def test_members_see_only_their_teams_generations(teammate_client, image, foreign):
    response = teammate_client.get(reverse("generations:gallery"))
    assert response.status_code == 200
    assert str(image.public_id) in response.text
    assert str(foreign.public_id) not in response.text
    assert "rival secret plans" not in response.text


@pytest.mark.media
def test_a_teammate_sees_the_detail_page_and_the_media(teammate_client, image):
    assert teammate_client.get(reverse("generations:detail", args=[image.public_id])).status_code == 200
    media = image.media.first()
    response = teammate_client.get(reverse("generations:media", args=[media.public_id]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")


def test_a_teammate_may_not_archive_or_delete_someone_elses_generation(teammate_client, image):
    for action in ("archive", "delete", "cancel"):
        response = teammate_client.post(reverse(f"generations:{action}", args=[image.public_id]))
        assert response.status_code == 403
    assert Generation.objects.filter(pk=image.pk, archived=False).exists()


def test_the_status_batch_ignores_other_teams_ids(owner_client, team, owner, foreign):
    mine = make_generation(team, owner, status=Status.RUNNING)
    url = reverse("generations:status_batch") + f"?ids={mine.public_id},{foreign.public_id}"
    response = owner_client.get(url)
    assert response.status_code == 200
    assert f'id="card-{mine.public_id}"' in response.text
    # The foreign card is answered exactly like a deleted one: remove it, show nothing.
    assert f'id="card-{foreign.public_id}" hx-swap-oob="delete"' in response.text
    assert "rival secret plans" not in response.text


def test_a_member_removed_from_the_team_gets_its_pending_cards_removed_not_updated(
        teammate_client, team, owner, teammate):
    from accounts.services import remove_member

    g = make_generation(team, owner, status=Status.RUNNING, prompt="roadmap teaser")
    Generation.objects.filter(pk=g.pk).update(progress=70)
    remove_member(teammate.memberships.get(team=team))
    response = teammate_client.get(reverse("generations:status_batch"), {"ids": f"{g.public_id}:running--0"})
    assert response.status_code == 286  # nothing of theirs is pending: stop polling
    assert f'id="card-{g.public_id}" hx-swap-oob="delete"' in response.text
    assert "roadmap teaser" not in response.text and 'value="70"' not in response.text


def test_a_page_of_one_team_left_open_after_switching_to_another_keeps_updating(
        owner_client, team, other_team, owner, outsider):
    from accounts.models import Role
    from tests.conftest import make_member

    make_member(other_team, owner.email, Role.MEMBER)  # the owner of Acme is a plain member at Rivals
    acme = make_generation(team, owner, status=Status.QUEUED, prompt="acme launch film")
    rivals = make_generation(other_team, outsider, status=Status.QUEUED, prompt="rivals teaser")
    assert owner_client.post(reverse("accounts:switch_team"), {"team": other_team.public_id}).status_code == 302
    Generation.objects.filter(pk__in=[acme.pk, rivals.pk]).update(progress=30)

    response = owner_client.get(reverse("generations:status_batch"),
                                {"ids": f"{acme.public_id}:queued--0,{rivals.public_id}:queued--0"})
    assert response.status_code == 200
    assert response.text.count('hx-swap-oob="true"') == 2 and 'hx-swap-oob="delete"' not in response.text
    # Each card is drawn for the member's role in its own team: Acme's owner may cancel
    # anyone's job there; at Rivals they may not cancel the outsider's.
    acme_card, rivals_card = (response.text.split(f'id="card-{pid}"')[1].split('id="card-')[0]
                              for pid in (acme.public_id, rivals.public_id))
    assert reverse("generations:cancel", args=[acme.public_id]) in acme_card
    assert reverse("generations:cancel", args=[rivals.public_id]) not in rivals_card


@pytest.mark.parametrize("action", ACTIONS)
def test_every_action_needs_the_csrf_token(csrf_client, team, owner, action):
    g = make_generation(team, owner, status=Status.FAILED)
    add_media(g)
    url = reverse(f"generations:{action}", args=[g.public_id])
    assert csrf_client.post(url).status_code == 403
    g.refresh_from_db()
    assert not g.archived and g.status == Status.FAILED
    assert not g.favourites.exists() and not g.children.exists()
