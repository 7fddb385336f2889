"""Input files are checked by what they are, not what they are called."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from generations.inputs import InputRejected, check_upload
from generations.sandbox import media as sample


def upload(data: bytes, name: str = "frame.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/png")


def test_a_real_png_is_accepted_with_its_type_size_and_digest():
    data = sample.image_bytes(640, 360, "first frame")
    checked = check_upload(upload(data), role="first_frame", expected_kind="image")
    assert (checked.mime_type, checked.width, checked.height, checked.bytes) == ("image/png", 640, 360, len(data))
    assert len(checked.sha256) == 64


def test_an_html_file_named_png_is_refused():
    with pytest.raises(InputRejected, match="HTML"):
        check_upload(upload(b"<!doctype html><script>alert(1)</script>"), role="first_frame", expected_kind="image")


def test_an_empty_file_is_refused():
    with pytest.raises(InputRejected, match="empty"):
        check_upload(upload(b""), role="first_frame", expected_kind="image")


def test_a_file_above_the_upload_limit_is_refused(settings):
    settings.KILN_MAX_UPLOAD_BYTES = 10_000
    with pytest.raises(InputRejected, match="larger than"):
        check_upload(upload(sample.image_bytes(640, 360, "big") + b"\0" * 10_000), role="first_frame",
                     expected_kind="image")


def test_a_ten_thousand_pixel_image_is_refused():
    buf = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buf, "PNG")
    with pytest.raises(InputRejected, match="at most 8192x8192"):
        check_upload(upload(buf.getvalue()), role="first_frame", expected_kind="image")


def test_a_video_in_an_image_slot_is_refused():
    with pytest.raises(InputRejected, match="is a video; this slot takes an image"):
        check_upload(upload(sample.video_bytes(64, 64, "v", seconds=0.5), "clip.png"), role="first_frame",
                     expected_kind="image")
