"""Media on S3 (generations/storage.py) against a real S3 API server on loopback (moto).

What the shared media tests (the ``media`` marker) cannot see: that reads stream (ranged
GETs, not the whole object first), that a broken bucket is an operator's clear error and a
member's plain 503, that links to inputs and shares end when they say, that object names do
not let one team's media be found from another's, and that settings refuse a half-configured
bucket. The GETs are counted with botocore's event hooks on the real client (they observe
the requests Kiln sends; nothing is mocked).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import subprocess
import sys
import tracemalloc
import uuid

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from accounts.models import Membership
from generations.engine.download import download
from generations.models import Generation, InputMedia, Kind, Status
from generations.services import InputSpec
from generations.share.services import create_share, revoke
from generations.storage import READ_BUFFER, S3MediaStorage
from generations.storage_errors import StorageUnavailable
from project.env import envmediastorage
from tests.generations.engine.conftest import drive
from tests.generations.gallery.conftest import add_media, make_generation, png_bytes
from tests.s3 import MotoServer

pytestmark = [pytest.mark.s3]
MB = 1024 * 1024


@pytest.fixture
def s3(media_backend):
    """This test's bucket (the ``s3`` variant of ``media_backend`` only)."""
    return default_storage


@pytest.fixture
def gets(s3):
    """The GetObject requests this thread's client sends, as their Range headers."""
    seen: list[str] = []
    client = s3.connection.meta.client

    def record(params, **kwargs):
        seen.append(params["headers"].get("Range", ""))  # the request as it goes on the wire

    client.meta.events.register("before-call.s3.GetObject", record)
    yield seen
    client.meta.events.unregister("before-call.s3.GetObject", record)


def _big_video(team, owner, size: int) -> Generation:
    """A finished video result whose file is ``size`` bytes (its content does not matter to serving)."""
    generation = make_generation(team, owner, kind=Kind.VIDEO, model="alibaba/wan-2.7", prompt="a long take")
    media = add_media(generation)
    content = os.urandom(size)
    media.file.save("0.mp4", ContentFile(content))
    media.bytes, media.sha256 = size, hashlib.sha256(content).hexdigest()
    media.save()
    return generation


only_s3 = pytest.mark.parametrize("media_backend", ["s3"], indirect=True)


# -- reads stream --------------------------------------------------------------------------


@only_s3
def test_reading_a_file_is_one_ranged_get_in_a_bounded_buffer(s3, gets):
    content = os.urandom(24 * MB)
    name = s3.save("streams/big.bin", ContentFile(content))
    digest, total = hashlib.sha256(), 0
    tracemalloc.start()
    try:
        with s3.open(name, "rb") as fh:
            while data := fh.read(READ_BUFFER):
                digest.update(data)
                total += len(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (total, digest.hexdigest()) == (len(content), hashlib.sha256(content).hexdigest())
    assert gets == ["bytes=0-"]  # one GET for the whole sequential run
    # django-storages' S3File would have held all 24 MiB before the first byte came back.
    assert peak < 3 * MB, f"peak {peak / MB:.1f} MiB"


@only_s3
def test_a_seek_starts_a_new_ranged_get_and_reads_only_from_there(s3, gets):
    content = os.urandom(3 * MB)
    name = s3.save("streams/seek.bin", ContentFile(content))
    with s3.open(name, "rb") as fh:
        assert fh.size == len(content)
        assert fh.read(10) == content[:10]
        fh.seek(2 * MB)
        assert fh.read(10) == content[2 * MB:2 * MB + 10]
        fh.seek(-5, io.SEEK_END)
        assert fh.read() == content[-5:]
    assert gets == ["bytes=0-", f"bytes={2 * MB}-", f"bytes={len(content) - 5}-"]


@only_s3
def test_a_range_request_for_the_end_of_a_large_video_fetches_from_there_only(owner_client, team, owner, gets):
    generation = _big_video(team, owner, 20 * MB)
    media = generation.media.get()
    url = reverse("generations:media", args=[media.public_id])

    response = owner_client.get(url, HTTP_RANGE="bytes=-1000")

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {20 * MB - 1000}-{20 * MB - 1}/{20 * MB}"
    body = b"".join(response.streaming_content)
    with media.file.open("rb") as fh:
        fh.seek(20 * MB - 1000)
        assert body == fh.read()
    assert gets[0] == f"bytes={20 * MB - 1000}-"
    assert owner_client.get(url, HTTP_RANGE=f"bytes={20 * MB}-").status_code == 416


@only_s3
def test_an_object_replaced_while_it_is_read_fails_instead_of_splicing_two_versions(s3):
    name = s3.save("streams/replaced.bin", ContentFile(b"a" * (2 * MB)))
    with s3.open(name, "rb") as fh:
        assert fh.read(10) == b"a" * 10
        s3.connection.meta.client.put_object(Bucket=s3.bucket_name, Key=f"kiln/{name}", Body=b"b" * (2 * MB))
        fh.seek(MB)
        with pytest.raises(OSError, match="replaced"):
            fh.read(10)


@only_s3
def test_uploads_are_multipart_in_parts_of_bounded_size(s3):
    config = s3.transfer_config
    assert (config.multipart_chunksize, config.max_request_concurrency, config.max_in_memory_upload_chunks) == (
        8 * MB, 2, 2)
    content = os.urandom(20 * MB)
    name = s3.save("uploads/big.bin", ContentFile(content))
    head = s3.connection.meta.client.head_object(Bucket=s3.bucket_name, Key=f"kiln/{name}")
    assert head["ETag"].strip('"').endswith("-3")  # three parts: 8 + 8 + 4 MiB
    with s3.open(name) as fh:
        assert hashlib.sha256(fh.read()).digest() == hashlib.sha256(content).digest()


# -- the media marker ----------------------------------------------------------------------


@pytest.mark.media
def test_the_s3_variant_of_a_media_test_keeps_its_files_in_a_bucket(request, s3_server):
    # A media test that asks for no storage fixture of its own (most of them) still runs on S3.
    name = default_storage.save(f"marker/{uuid.uuid4().hex}.txt", ContentFile(b"where am I"))
    buckets = [b["Name"] for b in s3_server.client().list_buckets()["Buckets"]]
    in_a_bucket = any(s3_server.client().list_objects_v2(Bucket=b, Prefix=f"kiln/{name}").get("KeyCount")
                      for b in buckets)
    assert in_a_bucket == (request.node.callspec.params["media_backend"] == "s3")


# -- a broken bucket -----------------------------------------------------------------------


@pytest.fixture
def missing_bucket(media_backend, settings, s3_server):
    """The storage pointed at a bucket that does not exist (a typo in KILN_S3_BUCKET)."""
    def point():
        default = s3_server.storages_default(f"no-such-{uuid.uuid4().hex[:8]}", "kiln")
        settings.STORAGES = {**settings.STORAGES, "default": default}
    return point


@only_s3
def test_a_missing_bucket_is_a_503_for_the_member_and_a_clear_error_for_the_operator(
        owner_client, team, owner, missing_bucket, caplog):
    generation = make_generation(team, owner)
    media = add_media(generation)
    missing_bucket()

    with caplog.at_level(logging.ERROR, logger="generations.storage"):
        page = owner_client.get(reverse("generations:media", args=[media.public_id]))

    assert page.status_code == 503
    text = page.content.decode()
    assert "media storage" in text and "Traceback" not in text and "no-such-" not in text
    assert page["Retry-After"] == "60"
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "KILN_S3_BUCKET" in logged and "does not exist" in logged


@only_s3
def test_the_api_answers_a_503_problem_when_the_bucket_is_gone(client, team, owner, missing_bucket, settings):
    from accounts.tokens.services import create_token

    generation = make_generation(team, owner)
    media = add_media(generation)
    _, secret = create_token(Membership.objects.get(user=owner, team=team), name="script", scopes=("read",))
    missing_bucket()

    answer = client.get(f"/api/v1/media/{media.public_id}/download", HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert answer.status_code == 503
    assert answer["Content-Type"] == "application/problem+json"
    assert answer.json()["type"].endswith("/storage-unavailable")


@pytest.fixture(scope="module")
def strict_s3():
    """A second S3 server that checks credentials (moto's IAM enforcement), for wrong keys."""
    with MotoServer(enforce_auth=True) as server:
        yield server


@only_s3
def test_wrong_credentials_name_the_variables_to_check(media_backend, settings, strict_s3, owner_client, team, owner, caplog):
    generation = make_generation(team, owner)
    media = add_media(generation)  # stored in this test's bucket, then the keys go wrong
    settings.STORAGES = {**settings.STORAGES, "default": strict_s3.storages_default("kiln-media", "kiln")}

    with caplog.at_level(logging.ERROR, logger="generations.storage"):
        page = owner_client.get(reverse("generations:download", args=[media.public_id]))

    assert page.status_code == 503
    assert "KILN_S3_ACCESS_KEY_ID" in " ".join(r.getMessage() for r in caplog.records)


def test_an_endpoint_that_does_not_answer_fails_in_seconds_with_the_variable_to_check(s3_server):
    options = {**s3_server.storages_default("kiln-media")["OPTIONS"], "endpoint_url": "http://127.0.0.1:9"}
    with pytest.raises(StorageUnavailable, match="KILN_S3_ENDPOINT_URL"):
        S3MediaStorage(**options).size("anything")


@only_s3
@pytest.mark.postgres
def test_a_download_into_a_missing_bucket_is_retried_not_failed(make, missing_bucket, caplog):
    generation = drive(make(model="openai/gpt-image-2").pk, until={Status.DOWNLOADING})
    missing_bucket()

    with caplog.at_level(logging.ERROR):
        assert download(generation.pk) == "retrying"

    generation.refresh_from_db()
    assert (generation.status, generation.error_count, generation.needs_review) == (Status.DOWNLOADING, 1, False)
    assert "KILN_S3_BUCKET" in " ".join(r.getMessage() for r in caplog.records)


@only_s3
def test_a_submit_that_cannot_read_its_inputs_gives_its_claim_back_and_tries_again(make, missing_bucket, caplog):
    # Nothing was sent: the job must not wait out the submit lease and end "lost", held for review.
    from generations.engine.submit import submit

    upload = ContentFile(png_bytes(), name="frame.png")
    generation = make(operation="image-to-video", inputs=[InputSpec("first_frame", upload=upload)])
    missing_bucket()

    with caplog.at_level(logging.ERROR):
        assert submit(generation.pk) == "retrying"

    generation.refresh_from_db()
    assert (generation.status, generation.claimed_at, generation.needs_review) == (Status.QUEUED, None, False)
    assert generation.provider_job_id == "" and generation.error_count == 1
    assert "KILN_S3_BUCKET" in " ".join(r.getMessage() for r in caplog.records)


# -- links that end ------------------------------------------------------------------------


@only_s3
def test_a_revoked_share_stops_serving_at_the_next_request_even_mid_video(s3, client, team, owner):
    generation = _big_video(team, owner, 4 * MB)
    membership = Membership.objects.get(user=owner, team=team)
    share, token = create_share(membership, [generation])
    media = generation.media.get()
    url = reverse("generations:share_media", args=[token, media.public_id])

    first = client.get(url, HTTP_RANGE="bytes=0-1023")
    assert first.status_code == 206 and first["Cache-Control"] == "no-store"
    assert len(b"".join(first.streaming_content)) == 1024
    # Nothing on the share page points at the bucket: every byte goes through Kiln's check.
    page = client.get(reverse("generations:share_public", args=[token])).content.decode()
    assert "X-Amz-" not in page and django_settings.STORAGES["default"]["OPTIONS"]["endpoint_url"] not in page

    revoke(share, membership)

    assert client.get(url, HTTP_RANGE="bytes=1024-").status_code == 410


@only_s3
def test_an_input_link_past_its_lifetime_is_a_404(s3, client, make, settings, monkeypatch):
    from generations.engine import submit

    settings.KILN_PUBLIC_URL = "https://kiln.example.com"
    upload = ContentFile(png_bytes(), name="frame.png")
    generation = make(operation="image-to-video", inputs=[InputSpec("first_frame", upload=upload)])
    url = reverse("generations:input_file", args=[submit.input_token(generation.inputs.get())])
    assert client.get(url).status_code == 200

    monkeypatch.setattr(submit, "INPUT_URL_MAX_AGE", -1)  # every token is now older than its lifetime

    assert client.get(url).status_code == 404


# -- isolation -----------------------------------------------------------------------------


@only_s3
def test_object_names_carry_random_ids_and_nothing_of_one_team_names_anothers(
        s3, team, owner, other_team, outsider, make, outsider_client):
    ours = make_generation(team, owner)
    theirs = make_generation(other_team, outsider)
    mine, other = add_media(ours), add_media(theirs)
    upload = ContentFile(png_bytes(), name="frame.png")
    item = make(operation="image-to-video", inputs=[InputSpec("first_frame", upload=upload)]).inputs.get()

    for team_, generation, media in ((team, ours, mine), (other_team, theirs, other)):
        assert media.file.name == f"media/{team_.public_id}/{generation.public_id}/0.png"
    team_dir, name = item.file.name.rsplit("/", 1)
    assert team_dir == f"inputs/{team.public_id}"
    # Version-4 UUIDs (122 random bits) for the team and the generation, and for an input's name.
    assert {team.public_id.version, other_team.public_id.version, ours.public_id.version} == {4}
    assert uuid.UUID(name.split(".")[0]).version == 4
    # Only the team's own media under its prefix, and the other team's media id opens nothing.
    _, listed = s3.listdir(f"media/{team.public_id}/{ours.public_id}")
    assert sorted(listed) == sorted(n.rsplit("/", 1)[1] for n in (mine.file.name, mine.thumbnail.name))
    assert outsider_client.get(reverse("generations:media", args=[mine.public_id])).status_code == 404
    assert InputMedia.objects.filter(generation__team=other_team).count() == 0


@only_s3
def test_a_name_cannot_climb_out_of_the_prefix(s3):
    from django.core.exceptions import SuspiciousOperation

    with pytest.raises(SuspiciousOperation):
        s3.open("../../etc/passwd")


# -- settings ------------------------------------------------------------------------------


def test_s3_without_a_bucket_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("KILN_MEDIA_STORAGE", "s3")
    monkeypatch.delenv("KILN_S3_BUCKET", raising=False)
    with pytest.raises(ImproperlyConfigured, match="KILN_S3_BUCKET"):
        envmediastorage("KILN_MEDIA_STORAGE")


def test_a_process_started_with_s3_and_no_bucket_stops_before_serving(tmp_path):
    env = {**os.environ, "KILN_MEDIA_STORAGE": "s3", "KILN_S3_BUCKET": "", "KILN_VAR_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=django_settings.BASE_DIR, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "KILN_MEDIA_STORAGE=s3 needs KILN_S3_BUCKET" in done.stderr


def test_an_endpoint_that_is_not_a_url_is_refused(monkeypatch):
    monkeypatch.setenv("KILN_MEDIA_STORAGE", "s3")
    monkeypatch.setenv("KILN_S3_BUCKET", "media")
    monkeypatch.setenv("KILN_S3_ENDPOINT_URL", "minio:9000")
    with pytest.raises(ImproperlyConfigured, match="KILN_S3_ENDPOINT_URL"):
        envmediastorage("KILN_MEDIA_STORAGE")


def test_an_addressing_style_that_is_not_one_is_refused(monkeypatch):
    # botocore refuses it only when the storage is first used: every media request would be a 500.
    monkeypatch.setenv("KILN_MEDIA_STORAGE", "s3")
    monkeypatch.setenv("KILN_S3_BUCKET", "media")
    monkeypatch.setenv("KILN_S3_ADDRESSING_STYLE", "pth")
    with pytest.raises(ImproperlyConfigured, match="KILN_S3_ADDRESSING_STYLE"):
        envmediastorage("KILN_MEDIA_STORAGE")
