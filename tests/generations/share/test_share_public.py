"""The public page /s/<token>/ and its media: no login, nothing else of the team, revocable at once."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from generations.models import Kind
from generations.share import services as sharing
from generations.share.models import ShareLink
from tests.generations.share.conftest import make_result, mp4_bytes, png_bytes, webp_bytes

pytestmark = pytest.mark.media


def page_url(token):
    return reverse("generations:share_public", args=[token])


def media_url(token, media, variant="share_media"):
    return reverse(f"generations:{variant}", args=[token, media.public_id])


def all_urls(token, generation):
    media = generation.media.get()
    return [page_url(token), media_url(token, media), media_url(token, media, "share_thumbnail"),
            media_url(token, media, "share_download")]


def meta(page, prop):
    """The content of <meta property|name="prop">, or None."""
    match = re.search(rf'<meta (?:property|name)="{re.escape(prop)}" content="([^"]*)">', page)
    return match.group(1) if match else None


@pytest.fixture
def shared_image(owner_membership, image_result):
    share, token = sharing.create_share(owner_membership, [image_result], title="Lighthouse, take 3")
    return share, token, image_result


@pytest.fixture
def shared_video(owner_membership, video_result):
    share, token = sharing.create_share(owner_membership, [video_result], title="Black sand")
    return share, token, video_result


def test_the_page_needs_no_login_and_shows_the_media_title_model_and_date(client, shared_image):
    _, token, generation = shared_image
    media = generation.media.get()

    response = client.get(page_url(token))

    assert response.status_code == 200
    page = response.content.decode()
    assert "<h1 class=\"sp-title\">Lighthouse, take 3</h1>" in page
    assert f'<img class="sp-media" src="{media_url(token, media)}"' in page
    assert sharing.model_label(generation) in page
    assert timezone.localtime(generation.finished_at).strftime("%B %Y") in page
    assert f'href="{media_url(token, media, "share_download")}"' in page


def test_a_video_plays_with_controls_and_loads_only_its_metadata_first(client, shared_video):
    _, token, generation = shared_video
    media = generation.media.get()

    page = client.get(page_url(token)).content.decode()

    assert (f'<video class="sp-media" controls preload="metadata" playsinline src="{media_url(token, media)}" '
            f'poster="{media_url(token, media, "share_thumbnail")}"') in page


def test_the_prompt_is_shown_only_when_the_link_says_so(client, owner_membership, image_result):
    _, hidden = sharing.create_share(owner_membership, [image_result])
    _, shown = sharing.create_share(owner_membership, [image_result], show_prompt=True, title="Dusk")
    _, untitled = sharing.create_share(owner_membership, [image_result], show_prompt=True)

    assert "a lighthouse at dusk" not in client.get(page_url(hidden)).content.decode()
    page = client.get(page_url(shown)).content.decode()
    assert '<blockquote class="sp-prompt">a lighthouse at dusk</blockquote>' in page
    # Without a title the prompt is the heading (once, not twice).
    page = client.get(page_url(untitled)).content.decode()
    assert '<h1 class="sp-title">a lighthouse at dusk</h1>' in page
    assert 'class="sp-prompt"' not in page


def test_the_page_and_its_media_send_no_referrer_and_noindex(client, shared_video):
    _, token, generation = shared_video
    for url in all_urls(token, generation):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Referrer-Policy"] == "no-referrer", url
        assert "noindex" in response["X-Robots-Tag"], url
        assert response["Cache-Control"] == "no-store", url


def test_nothing_else_of_the_team_is_on_the_page(client, owner, team, owner_membership, image_result):
    owner.name = "Olivia Owner"
    owner.save()
    other = make_result(team, owner, prompt="secret internal storyboard")
    _, token = sharing.create_share(owner_membership, [image_result], show_prompt=True)

    response = client.get(page_url(token))
    page = response.content.decode()

    for secret in ["owner@acme.test", "Olivia Owner", team.name, team.slug, str(team.public_id),
                   str(image_result.public_id), str(image_result.prompt.public_id),
                   str(other.public_id), str(other.media.get().public_id), "secret internal storyboard",
                   "/gallery/", "/shares/", "/accounts/", "Sign out", 'name="csrfmiddlewaretoken"']:
        assert secret not in page, secret
    assert "csrftoken" not in response.cookies and "sessionid" not in response.cookies


def test_a_signed_in_member_sees_the_same_public_page_without_the_app_around_it(owner_client, shared_image):
    _, token, _ = shared_image
    page = owner_client.get(page_url(token)).content.decode()
    assert "owner@acme.test" not in page and "Acme Studio" not in page and "Sign out" not in page


def test_open_graph_and_twitter_tags_use_absolute_urls(client, shared_image):
    _, token, generation = shared_image
    media = generation.media.get()

    page = client.get(page_url(token)).content.decode()

    assert meta(page, "og:title") == "Lighthouse, take 3"
    assert meta(page, "og:type") == "website"
    assert meta(page, "og:url") == f"http://testserver{page_url(token)}"
    assert meta(page, "og:image") == f"http://testserver{media_url(token, media)}"
    assert meta(page, "og:image:width") == "64" and meta(page, "og:image:height") == "48"
    assert meta(page, "twitter:card") == "summary_large_image"
    assert meta(page, "twitter:image") == meta(page, "og:image")
    assert meta(page, "og:video") is None


def test_a_video_link_previews_with_its_poster_and_the_video(client, settings, shared_video):
    settings.KILN_PUBLIC_URL = "https://kiln.example.com"
    _, token, generation = shared_video
    media = generation.media.get()

    page = client.get(page_url(token)).content.decode()

    assert meta(page, "og:type") == "video.other"
    assert meta(page, "og:url") == f"https://kiln.example.com{page_url(token)}"
    assert meta(page, "og:image") == f"https://kiln.example.com{media_url(token, media, 'share_thumbnail')}"
    assert meta(page, "og:video") == f"https://kiln.example.com{media_url(token, media)}"
    assert meta(page, "og:video:secure_url") == meta(page, "og:video")
    assert meta(page, "og:video:type") == "video/mp4"
    assert meta(page, "twitter:card") == "summary_large_image"


def test_media_is_served_with_its_exact_type_and_nosniff(client, shared_image):
    _, token, generation = shared_image
    media = generation.media.get()

    response = client.get(media_url(token, media))
    thumb = client.get(media_url(token, media, "share_thumbnail"))

    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == png_bytes()
    assert thumb["Content-Type"] == "image/webp"
    assert b"".join(thumb.streaming_content) == webp_bytes()


def test_a_range_request_on_shared_video_gets_206_and_exactly_those_bytes(client, shared_video):
    _, token, generation = shared_video
    data = mp4_bytes()

    response = client.get(media_url(token, generation.media.get()), headers={"Range": "bytes=100-1099"})

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 100-1099/{len(data)}"
    assert response["Content-Type"] == "video/mp4"
    assert b"".join(response.streaming_content) == data[100:1100]


def test_the_download_is_an_attachment_named_without_the_hidden_prompt(client, owner_membership, image_result):
    _, token = sharing.create_share(owner_membership, [image_result])

    response = client.get(media_url(token, image_result.media.get(), "share_download"))

    assert response.status_code == 200
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;") and 'filename="kiln-' in disposition
    assert "lighthouse" not in disposition
    assert b"".join(response.streaming_content) == png_bytes()


def test_the_view_counter_counts_each_visit_of_the_page(client, shared_image):
    share, token, generation = shared_image
    for _ in range(3):
        client.get(page_url(token))
    client.get(media_url(token, generation.media.get()))

    share.refresh_from_db()
    assert share.view_count == 3


def test_revocation_takes_effect_on_the_very_next_request(client, teammate_membership, shared_video):
    share, token, generation = shared_video
    urls = all_urls(token, generation)
    assert [client.get(url).status_code for url in urls] == [200, 200, 200, 200]

    sharing.revoke(share, teammate_membership)

    for url in urls:
        response = client.get(url)
        assert response.status_code == 410, url
        assert "This link is no longer available." in response.content.decode()
        assert response["Cache-Control"] == "no-store"
    share.refresh_from_db()
    assert share.view_count == 1


def test_an_expired_link_shows_the_gone_page_with_404(client, shared_video):
    share, token, generation = shared_video
    urls = all_urls(token, generation)
    ShareLink.objects.filter(pk=share.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    for url in urls:
        response = client.get(url, headers={"Range": "bytes=0-10"})
        assert response.status_code == 404, url
        assert "This link is no longer available." in response.content.decode()


def test_a_link_that_is_about_to_expire_still_works(client, owner_membership, image_result):
    _, token = sharing.create_share(owner_membership, [image_result], expires_in=timedelta(minutes=1))
    assert client.get(page_url(token)).status_code == 200


@pytest.mark.parametrize("token", ["x" * 43, "short", "a" * 200, "%2e%2e", "Zm9v.YmFy"])
def test_an_unknown_or_malformed_token_shows_the_gone_page(client, db, token):
    response = client.get(f"/s/{token}/")
    assert response.status_code == 404
    assert "This link is no longer available." in response.content.decode()
    assert response["Referrer-Policy"] == "no-referrer"


def test_a_valid_token_opens_no_media_outside_its_share(client, team, owner, other_team, outsider, shared_image):
    _, token, _ = shared_image
    same_team = make_result(team, owner).media.get()
    other_teams = make_result(other_team, outsider).media.get()

    for media in (same_team, other_teams):
        for variant in ("share_media", "share_thumbnail", "share_download"):
            assert client.get(media_url(token, media, variant)).status_code == 404


def test_a_link_to_several_results_shows_them_all(client, owner_membership, team, owner, teammate):
    results = [make_result(team, owner), make_result(team, teammate, kind=Kind.VIDEO), make_result(team, owner)]
    _, token = sharing.create_share(owner_membership, results, title="Three takes")

    page = client.get(page_url(token)).content.decode()

    assert "sp-many" in page and "3 results" in page
    for generation in results:
        assert media_url(token, generation.media.get()) in page
    assert page.count('class="sp-item"') == 3


def test_a_link_whose_results_were_all_deleted_is_gone(client, shared_image):
    _, token, generation = shared_image
    generation.delete()

    assert client.get(page_url(token)).status_code == 404


def test_a_media_file_missing_from_storage_is_a_404_not_a_crash(client, shared_image):
    _, token, generation = shared_image
    media = generation.media.get()
    media.file.storage.delete(media.file.name)

    assert client.get(media_url(token, media)).status_code == 404


def test_the_public_urls_accept_only_safe_methods(client, shared_image):
    _, token, generation = shared_image
    assert client.post(page_url(token)).status_code == 405
    assert client.post(media_url(token, generation.media.get())).status_code == 405


def test_the_page_takes_the_same_number_of_queries_for_one_or_eight_results(client, owner_membership, team, owner,
                                                                           django_assert_num_queries):
    _, one = sharing.create_share(owner_membership, [make_result(team, owner)])
    _, eight = sharing.create_share(owner_membership, [make_result(team, owner) for _ in range(8)])

    # The link, its results, their media, the view counter's UPDATE, and the team's webhook
    # endpoints (for share.viewed).
    with django_assert_num_queries(5):
        assert client.get(page_url(one)).status_code == 200
    with django_assert_num_queries(5):
        assert client.get(page_url(eight)).status_code == 200
