"""Results with real media files (a PNG via Pillow, an H.264 MP4 via PyAV) for share-link tests."""

import hashlib
import io
from functools import cache

import av
import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image

from generations.models import Generation, Kind, Media, Operation, Prompt, Status


@cache
def png_bytes(size=(64, 48), colour=(220, 90, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


@cache
def webp_bytes(size=(32, 24), colour=(40, 90, 220)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="WEBP")
    return buf.getvalue()


@cache
def mp4_bytes(seconds: int = 4, fps: int = 10, size=(96, 64)) -> bytes:
    """A real H.264 MP4 with a keyframe every second, so a browser can seek in it."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": str(fps), "preset": "ultrafast"}
        for i in range(seconds * fps):
            frame = av.VideoFrame.from_image(Image.new("RGB", size, ((i * 6) % 256, 80, 160)))
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def make_result(team, author, *, kind=Kind.IMAGE, status=Status.SUCCEEDED, prompt="a lighthouse at dusk",
                provider="shark", model="shark-test-model", with_thumbnail=True) -> Generation:
    """A finished (or not) generation with one stored media file, made the way the engine leaves it."""
    now = timezone.now()
    generation = Generation.objects.create(
        team=team, author=author, prompt=Prompt.objects.create(team=team, author=author, text=prompt),
        provider=provider, model=model, kind=kind,
        operation=Operation.TEXT_TO_VIDEO if kind == Kind.VIDEO else Operation.TEXT_TO_IMAGE,
        status=status, finished_at=now if status == Status.SUCCEEDED else None,
    )
    if status != Status.SUCCEEDED:
        return generation
    if kind == Kind.VIDEO:
        data, mime, ext, width, height, duration = mp4_bytes(), "video/mp4", "mp4", 96, 64, 4.0
    else:
        data, mime, ext, width, height, duration = png_bytes(), "image/png", "png", 64, 48, None
    media = Media(generation=generation, position=0, kind=kind, mime_type=mime, bytes=len(data),
                  sha256=hashlib.sha256(data).hexdigest(), width=width, height=height, duration=duration)
    media.file.save(f"x.{ext}", ContentFile(data), save=False)
    if with_thumbnail:
        media.thumbnail.save("thumb.webp", ContentFile(webp_bytes()), save=False)
    media.save()
    return generation


@pytest.fixture
def owner_membership(owner, team):
    return owner.memberships.get(team=team)


@pytest.fixture
def teammate_membership(teammate, team):
    return teammate.memberships.get(team=team)


@pytest.fixture
def outsider_membership(outsider, other_team):
    return outsider.memberships.get(team=other_team)


@pytest.fixture
def image_result(team, owner):
    return make_result(team, owner)


@pytest.fixture
def video_result(team, owner):
    return make_result(team, owner, kind=Kind.VIDEO, prompt="waves rolling over black sand")
