"""Input files a generation is made from: uploads and gallery media.

Every file is checked before anything is created: its type by magic bytes
(an HTML file named ``.png`` is refused), its size (0 bytes and anything above
``settings.KILN_MAX_UPLOAD_BYTES`` are refused), and for images the pixel
dimensions and a full decode (decompression bombs and truncated files are
refused). The result carries the bytes, so services can store them under a
server-chosen name only once the generation's row exists.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import File

from generations import mediafiles
from generations.mediafiles import MediaRejected


class InputRejected(ValueError):
    """A file cannot be used as an input; the message is for a person."""


@dataclass(frozen=True)
class CheckedInput:
    role: str
    content: bytes
    mime_type: str
    kind: str
    ext: str
    sha256: str
    width: int | None = None
    height: int | None = None
    source_media_id: int | None = None

    @property
    def bytes(self) -> int:
        return len(self.content)


def _read_capped(fh: File, limit: int) -> bytes:
    chunks, size = [], 0
    if hasattr(fh, "seek"):
        with contextlib.suppress(OSError, ValueError):
            fh.seek(0)
    for chunk in fh.chunks() if hasattr(fh, "chunks") else iter(lambda: fh.read(256 * 1024), b""):
        size += len(chunk)
        if size > limit:
            raise InputRejected(f"This file is larger than the {_mb(limit)} limit.")
        chunks.append(chunk)
    return b"".join(chunks)


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{n:,} bytes"


def check_content(content: bytes, *, role: str, expected_kind: str, name: str = "") -> CheckedInput:
    """Validate bytes as an input of ``expected_kind`` ("image" or "video")."""
    shown = f"“{os.path.basename(name)[:80]}”" if name else "This file"
    if not content:
        raise InputRejected(f"{shown} is empty.")
    limit = settings.KILN_MAX_UPLOAD_BYTES
    if len(content) > limit:
        raise InputRejected(f"{shown} is larger than the {_mb(limit)} limit.")
    sniffed = mediafiles.sniff(content[:64])
    if sniffed is None:
        raise InputRejected(f"{shown} is {mediafiles.describe_head(content[:64])}, not a PNG, JPEG, WebP or GIF image"
                            + (" or an MP4, MOV or WebM video." if expected_kind == "video" else "."))
    if sniffed.kind != expected_kind:
        raise InputRejected(f"{shown} is {'an' if sniffed.kind == 'image' else 'a'} {sniffed.kind}; "
                            f"this slot takes {'an' if expected_kind == 'image' else 'a'} {expected_kind}.")
    # Decoders want a path: PyAV cannot read everything from memory, and Pillow's
    # checks are the same either way.
    with tempfile.NamedTemporaryFile(suffix="." + sniffed.ext) as tmp:
        tmp.write(content)
        tmp.flush()
        try:
            info = mediafiles.process(tmp.name, sniffed) if sniffed.kind == "video" else None
            width, height = (info.width, info.height) if info else mediafiles.verify_image(tmp.name)
        except MediaRejected as exc:
            raise InputRejected(f"{shown}: {exc}") from None
    return CheckedInput(role=role, content=content, mime_type=sniffed.mime_type, kind=sniffed.kind,
                        ext=sniffed.ext, sha256=hashlib.sha256(content).hexdigest(), width=width, height=height)


def check_upload(upload: File, *, role: str, expected_kind: str) -> CheckedInput:
    """Validate an uploaded file (Django ``UploadedFile`` or any ``File``)."""
    name = getattr(upload, "name", "") or ""
    size = getattr(upload, "size", None)
    limit = settings.KILN_MAX_UPLOAD_BYTES
    if size is not None and size > limit:
        raise InputRejected(f"“{os.path.basename(name)[:80]}” is larger than the {_mb(limit)} limit.")
    content = _read_capped(upload, limit)
    return check_content(content, role=role, expected_kind=expected_kind, name=name)


def check_media(media, *, role: str, expected_kind: str, team_id: int) -> CheckedInput:
    """Validate gallery media used as an input: it must be the team's own, and is re-checked like an upload."""
    if media.generation.team_id != team_id:
        raise InputRejected("That media is not in this team's gallery.")
    try:
        with media.file.open("rb") as fh:
            content = _read_capped(fh, settings.KILN_MAX_UPLOAD_BYTES)
    except FileNotFoundError:
        raise InputRejected("That media's file is missing from storage.") from None
    checked = check_content(content, role=role, expected_kind=expected_kind)
    return CheckedInput(**{**checked.__dict__, "source_media_id": media.pk})
