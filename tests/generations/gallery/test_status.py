"""Live status: the detail page's own fragment, and one aggregate poll for a page of cards."""

import re
import uuid

from django.urls import reverse
from django.utils import timezone

from generations.models import Status

from .conftest import add_media, make_generation


def status_url(g, **query):
    url = reverse("generations:card_status", args=[g.public_id])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def test_a_pending_fragment_is_200_and_keeps_polling(owner_client, team, owner):
    g = make_generation(team, owner, status=Status.RUNNING, progress=40, provider_status="in_progress")
    response = owner_client.get(status_url(g, panel="detail"))
    assert response.status_code == 200
    assert 'hx-trigger="kiln:tick from:body"' in response.text
    assert '<progress max="100" value="40"' in response.text
    assert "in_progress" in response.text  # the provider's own word

    card = owner_client.get(status_url(g))
    assert card.status_code == 200
    assert 'data-pending="running-40-' in card.text


def test_a_final_fragment_answers_286_without_a_trigger(owner_client, team, owner):
    g = make_generation(team, owner, status=Status.SUCCEEDED, finished_at=timezone.now(), actual_cost=900)
    add_media(g)
    response = owner_client.get(status_url(g, panel="detail"))
    assert response.status_code == 286
    assert "hx-trigger" not in response.text
    assert "<img" in response.text and "Charged 900 cr" in response.text
    card = owner_client.get(status_url(g))
    assert card.status_code == 286 and "data-pending" not in card.text


def test_a_failed_generation_shows_the_providers_words(owner_client, team, owner):
    g = make_generation(team, owner, status=Status.FAILED, error="Prompt rejected: content policy violation (code 1301).")
    response = owner_client.get(status_url(g, panel="detail"))
    assert response.status_code == 286
    assert "Prompt rejected: content policy violation (code 1301)." in response.text


def test_the_batch_sends_only_the_cards_that_changed(owner_client, team, owner):
    same = make_generation(team, owner, status=Status.RUNNING, progress=10)
    moved = make_generation(team, owner, status=Status.RUNNING, progress=10)
    page = owner_client.get(reverse("generations:gallery")).text
    states = dict(re.findall(r'data-card="([0-9a-f-]{36})" data-pending="([^"]+)"', page))
    assert set(states) == {str(same.public_id), str(moved.public_id)}
    type(moved).objects.filter(pk=moved.pk).update(progress=55)

    ids = ",".join(f"{pid}:{state}" for pid, state in states.items())
    response = owner_client.get(reverse("generations:status_batch"), {"ids": ids})
    assert response.status_code == 200  # still pending: keep polling
    assert f'id="card-{moved.public_id}"' in response.text and 'hx-swap-oob="true"' in response.text
    assert str(same.public_id) not in response.text
    assert 'value="55"' in response.text


def test_the_batch_answers_286_once_nothing_is_pending(owner_client, team, owner):
    g = make_generation(team, owner, status=Status.RUNNING)
    type(g).objects.filter(pk=g.pk).update(status=Status.SUCCEEDED, finished_at=timezone.now())
    add_media(g)
    response = owner_client.get(reverse("generations:status_batch"), {"ids": f"{g.public_id}:running--0"})
    assert response.status_code == 286
    assert f'id="card-{g.public_id}"' in response.text and "<img" in response.text
    assert "data-pending" not in response.text


def test_the_batch_removes_cards_that_were_deleted(owner_client, team, owner):
    g = make_generation(team, owner, status=Status.RUNNING)
    public_id = g.public_id
    g.delete()
    response = owner_client.get(reverse("generations:status_batch"), {"ids": str(public_id)})
    assert response.status_code == 286
    assert f'<div id="card-{public_id}" hx-swap-oob="delete"></div>' in response.text


def test_the_batch_rejects_bad_ids_and_too_many(owner_client, team, owner):
    url = reverse("generations:status_batch")
    assert owner_client.get(url, {"ids": "1,2,3"}).status_code == 400
    many = ",".join(str(uuid.uuid4()) for _ in range(101))
    assert owner_client.get(url, {"ids": many}).status_code == 400
    assert owner_client.get(url).status_code == 286  # nothing asked, nothing pending


def test_the_page_polls_once_for_all_cards_and_cards_do_not_poll_themselves(owner_client, team, owner):
    for _ in range(5):
        make_generation(team, owner, status=Status.RUNNING)
    page = owner_client.get(reverse("generations:gallery")).text
    assert page.count('hx-trigger="kiln:tick from:body"') == 1
    assert f'hx-get="{reverse("generations:status_batch")}"' in page
    assert "every 2s" not in page


def test_the_cards_fast_links_are_the_url_confs_own(team, owner):
    from generations.gallery.templatetags import Links

    g = make_generation(team, owner)
    for name in ("detail", "cancel", "favourite", "archive", "restore", "delete", "retry", "card_status"):
        assert Links(g.public_id)[name] == reverse(f"generations:{name}", args=[g.public_id])
    media = add_media(g)
    for name in ("media", "thumbnail", "download"):
        assert Links(media.public_id)[name] == reverse(f"generations:{name}", args=[media.public_id])


def test_a_failure_the_poll_brings_is_said_once_by_the_live_region(owner_client, team, owner):
    """The panel's sentence goes to the page's one live region (data-announce); the error's own box is
    not an alert as well, which a screen reader would read a second time as it is swapped in."""
    g = make_generation(team, owner, status=Status.FAILED, error="Content was blocked by the safety system.")
    panel = owner_client.get(status_url(g, panel="detail")).text
    assert 'data-announce="GPT Image 2 failed: Content was blocked by the safety system."' in panel
    assert 'role="alert"' not in panel
    assert "aria-live" not in panel
