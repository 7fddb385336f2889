"""Gallery fixtures: generations and media made directly as rows, with small real files."""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import av
import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image

from accounts.models import Membership
from generations.models import Generation, Kind, Media, Operation, Prompt, Status


def png_bytes(size=(64, 48), color=(200, 90, 40), to=(40, 60, 120)) -> bytes:
    """A real PNG: a vertical gradient from ``color`` to ``to``."""
    mask = Image.linear_gradient("L").resize(size)
    image = Image.composite(Image.new("RGB", size, to), Image.new("RGB", size, color), mask)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def webp_bytes(size=(32, 24), source: bytes | None = None) -> bytes:
    """A real WebP thumbnail: of ``source`` (image bytes) when given, else a plain tile."""
    image = Image.open(io.BytesIO(source)).convert("RGB") if source else Image.new("RGB", size, (20, 120, 200))
    image.thumbnail((256, 256))
    buf = io.BytesIO()
    image.save(buf, "WEBP")
    return buf.getvalue()


_MP4 = None


def mp4_bytes() -> bytes:
    """A real two-second H.264 MP4 (cached: encoding is the slow part)."""
    global _MP4
    if _MP4 is None:
        buf = io.BytesIO()
        with av.open(buf, "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=10)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            for i in range(20):
                frame = av.VideoFrame.from_image(Image.new("RGB", (64, 48), (i * 12, 80, 160)))
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        _MP4 = buf.getvalue()
    return _MP4


def make_generation(team, author, *, prompt="a serene lake at sunset", negative_prompt="", kind=Kind.IMAGE,
                    status=Status.SUCCEEDED, provider="shark", model="openai/gpt-image-2", created=None,
                    **fields) -> Generation:
    operation = fields.pop("operation", Operation.TEXT_TO_IMAGE if kind == Kind.IMAGE else Operation.TEXT_TO_VIDEO)
    p = Prompt.objects.create(team=team, author=author, text=prompt, negative_prompt=negative_prompt)
    return Generation.objects.create(
        team=team, author=author, prompt=p, provider=provider, model=model, kind=kind, operation=operation,
        status=status, created=created or timezone.now(), estimated_cost=fields.pop("estimated_cost", 1200),
        **fields)


def add_media(generation: Generation, *, kind=None, position=0, thumbnail=True, png=None) -> Media:
    kind = kind or generation.kind
    content, mime, ext = ((png or png_bytes(), "image/png", "png") if kind == Kind.IMAGE
                          else (mp4_bytes(), "video/mp4", "mp4"))
    media = Media(generation=generation, position=position, kind=kind, mime_type=mime, bytes=len(content),
                  sha256=hashlib.sha256(content).hexdigest(), width=64, height=48,
                  duration=2.0 if kind == Kind.VIDEO else None)
    media.file.save(f"{position}.{ext}", ContentFile(content), save=False)
    if thumbnail:
        poster = content if kind == Kind.IMAGE else png_bytes((96, 96), (240, 130, 60), (60, 30, 90))
        media.thumbnail.save(f"{position}-thumb.webp", ContentFile(webp_bytes(source=poster)), save=False)
    media.save()
    return media


def membership_of(user, team) -> Membership:
    return Membership.objects.get(user=user, team=team)


@pytest.fixture
def image(team, owner):
    g = make_generation(team, owner, finished_at=timezone.now(), actual_cost=1000)
    add_media(g)
    return g


@pytest.fixture
def video(team, owner):
    g = make_generation(team, owner, kind=Kind.VIDEO, model="alibaba/wan-2.7", prompt="A fox running through snow",
                        finished_at=timezone.now())
    add_media(g)
    return g


@pytest.fixture
def foreign(other_team, outsider):
    g = make_generation(other_team, outsider, prompt="rival secret plans")
    add_media(g)
    return g


def bulk_generations(team, author, count: int, *, start=None, same_time=False, **fields) -> list[Generation]:
    """Many generations at once (bulk_create), newest last; with ``same_time`` they all share one timestamp."""
    start = start or timezone.now() - dt.timedelta(days=1)
    p = Prompt.objects.create(team=team, author=author, text=fields.pop("prompt", "bulk prompt"))
    rows = [
        Generation(team=team, author=author, prompt=p, provider="shark", model="openai/gpt-image-2", kind=Kind.IMAGE,
                   operation=Operation.TEXT_TO_IMAGE, status=fields.get("status", Status.SUCCEEDED),
                   created=start if same_time else start + dt.timedelta(seconds=i))
        for i in range(count)
    ]
    return Generation.objects.bulk_create(rows)
