"""What a media file really is, and its thumbnail or poster frame.

Nothing a provider or an uploader says about a file is trusted: the type comes
from its first bytes (``sniff``), never from a Content-Type header or a file
name, and only the types below are accepted. Images are opened with Pillow
under a pixel limit (a small file that decodes to gigapixels is refused before
decoding); videos are probed with PyAV, and what their container declares (size,
codec, duration, frame count) is checked before a single frame is decoded.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

logger = logging.getLogger(__name__)

MAX_SIDE = 8192                     # pixels, either side
MAX_PIXELS = MAX_SIDE * MAX_SIDE    # Pillow's own guard, made explicit
THUMBNAIL_SIDE = 512
THUMBNAIL_QUALITY = 80

# A video longer than this, or with more frames, is not a generation's input or output.
MAX_VIDEO_SECONDS = 600
MAX_VIDEO_FRAMES = MAX_VIDEO_SECONDS * 120
# The decoders a video may need (FFmpeg's names): what providers send and phones and
# editors make. Anything else is refused before a decoder is opened.
VIDEO_CODECS = {"h264": "H.264", "hevc": "H.265", "vp8": "VP8", "vp9": "VP9", "av1": "AV1", "mpeg4": "MPEG-4",
                "mjpeg": "Motion JPEG"}

# Pillow warns above MAX_IMAGE_PIXELS and raises above twice that; we check the
# header size ourselves first, so this is the second line of defence.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class MediaRejected(ValueError):
    """The file is not media Kiln accepts; the message is for a person."""


@dataclass(frozen=True)
class Sniffed:
    mime_type: str
    kind: str        # "image" or "video"
    ext: str


IMAGE_TYPES = {"image/png", "image/jpeg", "image/webp", "image/gif"}
VIDEO_TYPES = {"video/mp4", "video/quicktime", "video/webm"}


def sniff(head: bytes) -> Sniffed | None:
    """The media type from a file's first bytes (at least 32 of them), or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image/png", "image", "png")
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image/jpeg", "image", "jpg")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed("image/webp", "image", "webp")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed("image/gif", "image", "gif")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return Sniffed("video/quicktime", "video", "mov")
        # isom, iso2, mp41, mp42, avc1, dash, M4V ...: all MP4 family.
        if brand[:1].isalnum():
            return Sniffed("video/mp4", "video", "mp4")
    if head.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in head[:64]:
        return Sniffed("video/webm", "video", "webm")
    return None


def sniff_file(path: str | Path) -> Sniffed | None:
    with open(path, "rb") as fh:
        return sniff(fh.read(64))


def describe_head(head: bytes) -> str:
    """A short, safe description of what a refused file looks like, for messages."""
    text = head[:16].lstrip().lower()
    if not head:
        return "an empty file"
    if text.startswith((b"<!doctype", b"<html", b"<?xml", b"<svg", b"<")):
        return "an HTML/XML document"
    if text.startswith((b"{", b"[")):
        return "a JSON document"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    return "a file in another format"


@dataclass
class Processed:
    width: int | None
    height: int | None
    duration: float | None
    thumbnail: bytes | None   # WebP


def image_size(path: str | Path) -> tuple[int, int]:
    """Width and height from the header, refusing absurd sizes before any decoding."""
    try:
        with warnings.catch_warnings():
            # Opening reads the header only; check_dimensions below refuses the size itself.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
    except Image.DecompressionBombError:
        raise MediaRejected(f"This image is too large (more than {MAX_SIDE}x{MAX_SIDE} pixels).") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaRejected(f"This image cannot be read ({type(exc).__name__}).") from None
    check_dimensions(width, height)
    return width, height


def check_dimensions(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise MediaRejected("This image has no pixels.")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise MediaRejected(f"This image is {width}x{height} pixels; at most {MAX_SIDE}x{MAX_SIDE} is accepted.")


def verify_image(path: str | Path) -> tuple[int, int]:
    """Check an image decodes completely (a truncated or corrupt file is refused)."""
    width, height = image_size(path)
    try:
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:  # verify() leaves the image unusable: reopen and decode
            img.load()
    except Image.DecompressionBombError:
        raise MediaRejected(f"This image is too large (more than {MAX_SIDE}x{MAX_SIDE} pixels).") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaRejected(f"This image is damaged or incomplete ({type(exc).__name__}).") from None
    return width, height


def _webp_thumbnail(img: Image.Image) -> bytes:
    img = ImageOps.exif_transpose(img)
    if img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.getbands() or img.mode == "P" else "RGB")
    # Bicubic and WebP's method 2 rather than Lanczos and method 4: half the CPU (it is on
    # every download's critical path, docs/performance.md) for a card-sized picture that
    # looks the same and weighs within a few percent.
    img.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), resample=Image.Resampling.BICUBIC)
    out = io.BytesIO()
    img.save(out, "WEBP", quality=THUMBNAIL_QUALITY, method=2)
    return out.getvalue()


def process_image(path: str | Path) -> Processed:
    width, height = verify_image(path)
    try:
        with Image.open(path) as img:
            img.draft("RGB", (THUMBNAIL_SIDE * 2, THUMBNAIL_SIDE * 2))  # JPEG: decode at reduced size
            thumb = _webp_thumbnail(img)
    except (OSError, ValueError) as exc:
        raise MediaRejected(f"This image cannot be read ({type(exc).__name__}).") from None
    return Processed(width, height, None, thumb)


def process_video(path: str | Path) -> Processed:
    """Width, height, duration and a WebP poster of the first decodable frame.

    What the container declares is checked first, before any frame is decoded: a 2 MB
    Motion JPEG ``.mov`` declaring 12000x12000 pixels took a worker from 74 MB to 2 GB
    when its first frame was decoded and converted to check its size. The memory a probe
    may then use is bounded: FFmpeg's ``max_pixels`` (in the stream probing of ``av.open``
    and in the decoder) refuses any picture larger than declared, one decoding thread
    holds one frame, and that frame is scaled straight to the poster's size (no full-size
    RGB copy). At most one frame of at most MAX_SIDE x MAX_SIDE pixels, then."""
    import av

    try:
        with av.open(str(path), options={"max_pixels": str(MAX_PIXELS), "threads": "1"}) as container:
            if not container.streams.video:
                raise MediaRejected("This file has no video stream.")
            stream = container.streams.video[0]
            context = stream.codec_context
            width, height = context.width, context.height
            duration = None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / av.time_base
            # The format's name ("av1"), not the decoder's ("libdav1d").
            check_video(width, height, context.codec.canonical_name, duration, stream.frames)
            # Decoders allocate pictures with their sides aligned (up to 128 pixels, AV1's
            # superblocks): no more than that above the declared size.
            context.options = {"max_pixels": str((width + 128) * (height + 128))}
            context.thread_count = 1
            poster = None
            for frame in container.decode(stream):
                poster = _poster(frame)
                break
    except MediaRejected:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise MediaRejected(f"This video cannot be read ({type(exc).__name__}).") from None
    if poster is None:
        raise MediaRejected("This video has no frame that can be decoded.")
    return Processed(width, height, round(duration, 3) if duration else None, poster)


def check_video(width: int, height: int, codec: str, duration: float | None, frames: int | None) -> None:
    """Refuse, from what the container declares, a video Kiln will not decode."""
    if not width or not height:
        # FFmpeg reads the size from the stream's headers under the same pixel limit, and
        # forgets a size above it: too large, or not said at all.
        raise MediaRejected(f"This video's pictures are larger than {MAX_SIDE}x{MAX_SIDE} or of no stated size; "
                            f"at most {MAX_SIDE}x{MAX_SIDE} is accepted.")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise MediaRejected(f"This video is {width}x{height}; at most {MAX_SIDE}x{MAX_SIDE} is accepted.")
    if codec not in VIDEO_CODECS:
        raise MediaRejected(f"This video is encoded as {codec or 'an unknown codec'}; Kiln reads "
                            f"{', '.join(VIDEO_CODECS.values())}.")
    if duration is not None and duration > MAX_VIDEO_SECONDS:
        raise MediaRejected(f"This video is {duration / 60:.0f} minutes long; at most "
                            f"{MAX_VIDEO_SECONDS // 60} minutes is accepted.")
    if frames and frames > MAX_VIDEO_FRAMES:
        raise MediaRejected(f"This video has {frames:,} frames; at most {MAX_VIDEO_FRAMES:,} are accepted.")


def _poster(frame) -> bytes:
    """A WebP poster of a decoded frame, scaled from the decoder's own format in one step."""
    scale = min(1.0, THUMBNAIL_SIDE / max(frame.width, frame.height))
    width, height = max(1, round(frame.width * scale)), max(1, round(frame.height * scale))
    return _webp_thumbnail(frame.reformat(width=width, height=height, format="rgb24",
                                          interpolation="BICUBIC").to_image())


def process(path: str | Path, sniffed: Sniffed) -> Processed:
    """Check and describe a file whose type ``sniff`` found; raises MediaRejected."""
    if sniffed.kind == "image":
        return process_image(path)
    return process_video(path)
