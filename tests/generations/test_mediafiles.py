"""Media checks: the type comes from the bytes, thumbnails and posters are real, bombs are refused."""

import io

import pytest
from PIL import Image

from generations import mediafiles
from generations.mediafiles import MediaRejected
from generations.sandbox import media as sample


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("fmt", "mime"), [("png", "image/png"), ("jpeg", "image/jpeg"), ("webp", "image/webp")])
def test_it_recognises_images_by_their_first_bytes(fmt, mime):
    assert mediafiles.sniff(sample.image_bytes(64, 48, "x", fmt=fmt)[:64]).mime_type == mime


def test_it_recognises_an_mp4_by_its_ftyp_box():
    sniffed = mediafiles.sniff(sample.video_bytes(64, 48, "x", seconds=0.5)[:64])
    assert (sniffed.mime_type, sniffed.kind, sniffed.ext) == ("video/mp4", "video", "mp4")


@pytest.mark.parametrize("head", [b"<!DOCTYPE html><html>", b"", b"PK\x03\x04zipzip", b'{"error": "no"}', b"\x00" * 64])
def test_it_refuses_anything_that_is_not_media(head):
    assert mediafiles.sniff(head) is None


def test_an_html_page_is_described_as_such_in_messages():
    assert mediafiles.describe_head(b"<html><body>") == "an HTML/XML document"


def test_an_image_gets_a_bounded_webp_thumbnail_and_its_size(tmp_path):
    path = _write(tmp_path, "a.png", sample.image_bytes(1024, 768, "thumb"))
    processed = mediafiles.process(path, mediafiles.sniff_file(path))
    assert (processed.width, processed.height, processed.duration) == (1024, 768, None)
    with Image.open(io.BytesIO(processed.thumbnail)) as thumb:
        assert thumb.format == "WEBP"
        assert max(thumb.size) == mediafiles.THUMBNAIL_SIDE


def test_a_video_gets_a_poster_frame_and_its_size_and_duration(tmp_path):
    path = _write(tmp_path, "v.mp4", sample.video_bytes(320, 240, "poster", seconds=1.0))
    processed = mediafiles.process(path, mediafiles.sniff_file(path))
    assert (processed.width, processed.height) == (320, 240)
    assert processed.duration == pytest.approx(1.0, abs=0.2)
    with Image.open(io.BytesIO(processed.thumbnail)) as poster:
        assert poster.format == "WEBP"
        assert poster.size == (320, 240)


def test_a_decompression_bomb_is_refused_before_it_is_decoded(tmp_path):
    # 20000 x 20000 pixels of one colour compress to a few hundred kilobytes.
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, "PNG")
    path = _write(tmp_path, "bomb.png", buf.getvalue())
    with pytest.raises(MediaRejected, match=r"too large|at most 8192x8192"):
        mediafiles.process(path, mediafiles.sniff_file(path))


def test_a_truncated_image_is_refused(tmp_path):
    data = sample.image_bytes(256, 256, "cut")
    path = _write(tmp_path, "cut.png", data[: len(data) // 2])
    with pytest.raises(MediaRejected, match=r"damaged or incomplete|cannot be read"):
        mediafiles.process(path, mediafiles.sniff_file(path))


def test_an_mp4_header_with_garbage_behind_it_is_refused(tmp_path):
    path = _write(tmp_path, "fake.mp4", b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 4000)
    with pytest.raises(MediaRejected, match="video"):
        mediafiles.process(path, mediafiles.sniff_file(path))


# -- videos are checked from what their container declares, before a frame is decoded --------

PEAK_PROBE = """
import sys
from generations import mediafiles

def peak():
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM:"))

import av  # loaded before the baseline: the probe's cost is what it decodes, not the library
before = peak()
try:
    mediafiles.process_video(sys.argv[1])
    print("accepted")
except mediafiles.MediaRejected as exc:
    print(exc)
print(peak() - before)
"""


def _probe_in_a_child(path) -> tuple[str, int]:
    """Probe ``path`` in a fresh process; its answer and how much its peak memory grew."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", PEAK_PROBE, str(path)], cwd=root, capture_output=True, text=True,
                         timeout=120, check=True).stdout.splitlines()
    return out[-2], int(out[-1])


def test_a_12000x12000_video_is_refused_without_decoding_a_frame(tmp_path):
    """The 1.7 MB Motion JPEG .mov of the report: decoding its first frame took 1.9 GB before
    its size was looked at. Now its declared size refuses it, and the probe's peak memory
    grows by a few megabytes."""
    path = _write(tmp_path, "bomb.mov", sample.mjpeg_mov(12000))
    assert mediafiles.sniff_file(path).mime_type == "video/quicktime"
    said, grew = _probe_in_a_child(path)
    assert "at most 8192x8192 is accepted" in said
    assert grew < 64 * 1024 * 1024, f"the probe grew by {grew / 2**20:.0f} MB"
    small, _ = _probe_in_a_child(_write(tmp_path, "small.mov", sample.mjpeg_mov(256)))
    assert small == "accepted"  # the same kind of file at a sane size is read, poster and all


@pytest.mark.parametrize(("video", "words"), [
    (lambda: sample.mjpeg_mov(64, codec="mpeg2video"), "encoded as mpeg2video; Kiln reads H.264, H.265"),
    (lambda: sample.mjpeg_mov(64, frames=2, seconds_apart=700), "12 minutes long; at most 10 minutes"),
])
def test_a_video_kiln_will_not_decode_is_refused_by_what_it_declares(tmp_path, video, words):
    path = _write(tmp_path, "v.mov", video())
    with pytest.raises(MediaRejected, match=words):
        mediafiles.process(path, mediafiles.sniff_file(path))


def test_too_many_frames_are_refused_from_the_declared_count():
    mediafiles.check_video(1920, 1080, "h264", 60.0, 72_000)
    with pytest.raises(MediaRejected, match="72,001 frames; at most 72,000"):
        mediafiles.check_video(1920, 1080, "h264", 60.0, 72_001)


def test_a_motion_jpeg_mov_of_a_sane_size_gets_its_poster(tmp_path):
    path = _write(tmp_path, "grey.mov", sample.mjpeg_mov(1024, frames=3))
    processed = mediafiles.process(path, mediafiles.sniff_file(path))
    assert (processed.width, processed.height, processed.duration) == (1024, 1024, 3.0)
    with Image.open(io.BytesIO(processed.thumbnail)) as poster:
        assert poster.size == (mediafiles.THUMBNAIL_SIDE, mediafiles.THUMBNAIL_SIDE)
        assert poster.convert("L").getextrema() == (128, 128)  # the grey the file holds


@pytest.mark.parametrize("size", [(322, 578), (578, 322)])  # portrait and landscape, sides not multiples of 16
@pytest.mark.parametrize(("container", "encoder"), [
    ("mp4", "libx264"), ("mp4", "libx265"), ("webm", "libvpx"), ("webm", "libvpx-vp9"), ("mp4", "libsvtav1"),
    ("mp4", "mpeg4"), ("mov", "mjpeg"),
])
def test_every_accepted_codec_is_read_whatever_its_shape(tmp_path, container, encoder, size):
    """The decoder's pixel limit leaves room for its aligned picture, and a codec is named by
    its format ("av1"), not by whichever decoder FFmpeg picks ("libdav1d")."""
    import av

    try:
        av.codec.Codec(encoder, "w")
    except av.codec.codec.UnknownCodecError:
        pytest.skip(f"this FFmpeg has no {encoder} encoder")
    path = tmp_path / f"clip.{container}"
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(encoder, rate=10)
        stream.width, stream.height = size
        stream.pix_fmt = "yuvj420p" if encoder == "mjpeg" else "yuv420p"
        for index in range(5):
            for packet in stream.encode(av.VideoFrame.from_image(Image.new("RGB", size, (40 * index, 90, 200)))):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    processed = mediafiles.process(path, mediafiles.sniff_file(path))
    assert (processed.width, processed.height) == size
    with Image.open(io.BytesIO(processed.thumbnail)) as poster:
        assert max(poster.size) == min(mediafiles.THUMBNAIL_SIDE, max(size))
