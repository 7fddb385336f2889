"""Acting on several cards at once: the gallery's selection bar (archive, restore, favourite,
share, download as one zip)."""

import io
import re
import tracemalloc
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from generations.gallery import views
from generations.gallery.queries import MAX_SELECTION, download_filename
from generations.models import Favourite, Generation, Kind, Media, Status

from .conftest import add_media, make_generation

HX = {"HX-Request": "true"}


def bulk(name):
    return reverse(f"generations:bulk_{name}")


def ids(*generations):
    return {"ids": [str(g.public_id) for g in generations]}


def finished(team, author, prompt="a serene lake at sunset", **fields):
    g = make_generation(team, author, prompt=prompt, **fields)
    add_media(g)
    return g


def tombstones(html: str) -> set[str]:
    """The ids of the cards an answer turns into tombstones, out of band."""
    return set(re.findall(r'id="card-([0-9a-f-]+)" class="gcard gcard-tombstone" role="status" hx-swap-oob="true"', html))


def zip_of(response) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


# ---------------------------------------------------------------------------
# Archive and restore


def test_archiving_a_selection_turns_each_card_into_a_tombstone_in_one_request(owner_client, team, owner, teammate):
    mine, theirs, kept = finished(team, owner), finished(team, teammate), finished(team, owner)

    response = owner_client.post(bulk("archive"), ids(mine, theirs), headers=HX)

    assert response.status_code == 200
    assert "Archived 2 results." in response.text
    # The owner manages the team: a member's result is archived too. Each card says so, with its undo.
    assert tombstones(response.text) == {str(mine.public_id), str(theirs.public_id)}
    assert reverse("generations:restore", args=[mine.public_id]) in response.text
    assert set(Generation.objects.filter(archived=True)) == {mine, theirs}
    gallery = owner_client.get(reverse("generations:gallery")).text
    assert str(kept.public_id) in gallery and str(mine.public_id) not in gallery


def test_a_member_archives_their_own_and_is_told_which_they_may_not(teammate_client, team, owner, teammate):
    own, owners = finished(team, teammate), finished(team, owner)

    response = teammate_client.post(bulk("archive"), ids(own, owners), headers=HX)

    assert response.status_code == 200
    assert ("Archived 1 result. 1 result left as it was: only its author or a team owner or admin "
            "can archive it.") in response.text
    assert tombstones(response.text) == {str(own.public_id)}
    own.refresh_from_db()
    owners.refresh_from_db()
    assert own.archived and not owners.archived


def test_when_none_may_be_archived_nothing_changes_and_the_bar_says_why(teammate_client, team, owner):
    owners = [finished(team, owner), finished(team, owner)]
    response = teammate_client.post(bulk("archive"), ids(*owners), headers=HX)
    assert 'class="bulk-notice is-refused" role="alert"' in response.text
    assert ("2 results left as they were: only their authors or a team owner or admin can archive them."
            in response.text)
    assert not tombstones(response.text)
    assert not Generation.objects.filter(archived=True).exists()


def test_restoring_a_selection_from_the_archive(owner_client, team, owner):
    a, b = finished(team, owner, archived=True), finished(team, owner, archived=True)
    response = owner_client.post(bulk("restore"), ids(a, b), headers=HX)
    assert "Restored 2 results." in response.text
    assert tombstones(response.text) == {str(a.public_id), str(b.public_id)}
    assert "Restored to the gallery." in response.text
    assert not Generation.objects.filter(archived=True).exists()


def test_without_javascript_the_bar_goes_back_to_the_page_with_a_message(owner_client, team, owner):
    a = finished(team, owner)
    response = owner_client.post(bulk("archive"), {**ids(a), "next": "/gallery/?kind=image"}, follow=True)
    assert response.redirect_chain == [("/gallery/?kind=image", 302)]
    assert "Archived 1 result." in response.text
    # An address elsewhere is not followed.
    response = owner_client.post(bulk("restore"), {**ids(a), "next": "https://evil.example/"})
    assert response["Location"] == reverse("generations:gallery")


# ---------------------------------------------------------------------------
# Favourites


def test_favouriting_a_mixed_selection_makes_them_all_favourites_for_this_member_only(
        owner_client, team, owner, teammate):
    a, b, c = finished(team, owner), finished(team, teammate), finished(team, teammate)
    Favourite.objects.create(user=owner, generation=a)

    response = owner_client.post(bulk("favourite"), {**ids(a, b, c), "favourite": "on"}, headers=HX)

    assert "Added 2 results to your favourites." in response.text
    assert set(Favourite.objects.filter(user=owner).values_list("generation", flat=True)) == {a.pk, b.pk, c.pk}
    assert not Favourite.objects.filter(user=teammate).exists()
    # Each card comes back out of band with its star on.
    for g in (a, b, c):
        card = re.search(rf'<article id="card-{g.public_id}"[^>]*hx-swap-oob="true".*?</article>', response.text, re.S)
        assert card and 'aria-pressed="true"' in card.group(0)

    again = owner_client.post(bulk("favourite"), {**ids(a, b, c), "favourite": "on"}, headers=HX)
    assert "They were all favourites already." in again.text
    assert Favourite.objects.filter(user=owner).count() == 3


def test_unfavouriting_a_selection(owner_client, team, owner):
    a, b = finished(team, owner), finished(team, owner)
    Favourite.objects.create(user=owner, generation=a)
    response = owner_client.post(bulk("favourite"), {**ids(a, b), "favourite": "off"}, headers=HX)
    assert "Removed 1 result from your favourites." in response.text
    assert 'aria-pressed="true"' not in response.text
    assert not Favourite.objects.exists()


# ---------------------------------------------------------------------------
# The selection itself: team isolation, CSRF, limits


@pytest.mark.parametrize("action", ["archive", "restore", "favourite", "share", "download"])
def test_another_teams_id_in_a_selection_answers_404_and_changes_nothing(owner_client, team, owner, foreign, action):
    own = finished(team, owner)
    response = owner_client.post(bulk(action), ids(own, foreign), headers=HX)
    assert response.status_code == 404
    own.refresh_from_db()
    foreign.refresh_from_db()
    assert not own.archived and not foreign.archived
    assert not Favourite.objects.exists()


@pytest.mark.parametrize("action", ["archive", "restore", "favourite", "share", "download"])
def test_bulk_actions_are_csrf_protected_posts(csrf_client, team, owner, action):
    a = finished(team, owner)
    assert csrf_client.post(bulk(action), ids(a)).status_code == 403
    assert csrf_client.get(bulk(action), ids(a)).status_code == 405
    a.refresh_from_db()
    assert not a.archived and not Favourite.objects.exists()


def test_anonymous_visitors_are_sent_to_sign_in(client, team, owner):
    a = finished(team, owner)
    response = client.post(bulk("archive"), ids(a))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize(("posted", "message"), [
    ({}, "Select at least one result first."),
    ({"ids": ["not-a-uuid"]}, "The selection holds something that is not a result"),
])
def test_an_empty_or_malformed_selection_is_refused_with_a_reason(owner_client, posted, message):
    response = owner_client.post(bulk("archive"), posted, headers=HX)
    assert response.status_code == 200 and message in response.text and "is-refused" in response.text


def test_a_selection_larger_than_the_limit_is_refused(owner_client, team, owner):
    import uuid

    posted = {"ids": [str(uuid.uuid4()) for _ in range(MAX_SELECTION + 1)]}
    response = owner_client.post(bulk("favourite"), posted, headers=HX)
    assert f"Select at most {MAX_SELECTION} results at once ({MAX_SELECTION + 1} are selected)." in response.text


# ---------------------------------------------------------------------------
# Share


def test_share_takes_the_finished_results_to_the_share_form(owner_client, team, owner):
    a, b = finished(team, owner), finished(team, owner, kind=Kind.VIDEO, model="alibaba/wan-2.7")
    failed = make_generation(team, owner, status=Status.FAILED)

    response = owner_client.post(bulk("share"), ids(a, failed, b), follow=True)

    url, status = response.redirect_chain[-1]
    assert status == 302 and url == f"{reverse('generations:share_new')}?ids={a.public_id},{b.public_id}"
    assert "Share 2 results" in response.text
    assert "1 result of the selection is left out: only finished results can be shared." in response.text


def test_share_refuses_a_selection_with_nothing_finished(owner_client, team, owner):
    running = make_generation(team, owner, status=Status.RUNNING)
    response = owner_client.post(bulk("share"), ids(running), follow=True)
    assert "none of the selected ones has finished" in response.text
    assert response.redirect_chain[-1][0] == reverse("generations:gallery")


def test_share_refuses_more_than_a_link_can_hold(owner_client, team, owner):
    many = [finished(team, owner) for _ in range(51)]
    response = owner_client.post(bulk("share"), ids(*many), headers=HX)
    assert "A link can share at most 50 results; 51 are selected." in response.text


# ---------------------------------------------------------------------------
# Download as one zip


@pytest.mark.media
def test_the_selection_downloads_as_one_zip_of_the_stored_originals(owner_client, team, owner, teammate):
    image = finished(team, owner, prompt="a red fox in fresh snow")
    video = finished(team, teammate, prompt="a slow pan across a canyon", kind=Kind.VIDEO, model="alibaba/wan-2.7")
    add_media(image, position=1)

    response = owner_client.post(bulk("download"), ids(image, video))

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/zip"
    assert re.fullmatch(r'attachment; filename="kiln-\d{4}-\d\d-\d\d-2-results\.zip"', response["Content-Disposition"])
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    body = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(body)  # known before the first byte
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.testzip() is None
    media = list(Media.objects.filter(generation__in=[image, video]).select_related("generation__prompt")
                 .order_by("generation__created", "position"))
    assert archive.namelist() == [download_filename(m) for m in media]
    for m, info in zip(media, archive.infolist(), strict=True):
        assert info.compress_type == zipfile.ZIP_STORED  # media are compressed already: stored as they are
        with m.file.open("rb") as fh:
            assert archive.read(info) == fh.read()
    assert archive.namelist()[0].endswith("-a-red-fox-in-fresh-snow.png")
    assert archive.namelist()[-1].endswith("-a-slow-pan-across-a-canyon.mp4")


@pytest.mark.media
def test_names_that_repeat_in_a_zip_are_numbered(owner_client, team, owner):
    same = [finished(team, owner, prompt="the same prompt") for _ in range(3)]
    names = zip_of(owner_client.post(bulk("download"), ids(*same))).namelist()
    assert len(set(names)) == 3
    assert [re.sub(r"^\d{4}-\d\d-\d\d-", "", n) for n in names] == [
        "the-same-prompt.png", "the-same-prompt-2.png", "the-same-prompt-3.png"]


def test_a_zip_costs_the_same_few_queries_for_many_results(owner_client, team, owner, django_assert_max_num_queries):
    many = [finished(team, owner, prompt=f"prompt {i}") for i in range(12)]
    with django_assert_max_num_queries(8):  # session, user, membership, the cards and their media
        response = owner_client.post(bulk("download"), ids(*many))
        assert len(zip_of(response).namelist()) == 12


@pytest.mark.media
def test_a_zip_holds_at_most_the_limit(owner_client, team, owner, settings, monkeypatch):
    monkeypatch.setattr(views, "ZIP_MAX_RESULTS", 2)
    three = [finished(team, owner) for _ in range(3)]
    response = owner_client.post(bulk("download"), {**ids(*three), "next": "/gallery/"}, follow=True)
    assert response["Content-Type"].startswith("text/html")
    assert "A zip holds at most 2 results; 3 are selected. Select fewer and download again." in response.text


def test_nothing_to_download_is_said_plainly(owner_client, team, owner):
    failed = make_generation(team, owner, status=Status.FAILED, error="refused")
    response = owner_client.post(bulk("download"), ids(failed), follow=True)
    assert "None of the selected results has a file to download" in response.text


@pytest.mark.media
def test_a_file_gone_from_storage_is_left_out_of_the_zip(owner_client, team, owner):
    kept, gone = finished(team, owner, prompt="kept"), finished(team, owner, prompt="gone")
    media = gone.media.get()
    media.file.storage.delete(media.file.name)
    names = zip_of(owner_client.post(bulk("download"), ids(kept, gone))).namelist()
    assert len(names) == 1 and names[0].endswith("-kept.png")


@pytest.mark.media
def test_a_zip_of_large_files_streams_in_flat_memory(owner_client, team, owner):
    """Three 8 MiB files: the zip is never held whole, nor any file (Python's own allocations
    while streaming stay under 2 MiB; bench/zip.py measures the process's peak)."""
    big = []
    for i in range(3):
        g = make_generation(team, owner, prompt=f"large {i}", kind=Kind.VIDEO, model="alibaba/wan-2.7")
        m = add_media(g)
        m.file.save(f"big-{i}.mp4", ContentFile(bytes([i]) * (8 * 1024 * 1024)))
        big.append(g)
    response = owner_client.post(bulk("download"), ids(*big))
    total = 0
    tracemalloc.start()
    try:
        for chunk in response.streaming_content:
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == int(response["Content-Length"]) > 24 * 1024 * 1024
    assert peak < 2 * 1024 * 1024, f"peak {peak / 1024 / 1024:.1f} MiB while streaming"
