"""Bad input at every door (the studio form, the ``generate`` command) is refused with a
clear message, and nothing is half-written: no Generation, Prompt or InputMedia row,
no file under MEDIA_ROOT, the wallet untouched."""

import functools
import io
import struct
import uuid
import zlib
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils.html import escape
from PIL import Image

from accounts.credits.models import LedgerEntry, Wallet
from generations.models import Generation, InputMedia, Prompt
from tests.generations.studio.conftest import GPT_IMAGE, WAN, form_data, png_bytes

GENERATE = reverse("generations:generate")
HTMX = {"HX-Request": "true"}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny file that declares an enormous image (a decompression bomb's header)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _chunk(b"IEND", b""))


@functools.cache
def huge_png() -> bytes:
    """A real, valid 10000x10000 PNG (1-bit, so it is small on disk)."""
    buffer = io.BytesIO()
    Image.new("1", (10_000, 10_000), 1).save(buffer, "PNG")
    return buffer.getvalue()


BAD_FILES = {
    "html named .png": (b"<!doctype html><html><script>alert(1)</script></html>", "not a PNG, JPEG, WebP or GIF"),
    "unknown bytes named .png": (b"\x00\x13\x37 no format anyone knows" * 4,
                                 "is a file in another format, not a PNG, JPEG, WebP or GIF image"),
    "zip bomb png": (bomb_png(), "pixels"),
    "empty file": (b"", "empty"),
    "10000x10000 image": (None, "10000x10000 pixels"),
    "truncated png": (png_bytes()[:60], ""),
    "oversized upload": ("oversized", "larger than"),
}


def file_bytes(name: str) -> bytes:
    content = BAD_FILES[name][0]
    if content is None:
        return huge_png()
    if content == "oversized":
        return png_bytes((600, 600))  # valid, but above the 2,000-byte limit the test sets
    return content


def assert_nothing_written(user, team, balance: tuple[int, int], media_root: Path) -> None:
    assert Generation.objects.count() == 0
    assert Prompt.objects.count() == 0
    assert InputMedia.objects.count() == 0
    assert not LedgerEntry.objects.filter(kind="reserve").exists()
    wallet = Wallet.objects.get(membership__user=user, membership__team=team)
    assert (wallet.available, wallet.reserved) == balance
    assert [p for p in media_root.rglob("*") if p.is_file()] == [] if media_root.exists() else True


def balance(user, team) -> tuple[int, int]:
    wallet = Wallet.objects.get(membership__user=user, membership__team=team)
    return wallet.available, wallet.reserved


@pytest.fixture
def shark(sandbox_key, team):
    return sandbox_key(team, "shark")


# -- the studio form -------------------------------------------------------------


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_the_studio_refuses_a_bad_first_frame_and_writes_nothing(owner_client, owner, team, shark, settings, name):
    settings.KILN_MAX_UPLOAD_BYTES = 2000 if name == "oversized upload" else settings.KILN_MAX_UPLOAD_BYTES
    before = balance(owner, team)
    data = form_data(model=WAN, operation="image-to-video")
    data["first_frame"] = SimpleUploadedFile("frame.png", file_bytes(name), content_type="image/png")
    response = owner_client.post(GENERATE, data, headers=HTMX)
    assert response.status_code == 422
    assert BAD_FILES[name][1] in response.content.decode()
    assert_nothing_written(owner, team, before, Path(settings.MEDIA_ROOT))


@pytest.mark.parametrize(("values", "message"), [
    ({"n": "99"}, "Must be at most 4."),
    ({"n": "-1"}, "Must be at least 1."),
    ({"n": "1e9"}, "Enter a whole number."),
    ({"quality": "ultra"}, "Choose one of: low, medium, high, auto."),
    ({"size": "../../etc/passwd"}, "Choose one of: 1024x1024"),
    ({"prompt": "x" * 100_000}, "at most 4,000 characters; this one has 100,000 (96,000 too many)"),
    ({"prompt": "a kiln\x00at night"}, "Null characters are not allowed."),
    ({"prompt": "a kiln \x1b[31m red"}, "Control characters are not allowed."),
    ({"prompt": "   "}, "This field is required."),
    ({"model": "shark:no-such/model"}, "This model is not available to your team."),
])
def test_the_studio_refuses_bad_fields_and_writes_nothing(owner_client, owner, team, shark, settings, values, message):
    before = balance(owner, team)
    response = owner_client.post(GENERATE, {**form_data(model=GPT_IMAGE), **values}, headers=HTMX)
    assert response.status_code == 422
    assert escape(message) in response.content.decode()
    assert_nothing_written(owner, team, before, Path(settings.MEDIA_ROOT))


# -- the command line ------------------------------------------------------------


def generate(*args: str) -> None:
    call_command("generate", "--team", "acme", "--user", "owner@acme.test", *args)


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "openai/gpt-image-2", "--prompt", "x", "--param", "n=99"], "n: Must be at most 4."),
    (["--model", "openai/gpt-image-2", "--prompt", "x", "--param", "n=two"], "n: Enter a whole number."),
    (["--model", "openai/gpt-image-2", "--prompt", "x", "--param", "quality=ultra"], "quality: Choose one of"),
    (["--model", "alibaba/wan-2.7", "--prompt", "x", "--param", "duration=100000"], "duration: Choose one of: 5, 10, 15."),
    (["--model", "openai/gpt-image-2", "--prompt", "x" * 100_000], "prompt: At most"),
    (["--model", "openai/gpt-image-2", "--prompt", "bell\x07"], "prompt: The prompt contains control characters."),
    (["--model", "openai/gpt-image-2", "--prompt", ""], "prompt: Describe what to make"),
    (["--model", "no/such-model", "--prompt", "x"], "no/such-model"),
    (["--model", "openai/gpt-image-2", "--prompt", "x", "--operation", "text-to-hologram"], "does not do"),
])
def test_the_generate_command_refuses_bad_fields_with_exit_status_2(owner, team, shark, settings, args, message):
    before = balance(owner, team)
    with pytest.raises(CommandError) as refused:
        generate(*args)
    assert refused.value.returncode == 2
    assert message in str(refused.value)
    assert_nothing_written(owner, team, before, Path(settings.MEDIA_ROOT))


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_the_generate_command_refuses_a_bad_input_file(owner, team, shark, settings, tmp_path, name):
    settings.KILN_MAX_UPLOAD_BYTES = 2000 if name == "oversized upload" else settings.KILN_MAX_UPLOAD_BYTES
    path = tmp_path / f"{uuid.uuid4().hex}.png"
    path.write_bytes(file_bytes(name))
    before = balance(owner, team)
    with pytest.raises(CommandError) as refused:
        generate("--model", "alibaba/wan-2.7", "--operation", "image-to-video", "--prompt", "x",
                 "--input", f"first_frame={path}")
    assert refused.value.returncode == 2
    assert BAD_FILES[name][1] in str(refused.value)
    assert_nothing_written(owner, team, before, Path(settings.MEDIA_ROOT))
