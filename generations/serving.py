"""Serving stored media safely: only from views that have already checked access.

Every response carries the exact stored Content-Type, ``nosniff``, a CSP that
forbids anything active, and supports single HTTP byte ranges so videos seek.
Several files go out as one zip streamed as it is made (``zip_response``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from django.db.models.fields.files import FieldFile
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header
from zipstream import ZIP_STORED, ZipStream

from generations.models import Kind, Media

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
MEDIA_CSP = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox"


THUMBNAIL_TYPES = {"webp": "image/webp", "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png"}


def thumbnail_type(field_file: FieldFile) -> str | None:
    """A stored thumbnail's Content-Type, from its extension (None for one Kiln does not make)."""
    ext = field_file.name.rsplit(".", 1)[-1].lower() if "." in field_file.name else ""
    return THUMBNAIL_TYPES.get(ext)


def preview_of(media: Media) -> tuple[FieldFile, str] | None:
    """What shows a result small: its thumbnail (a video's poster frame), else an image itself;
    None for a video with neither."""
    if media.thumbnail:
        return media.thumbnail, thumbnail_type(media.thumbnail) or "application/octet-stream"
    if media.kind == Kind.IMAGE:
        return media.file, media.mime_type
    return None


def _harden(response: HttpResponse, *, private: bool) -> HttpResponse:
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = MEDIA_CSP
    response["Cache-Control"] = "private, max-age=3600" if private else "public, max-age=300"
    response["Accept-Ranges"] = "bytes"
    # Cross-origin pages may not embed our media.
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    return response


def serve_file(request, field_file, content_type: str, *, download_name: str | None = None,
               private: bool = True) -> HttpResponse:
    """Stream a stored file (``FieldFile``), honouring a single ``Range: bytes=a-b``."""
    storage, name = field_file.storage, field_file.name
    size = storage.size(name)
    header = request.headers.get("Range", "")
    match = _RANGE.match(header.strip()) if header else None
    if header and not match:
        match = None  # malformed or multi-range: serve the whole file, as RFC 9110 allows
    start, end = 0, size - 1
    partial = False
    if match and (match.group(1) or match.group(2)):
        first, last = match.group(1), match.group(2)
        if first:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
        else:  # suffix range: the last N bytes
            start = max(0, size - int(last))
        if start >= size or start > end:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return _harden(response, private=private)
        partial = True

    fh = storage.open(name, "rb")
    if partial:
        fh.seek(start)
        length = end - start + 1
        response = FileResponse(_limited(fh, length), status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(length)
    else:
        response = FileResponse(fh, content_type=content_type)
        response["Content-Length"] = str(size)
    # FileResponse guesses headers from the file; keep ours exact.
    response["Content-Type"] = content_type
    if download_name:
        response["Content-Disposition"] = content_disposition_header(True, download_name)
    else:
        response["Content-Disposition"] = "inline"
    return _harden(response, private=private)


def _limited(fh, length: int, chunk: int = 256 * 1024):
    try:
        remaining = length
        while remaining > 0:
            data = fh.read(min(chunk, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data
    finally:
        fh.close()


CHUNK = 256 * 1024


def zip_response(files: Sequence[tuple[str, FieldFile]], download_name: str) -> StreamingHttpResponse | None:
    """Several stored files as one zip download, streamed as it is made.

    ``files`` are ``(name in the zip, stored file)`` from a view that has checked access.
    The media are already compressed (PNG, WebP, MP4), so they are *stored*, not
    deflated again: the zip costs no CPU and its length is known before the first byte
    (zipstream-ng's "sized" stream), so the browser shows a real progress bar. Each file
    is opened only when its turn comes and read in 256 KiB chunks: memory stays flat
    whatever the number and size of the files (``bench/zip.py`` measures it), and
    nothing is written to disk. A file that is gone from storage by now is left out;
    None when that leaves nothing. Files or archives over 4 GiB get Zip64 records."""
    archive = ZipStream(compress_type=ZIP_STORED, sized=True)
    for name, field_file in files:
        try:
            size = field_file.storage.size(field_file.name)
        except (FileNotFoundError, OSError):
            continue
        archive.add(_chunks(field_file), name, size=size)
    if archive.is_empty():
        return None
    response = StreamingHttpResponse(archive, content_type="application/zip")
    response["Content-Length"] = str(len(archive))
    response["Content-Disposition"] = content_disposition_header(True, download_name)
    response = _harden(response, private=True)
    response["Accept-Ranges"] = "none"  # made on the fly: no ranges
    response["Cache-Control"] = "private, no-store"
    return response


def _chunks(field_file: FieldFile) -> Iterator[bytes]:
    """The file's bytes; a generator, so it is opened when the zip gets to it, not before."""
    with field_file.storage.open(field_file.name, "rb") as fh:
        while data := fh.read(CHUNK):
            yield data
