"""Providers that fetch inputs by URL get a signed, expiring link under KILN_PUBLIC_URL."""

from io import BytesIO
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import resolve, reverse
from PIL import Image

from generations.engine.submit import _input_url, input_token
from generations.models import Generation, Status
from generations.services import InputSpec

pytestmark = pytest.mark.media


def png() -> SimpleUploadedFile:
    buffer = BytesIO()
    Image.new("RGB", (64, 48), (200, 90, 30)).save(buffer, "PNG")
    return SimpleUploadedFile("frame.png", buffer.getvalue(), content_type="image/png")


def test_a_signed_input_url_serves_the_exact_file_without_a_login(client, make, settings):
    settings.KILN_PUBLIC_URL = "https://kiln.example.com"
    generation = make(operation="image-to-video", inputs=[InputSpec("first_frame", upload=png())])
    item = generation.inputs.get()
    # The link a provider is given (its token carries the second it was signed in: compare
    # what the link serves, not the link with one signed a moment later).
    link = urlsplit(_input_url(item))
    assert (link.scheme, link.netloc) == ("https", "kiln.example.com")
    assert resolve(link.path).url_name == "input_file"

    response = client.get(link.path)

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == item.file.open("rb").read()


def test_a_tampered_input_token_is_a_404(client, make):
    generation = make(operation="image-to-video", inputs=[InputSpec("first_frame", upload=png())])
    token = input_token(generation.inputs.get())
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")

    assert client.get(reverse("generations:input_file", args=[forged])).status_code == 404


def test_an_input_is_no_longer_served_once_its_generation_has_ended(client, make):
    generation = make(operation="image-to-video", inputs=[InputSpec("first_frame", upload=png())])
    url = reverse("generations:input_file", args=[input_token(generation.inputs.get())])
    Generation.objects.filter(pk=generation.pk).update(status=Status.CANCELLED)

    assert client.get(url).status_code == 404
