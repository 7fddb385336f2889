"""Real media for the sandboxes: a PNG/JPEG/WebP image (Pillow) and an H.264 MP4 (PyAV).

Everything is cached by its parameters, small, and fast to make (well under a
second): the sandbox answers like a CDN serving a finished result.

- ``image_bytes(width, height, text="", fmt="png", variant=0) -> bytes``: a soft
  diagonal gradient with the first words of ``text`` drawn on it. ``fmt``: png,
  jpeg, webp. ``variant`` (the n-th image of a request) changes the colours, so
  the images of one request differ.
- ``video_bytes(width, height, text="", seconds=2.0, fps=12, variant=0) -> bytes``: an MP4
  (libx264, yuv420p, +faststart) whose gradient drifts frame by frame, so
  seeking shows change.
- ``big_mp4_prefix() -> bytes``: a valid ``ftyp`` box, for padded big files.
- ``mjpeg_mov(side, frames=1, seconds_apart=1, codec="mjpeg") -> bytes``: a QuickTime file of
  grey Motion JPEG frames ``side`` pixels square, written without an encoder (the JPEG
  is put together by hand), so a 12000x12000 "bomb" costs 1.7 MB and a tenth of a second
  to make, and as much as any real one to decode.
- ``CONTENT_TYPES``: file extension -> MIME type.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
import zlib
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

CONTENT_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "mp4": "video/mp4",
}

MAX_SIDE = 4096


def _palette(text: str, variant: int = 0) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Two pleasant colours picked from the text (and variant), so different prompts look different."""
    seed = zlib.crc32(text.encode()) + variant
    palettes = [
        ((255, 154, 139), (255, 106, 136)),   # coral
        ((120, 115, 245), (236, 119, 171)),   # violet to pink
        ((67, 206, 162), (24, 90, 157)),      # sea
        ((252, 203, 144), (213, 126, 235)),   # peach
        ((161, 196, 253), (194, 233, 251)),   # sky
        ((246, 211, 101), (253, 160, 133)),   # sunset
    ]
    return palettes[seed % len(palettes)]


def _gradient(width: int, height: int, text: str, variant: int = 0) -> Image.Image:
    start, end = _palette(text, variant)
    # A 256-step diagonal ramp (vertical and horizontal ramps blended), scaled up: cheap at any size.
    vertical = Image.linear_gradient("L")
    ramp = Image.blend(vertical, vertical.transpose(Image.Transpose.ROTATE_90), 0.5)
    ramp = ramp.resize((width, height), Image.Resampling.BILINEAR)
    base = Image.new("RGB", (width, height), start)
    top = Image.new("RGB", (width, height), end)
    return Image.composite(top, base, ramp)


def _words(text: str, count: int = 5) -> str:
    words = " ".join(text.split()[:count])
    return words[:60]


def _draw_text(image: Image.Image, text: str) -> None:
    words = _words(text)
    if not words:
        return
    draw = ImageDraw.Draw(image)
    size = max(12, min(image.width, image.height) // 14)
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # very old Pillow
        font = ImageFont.load_default()
    box = draw.textbbox((0, 0), words, font=font)
    x = max(8, (image.width - (box[2] - box[0])) // 2)
    y = max(8, image.height - (box[3] - box[1]) - size)
    draw.text((x + 2, y + 2), words, font=font, fill=(0, 0, 0))
    draw.text((x, y), words, font=font, fill=(255, 255, 255))


def _check_size(width: int, height: int) -> tuple[int, int]:
    width, height = int(width), int(height)
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise ValueError(f"unsupported size {width}x{height}")
    return width, height


@lru_cache(maxsize=64)
def image_bytes(width: int, height: int, text: str = "", fmt: str = "png", variant: int = 0) -> bytes:
    width, height = _check_size(width, height)
    fmt = fmt.lower()
    image = _gradient(width, height, text, variant)
    _draw_text(image, f"{text} #{variant + 1}" if variant else text)
    out = io.BytesIO()
    if fmt == "png":
        image.save(out, "PNG", compress_level=1)
    elif fmt in ("jpeg", "jpg"):
        image.save(out, "JPEG", quality=85)
    elif fmt == "webp":
        image.save(out, "WEBP", quality=80, method=0)
    else:
        raise ValueError(f"unsupported image format {fmt!r}")
    return out.getvalue()


@lru_cache(maxsize=32)
def video_bytes(width: int, height: int, text: str = "", seconds: float = 2.0, fps: int = 12,
                variant: int = 0) -> bytes:
    width, height = _check_size(width, height)
    # yuv420p needs even sides.
    width, height = width - width % 2, height - height % 2
    frames = max(1, round(seconds * fps))
    # One wide gradient, cropped at a moving offset: a slow pan.
    wide = _gradient(width * 2, height, text, variant)
    # faststart rewrites the file (moov first), which needs a real file, not BytesIO.
    with tempfile.TemporaryDirectory(prefix="kiln-sandbox-") as tmp:
        path = os.path.join(tmp, "video.mp4")
        _encode(path, wide, text, width, height, frames, fps)
        with open(path, "rb") as fh:
            return fh.read()


def _encode(path: str, wide: Image.Image, text: str, width: int, height: int, frames: int, fps: int) -> None:
    import av

    with av.open(path, mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "30"}
        for index in range(frames):
            left = int(width * index / max(1, frames))
            picture = wide.crop((left, 0, left + width, height))
            _draw_text(picture, text)
            frame = av.VideoFrame.from_image(picture)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def big_mp4_prefix() -> bytes:
    """An ``ftyp`` box: enough for a magic-byte check to call the file an MP4."""
    brands = b"isom" + struct.pack(">I", 512) + b"isomiso2avc1mp41"
    return struct.pack(">I", 8 + len(brands)) + b"ftyp" + brands


def _jpeg_segments(jpeg: bytes) -> dict[int, list[bytes]]:
    """The marker segments of a baseline JPEG, up to its scan, by marker."""
    segments: dict[int, list[bytes]] = {}
    at = 2
    while jpeg[at + 1] != 0xDA:
        length = struct.unpack(">H", jpeg[at + 2:at + 4])[0]
        segments.setdefault(jpeg[at + 1], []).append(jpeg[at:at + 2 + length])
        at += 2 + length
    return segments


@lru_cache(maxsize=4)
def grey_jpeg(side: int) -> bytes:
    """A baseline greyscale JPEG, ``side`` (a multiple of 32) pixels square, all mid-grey.

    Pillow's own quantisation and (standard) Huffman tables, and a scan written by hand:
    every 8x8 block is "DC difference 0" (code 00) then "end of block" (code 1010), four
    blocks to three bytes. A decoder still has to fill every pixel."""
    if side % 32:
        raise ValueError("side must be a multiple of 32")
    small = io.BytesIO()
    Image.new("L", (8, 8), 128).save(small, "JPEG", quality=75)
    segments = _jpeg_segments(small.getvalue())
    frame = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, side, side, 1) + b"\x01\x11\x00"
    scan = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00" + b"\x00\x3f\x00"
    entropy = b"\x28\xa2\x8a" * ((side // 8) ** 2 // 4)
    return b"\xff\xd8" + b"".join(segments[0xDB]) + frame + b"".join(segments[0xC4]) + scan + entropy + b"\xff\xd9"


def mjpeg_mov(side: int, frames: int = 1, seconds_apart: int = 1, codec: str = "mjpeg") -> bytes:
    """A QuickTime file of ``frames`` grey JPEG pictures ``seconds_apart`` seconds apart, muxed
    as they are (no encoder runs). ``codec`` is what the container says they are."""
    from fractions import Fraction

    import av

    picture = grey_jpeg(side)
    out = io.BytesIO()
    with av.open(out, mode="w", format="mov") as container:
        stream = container.add_stream(codec, rate=1)
        stream.width = stream.height = side
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        for index in range(frames):
            packet = av.Packet(picture)
            packet.stream = stream
            packet.pts = packet.dts = index * seconds_apart
            packet.time_base = Fraction(1, 1)
            packet.is_keyframe = True
            container.mux(packet)
    return out.getvalue()
