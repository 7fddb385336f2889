"""Actions on a result: favourite, archive and restore, delete, retry, cancel."""

import pytest
from django.urls import reverse

from accounts.credits import services as credits
from accounts.credits.models import LedgerEntry, Wallet
from generations import services
from generations.models import Favourite, Generation, InputMedia, Media, Prompt, Status

from .conftest import add_media, make_generation, membership_of, png_bytes

HX = {"HX-Request": "true"}


def url(name, g):
    return reverse(f"generations:{name}", args=[g.public_id])


# ---------------------------------------------------------------------------
# Favourites


def test_a_favourite_toggles_for_this_member_only(owner_client, team, owner, teammate, image):
    response = owner_client.post(url("favourite", image), headers=HX)
    assert response.status_code == 200
    assert 'aria-pressed="true"' in response.text and "★" in response.text
    assert Favourite.objects.filter(user=owner, generation=image).exists()
    assert not Favourite.objects.filter(user=teammate).exists()

    again = owner_client.post(url("favourite", image), headers=HX)
    assert 'aria-pressed="false"' in again.text
    assert not Favourite.objects.filter(generation=image).exists()


def test_a_favourite_without_javascript_goes_back_to_the_page_it_came_from(owner_client, image):
    response = owner_client.post(url("favourite", image), {"next": "/gallery/?kind=image"})
    assert response.status_code == 302 and response["Location"] == "/gallery/?kind=image"
    # An address elsewhere is not followed.
    response = owner_client.post(url("favourite", image), {"next": "https://evil.example/"})
    assert response["Location"] == url("detail", image)


# ---------------------------------------------------------------------------
# Archive and restore


def test_archive_hides_it_from_the_gallery_and_restore_brings_it_back(owner_client, image):
    gallery = reverse("generations:gallery")
    response = owner_client.post(url("archive", image), headers=HX)
    assert response.status_code == 200
    assert "Archived" in response.text and url("restore", image) in response.text  # an undo button
    assert str(image.public_id) not in owner_client.get(gallery).text
    assert str(image.public_id) in owner_client.get(gallery, {"archived": "1"}).text
    assert owner_client.get(url("detail", image)).status_code == 200  # kept, reachable

    response = owner_client.post(url("restore", image))
    assert response.status_code == 302
    assert str(image.public_id) in owner_client.get(gallery).text
    assert str(image.public_id) not in owner_client.get(gallery, {"archived": "1"}).text


def test_a_team_admin_may_archive_a_members_generation(client, team, owner, teammate):
    g = make_generation(team, teammate)
    client.force_login(owner)  # the owner manages the team
    assert client.post(url("archive", g)).status_code == 302
    g.refresh_from_db()
    assert g.archived


# ---------------------------------------------------------------------------
# Delete


@pytest.mark.media
def test_delete_removes_the_files_and_rows_and_keeps_the_ledger(owner_client, team, owner,
                                                                django_capture_on_commit_callbacks):
    g = make_generation(team, owner, status=Status.SUCCEEDED)
    media = [add_media(g), add_media(g, position=1)]
    from django.core.files.base import ContentFile

    item = InputMedia(generation=g, role="reference", mime_type="image/png", sha256="0" * 64)
    item.file.save("ref.png", ContentFile(png_bytes()), save=True)
    wallet = credits.wallet_for(membership_of(owner, team))
    credits.reserve(wallet, g, 500)
    credits.capture(g, 400)
    files = [(m.file.storage, m.file.name) for m in media] + [(m.thumbnail.storage, m.thumbnail.name) for m in media]
    files.append((item.file.storage, item.file.name))
    assert all(storage.exists(name) for storage, name in files)
    balance = Wallet.objects.get(pk=wallet.pk).available

    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(url("delete", g))
    assert response.status_code == 302 and response["Location"] == reverse("generations:gallery")
    assert not Generation.objects.filter(pk=g.pk).exists()
    assert not Media.objects.filter(generation_id=g.pk).exists()
    assert not Prompt.objects.filter(pk=g.prompt_id).exists()
    assert not any(storage.exists(name) for storage, name in files)
    entries = LedgerEntry.objects.filter(generation_ref=g.public_id)
    assert entries.count() == 2 and not entries.filter(generation__isnull=False).exists()
    assert Wallet.objects.get(pk=wallet.pk).available == balance  # what it cost stays spent
    assert owner_client.get(reverse("generations:media", args=[media[0].public_id])).status_code == 404


def test_delete_over_htmx_leaves_a_note_in_place_of_the_card(owner_client, image,
                                                             django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(url("delete", image), headers=HX)
    assert response.status_code == 200
    assert f'id="card-{image.public_id}"' in response.text and "Deleted." in response.text


def test_a_prompt_shared_with_another_generation_survives_a_delete(owner_client, team, owner,
                                                                   django_capture_on_commit_callbacks):
    first = make_generation(team, owner)
    second = Generation.objects.create(team=team, author=owner, prompt=first.prompt, provider="shark",
                                       model=first.model, kind=first.kind, operation=first.operation)
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(url("delete", first))
    assert Prompt.objects.filter(pk=second.prompt_id).exists()


@pytest.mark.parametrize("status", [Status.QUEUED, Status.SUBMITTED, Status.RUNNING, Status.DOWNLOADING])
def test_a_generation_still_in_flight_is_not_deleted_and_its_credits_stay_accounted(owner_client, team, owner,
                                                                                    status):
    """Deleting it would leave its reservation held for ever (and the provider still working)."""
    wallet = credits.wallet_for(membership_of(owner, team))
    g = make_generation(team, owner, status=status, estimated_cost=420)
    credits.reserve(wallet, g, 420)
    before = Wallet.objects.values_list("available", "reserved").get(pk=wallet.pk)
    assert url("delete", g) not in owner_client.get(reverse("generations:gallery")).text
    assert url("delete", g) not in owner_client.get(url("detail", g)).text

    response = owner_client.post(url("delete", g), headers=HX)
    assert response.status_code == 200
    assert f'id="card-{g.public_id}"' in response.text
    assert "It is still in progress: cancel it or let it finish, then delete it." in response.text
    follow = owner_client.post(url("delete", g), follow=True)  # without JavaScript: a message
    assert "It is still in progress" in follow.text
    assert Generation.objects.filter(pk=g.pk).exists()
    assert Wallet.objects.values_list("available", "reserved").get(pk=wallet.pk) == before
    assert credits.held_for(g) == 420


def test_an_expired_generation_waiting_for_review_is_deleted_only_once_settled(owner_client, team, owner,
                                                                                django_capture_on_commit_callbacks):
    wallet = credits.wallet_for(membership_of(owner, team))
    g = make_generation(team, owner, status=Status.EXPIRED, needs_review=True, estimated_cost=300)
    credits.reserve(wallet, g, 300)
    assert url("delete", g) not in owner_client.get(url("detail", g)).text
    response = owner_client.post(url("delete", g), headers=HX)
    assert "Its credits are still held, waiting for an operator" in response.text
    assert Generation.objects.filter(pk=g.pk).exists()

    credits.resolve_review(g, action="release", actor=owner)
    assert url("delete", g) in owner_client.get(url("detail", g)).text
    with django_capture_on_commit_callbacks(execute=True):
        assert "Deleted." in owner_client.post(url("delete", g), headers=HX).text
    assert not Generation.objects.filter(pk=g.pk).exists()
    assert Wallet.objects.values_list("available", "reserved").get(pk=wallet.pk)[1] == 0


# ---------------------------------------------------------------------------
# Retry and cancel go through the service layer, against the Shark sandbox


def test_retry_makes_a_new_generation_linked_to_the_failed_one(teammate_client, team, owner, teammate, sandbox_key):
    sandbox_key(team, "shark")
    failed = make_generation(team, owner, status=Status.FAILED, error="Internal error", params={"size": "1024x1024"})
    response = teammate_client.post(url("retry", failed))
    assert response.status_code == 302
    new = Generation.objects.get(parent=failed)
    assert response["Location"] == url("detail", new)
    assert new.parent_relation == "retry" and new.author == teammate and new.status == Status.QUEUED
    assert new.prompt.text == failed.prompt.text
    failed.refresh_from_db()
    assert failed.status == Status.FAILED and failed.error == "Internal error"  # never overwritten
    detail = teammate_client.get(url("detail", new)).text
    assert "Retry" in detail and url("detail", failed) in detail  # lineage: made from
    assert url("detail", new) in teammate_client.get(url("detail", failed)).text  # and what was made from it


def test_retry_is_refused_for_a_generation_that_succeeded(owner_client, image):
    response = owner_client.post(url("retry", image), follow=True)
    assert "Only a failed, expired or cancelled generation can be retried." in response.text
    assert not Generation.objects.filter(parent=image).exists()


def test_cancel_a_queued_generation_releases_its_credits(owner_client, team, owner, sandbox_key):
    sandbox_key(team, "shark")
    membership = membership_of(owner, team)
    before = Wallet.objects.get(membership=membership).available
    g = services.create_generation(membership=membership, provider_id="shark", model_id="openai/gpt-image-2",
                                   operation="text-to-image", prompt="a teapot")
    assert Wallet.objects.get(membership=membership).available < before
    card = owner_client.get(reverse("generations:gallery")).text
    assert url("cancel", g) in card

    response = owner_client.post(url("cancel", g), headers=HX)
    assert response.status_code == 200
    assert "Cancelled before it was sent." in response.text and "badge-cancelled" in response.text
    assert "card-notice" not in response.text  # said once, not again as a notice
    assert "Not charged" in response.text  # not the estimate, which was given back
    g.refresh_from_db()
    assert g.status == Status.CANCELLED
    assert Wallet.objects.get(membership=membership).available == before


def test_a_provider_that_cannot_cancel_shows_why_instead_of_a_button(owner_client, team, owner):
    from generations.providers.registry import get_provider

    g = make_generation(team, owner, provider="gateway", model="viduq2", status=Status.SUBMITTED,
                        provider_job_id="job-1")
    page = owner_client.get(reverse("generations:gallery")).text
    assert url("cancel", g) not in page
    assert get_provider("gateway").cancel_help in page
    response = owner_client.post(url("cancel", g), follow=True)
    assert get_provider("gateway").cancel_help in response.text
    g.refresh_from_db()
    assert g.status == Status.SUBMITTED


def test_undo_after_archiving_brings_the_card_back(owner_client, image):
    owner_client.post(url("archive", image), headers=HX)
    response = owner_client.post(url("restore", image), {"then": "card"}, headers=HX)
    assert f'<article id="card-{image.public_id}" class="gcard' in response.text
    image.refresh_from_db()
    assert not image.archived


# ---------------------------------------------------------------------------
# Share, from the result's page and from the card's menu


def test_the_detail_page_of_a_finished_result_offers_share_with_it_preselected(owner_client, image):
    share_url = url("share_create", image)
    page = owner_client.get(url("detail", image)).text
    actions = page.split('class="detail-actions"', 1)[1].split("</div>", 1)[0]
    assert f'<a class="button secondary" href="{share_url}">Share</a>' in actions

    form = owner_client.get(share_url)
    assert form.status_code == 200
    assert f'action="{share_url}"' in form.text  # the form shares this very result
    assert "Create share link" in form.text


@pytest.mark.parametrize("status", [Status.RUNNING, Status.FAILED])
def test_a_result_that_has_not_succeeded_offers_no_share(owner_client, team, owner, status):
    g = make_generation(team, owner, status=status)
    page = owner_client.get(url("detail", g)).text
    assert url("share_create", g) not in page
    assert ">Share</a>" not in page
    assert url("share_create", g) not in owner_client.get(reverse("generations:gallery")).text


def test_the_card_menu_offers_share_for_a_succeeded_result(owner_client, image, video):
    page = owner_client.get(reverse("generations:gallery")).text
    for g in (image, video):
        card = page.split(f'<article id="card-{g.public_id}"', 1)[1].split("</article>", 1)[0]
        menu = card.split('<div class="menu">', 1)[1]
        assert f'<a href="{url("share_create", g)}">Share</a>' in menu


def test_the_shares_page_empty_state_names_only_ways_that_exist(owner_client):
    page = owner_client.get(reverse("generations:share_list")).text
    assert "No share links yet." in page
    assert "select several" not in page
    assert "“Share”" in page and "⋯ menu" in page
