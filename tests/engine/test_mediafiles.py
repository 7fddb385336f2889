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
