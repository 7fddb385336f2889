"""Fixtures for the studio: a team with sandbox provider keys, gallery media to reuse."""

import io
import uuid

import pytest
from django.core.files.base import ContentFile
from PIL import Image

from generations.models import Generation, Kind, Media, Prompt, Status
from generations.providers.registry import get_model

GPT_IMAGE = "shark:openai/gpt-image-2"
WAN = "shark:alibaba/wan-2.7"


def png_bytes(size=(64, 48), colour=(200, 90, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def form_data(model: str = GPT_IMAGE, prompt: str = "A kiln glowing at dusk", **values) -> dict:
    """What the studio form posts, as a browser would: the model, its mode, the prompt,
    every parameter at its default unless given, and a fresh one-time key."""
    provider_id, model_id = model.split(":", 1)
    spec = get_model(provider_id, model_id)
    data = {"model": model, "prompt": prompt, "idempotency_key": uuid.uuid4().hex}
    if spec is not None:
        operation = values.get("operation") or spec.operations[0]
        data["operation"] = operation
        for param in spec.params_for(operation):
            if param.default is not None and param.type != "boolean":
                data[param.name] = str(param.default)
    data.update({k: v for k, v in values.items() if v is not None})
    return data


@pytest.fixture
def shark(sandbox_key, team):
    return sandbox_key(team, "shark")


@pytest.fixture
def every_provider(sandbox_key, team):
    return [sandbox_key(team, provider) for provider in ("shark", "shuttleai", "sealink", "gateway")]


def make_gallery_media(team, author, kind=Kind.IMAGE) -> Media:
    """A finished generation of ``team`` with one stored image, as the engine leaves it."""
    prompt = Prompt.objects.create(team=team, author=author, text="A clay pot on a wheel")
    generation = Generation.objects.create(
        team=team, author=author, prompt=prompt, provider="shark", model="openai/gpt-image-2", kind=kind,
        operation="text-to-image", status=Status.SUCCEEDED, params={"n": 1})
    content = png_bytes()
    media = Media(generation=generation, position=0, kind=kind, mime_type="image/png", bytes=len(content),
                  sha256="0" * 64, width=64, height=48)
    media.file.save("0.png", ContentFile(content), save=False)
    media.thumbnail.save("0-thumb.png", ContentFile(content), save=False)
    media.save()
    return media


@pytest.fixture
def gallery_image(team, owner):
    return make_gallery_media(team, owner)


@pytest.fixture
def outsider_image(other_team, outsider):
    return make_gallery_media(other_team, outsider)
