"""Media goes out only through access-checked views, with ranges, exact types and safe headers."""

import datetime as dt

import pytest
from django.conf import settings
from django.urls import reverse

from generations.models import Kind

from .conftest import add_media, make_generation, mp4_bytes

pytestmark = pytest.mark.media


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_media_has_the_exact_type_nosniff_and_a_locked_down_csp(owner_client, video):
    media = video.media.get()
    response = owner_client.get(reverse("generations:media", args=[media.public_id]))
    assert response.status_code == 200
    assert response["Content-Type"] == "video/mp4"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in response["Content-Security-Policy"]
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Disposition"] == "inline"
    assert body(response) == mp4_bytes()


def test_a_range_request_gets_206_with_exactly_those_bytes(owner_client, video):
    media = video.media.get()
    url = reverse("generations:media", args=[media.public_id])
    data = mp4_bytes()
    response = owner_client.get(url, headers={"Range": "bytes=100-299"})
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 100-299/{len(data)}"
    assert response["Content-Length"] == "200"
    assert body(response) == data[100:300]
    tail = owner_client.get(url, headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and body(tail) == data[-50:]
    open_ended = owner_client.get(url, headers={"Range": f"bytes={len(data) - 10}-"})
    assert body(open_ended) == data[-10:]


def test_a_range_outside_the_file_gets_416(owner_client, video):
    media = video.media.get()
    size = len(mp4_bytes())
    response = owner_client.get(reverse("generations:media", args=[media.public_id]),
                                headers={"Range": f"bytes={size}-{size + 10}"})
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{size}"


def test_the_thumbnail_is_a_webp(owner_client, image):
    media = image.media.get()
    response = owner_client.get(reverse("generations:thumbnail", args=[media.public_id]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"
    content = body(response)
    assert content[:4] == b"RIFF" and content[8:12] == b"WEBP"


def test_an_image_without_a_thumbnail_falls_back_to_the_original(owner_client, team, owner):
    g = make_generation(team, owner)
    media = add_media(g, thumbnail=False)
    response = owner_client.get(reverse("generations:thumbnail", args=[media.public_id]))
    assert response["Content-Type"] == "image/png" and body(response).startswith(b"\x89PNG")


def test_the_download_is_named_after_the_date_and_the_prompt(owner_client, team, owner):
    g = make_generation(team, owner, prompt="A serene lake at sunset, with mist! And more words after", kind=Kind.VIDEO,
                       created=dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC))
    media = add_media(g)
    second = add_media(g, position=1)
    response = owner_client.get(reverse("generations:download", args=[media.public_id]))
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="2026-11-21-a-serene-lake-at-sunset-with-mist-and.mp4"'
    assert response["Content-Type"] == "video/mp4"
    other = owner_client.get(reverse("generations:download", args=[second.public_id]))
    assert other["Content-Disposition"].endswith('-mist-and-2.mp4"')


def test_a_prompt_in_another_script_still_gets_a_safe_file_name(owner_client, team, owner):
    g = make_generation(team, owner, prompt="静かな湖", created=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    media = add_media(g)
    response = owner_client.get(reverse("generations:download", args=[media.public_id]))
    assert response["Content-Disposition"] == 'attachment; filename="2026-01-02-gpt-image-2.png"'


def test_there_is_no_public_media_directory(client, owner_client, image):
    assert settings.MEDIA_URL is None
    media = image.media.get()
    assert client.get("/media/" + media.file.name).status_code in (302, 404)
    assert owner_client.get("/media/" + media.file.name).status_code == 404


def test_input_media_is_served_to_the_team_only(owner_client, team, owner, outsider):
    from django.core.files.base import ContentFile

    from generations.models import InputMedia

    from .conftest import png_bytes

    g = make_generation(team, owner, kind=Kind.VIDEO, operation="image-to-video")
    item = InputMedia(generation=g, role="first_frame", mime_type="image/png", sha256="0" * 64)
    item.file.save("frame.png", ContentFile(png_bytes()), save=True)
    url = reverse("generations:input_media", args=[g.public_id, "first_frame", 0])
    response = owner_client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    owner_client.force_login(outsider)
    assert owner_client.get(url).status_code == 404
