"""Backup and restore of PostgreSQL plus the media bucket, with docs/deploy/'s scripts (pg_dump,
pg_restore, rclone) as docs/deploy.md tells an operator to run them: nothing is lost.

The installation is this test's database with media on a bucket of the S3 server (moto on
loopback); the jobs ran through the engine against the provider sandbox. After the backup the
bucket is emptied and removed, and the restore goes into a database and a bucket that are new.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile

from generations.models import InputMedia, Media, Status
from generations.services import InputSpec
from tests.generations.conftest import IMAGE, VIDEO
from tests.generations.engine.conftest import broker, drive
from tests.processes import database_url

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

SCRIPTS = Path(django_settings.BASE_DIR) / "docs" / "deploy"
PREFIX = "kiln"


@pytest.fixture
def rclone():
    path = shutil.which("rclone")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("rclone is not installed (apt-get install -y rclone): the backup test must run in CI")
        pytest.skip("needs rclone (apt-get install -y rclone)")
    return path


@pytest.fixture
def fresh_database():
    """An empty database beside the test's, dropped afterwards: where the restore goes."""
    server = database_url().rsplit("/", 1)[0]
    name = f"{os.environ['DATABASE_URL'].rsplit('/', 1)[1].split('?')[0]}_restored"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{server}/{name}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _png() -> SimpleUploadedFile:
    from generations.sandbox import media

    return SimpleUploadedFile("first.png", media.image_bytes(64, 48, "input"), "image/png")


def _objects(s3, bucket: str) -> dict[str, str]:
    """sha256 of every object in ``bucket``, by key."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            found[item["Key"]] = hashlib.sha256(body).hexdigest()
    return found


def _run(script: str, arg: Path, env: dict) -> str:
    done = subprocess.run([str(SCRIPTS / script), str(arg)], env=env, capture_output=True, text=True, timeout=600,
                          cwd=django_settings.BASE_DIR)
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_backup_then_restore_into_a_fresh_database_and_bucket_brings_back_every_job_and_media_object(
        transactional_db, s3_server, settings, make, tmp_path, fresh_database, rclone):
    bucket = s3_server.make_bucket()
    settings.STORAGES = {**settings.STORAGES, "default": s3_server.storages_default(bucket, prefix=PREFIX)}
    with broker("memory://"):
        done = [drive(make(f"a lantern, take {i}", model=IMAGE).pk) for i in range(3)]
        done.append(drive(make("waves at night", model=VIDEO, resolution="480p", duration="5").pk))
        done.append(drive(make("from this frame", operation="image-to-video", inputs=[InputSpec("first_frame", upload=_png())]).pk))
        in_flight = make("still running at backup time", model=VIDEO)
    assert [g.status for g in done] == [Status.SUCCEEDED] * 5
    s3 = s3_server.client()
    before = _objects(s3, bucket)
    rows = {f"{PREFIX}/{m.file.name}": m.sha256 for m in [*Media.objects.all(), *InputMedia.objects.all()]}
    thumbnails = [f"{PREFIX}/{m.thumbnail.name}" for m in Media.objects.exclude(thumbnail="")]
    assert len(rows) == 6 and thumbnails and set(rows) | set(thumbnails) <= set(before)
    assert all(before[key] == sha for key, sha in rows.items())

    backup = tmp_path / "backup"
    env = {**os.environ, "DATABASE_URL": database_url() + "?conn_max_age=60", **s3_server.env(bucket, PREFIX)}
    _run("kiln-backup.sh", backup, env)
    assert (backup / "kiln.dump").stat().st_size > 0

    # The disaster: every object gone, the bucket too; the restore gets a new database and a new bucket.
    for key in before:
        s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)
    new_bucket = s3_server.make_bucket()
    restored_env = {**os.environ, "DATABASE_URL": fresh_database, **s3_server.env(new_bucket, PREFIX),
                    "KILN_VAR_DIR": str(tmp_path / "var"), "PYTHON": sys.executable}
    out = _run("kiln-restore.sh", backup, restored_env)

    assert "wallet(s) match their ledger" in out  # credits verify, exit 0
    assert _objects(s3, new_bucket) == before  # every object, byte for byte (sha256), under the same keys
    with psycopg.connect(fresh_database) as conn:
        media = conn.execute("SELECT file, sha256 FROM generations_media UNION ALL "
                             "SELECT file, sha256 FROM generations_inputmedia").fetchall()
        statuses = dict(conn.execute("SELECT id, status FROM generations_generation").fetchall())
    assert {f"{PREFIX}/{name}": sha for name, sha in media} == rows
    assert statuses == {**{g.pk: Status.SUCCEEDED for g in done}, in_flight.pk: Status.QUEUED}
