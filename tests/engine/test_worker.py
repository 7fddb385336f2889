"""The real thing: a Celery worker (with beat) on Redis and PostgreSQL runs a Shark
video job to completion through the sandbox; and claims race on real connections."""

import os
import signal
import subprocess
import sys
import threading
import time
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from accounts import credits
from generations import engine
from generations.models import Generation, Status
from generations.services import create_generation
from tests.conftest import make_member
from tests.engine.conftest import VIDEO, assert_ledger_consistent, broker

pytestmark = [pytest.mark.postgres]


def _database_url() -> str:
    db = django_settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def memory_broker():
    """Transactional tests really commit, so on_commit enqueues run: keep them in memory."""
    with broker("memory://"):
        yield


@pytest.fixture
def worker(transactional_db, sandbox, settings, tmp_path):
    redis_url = os.environ["REDIS_URL"]
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    env = {
        **os.environ,
        "DATABASE_URL": _database_url() + "?conn_max_age=0",
        "CELERY_BROKER_URL": redis_url,
        "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
        "KILN_ALLOW_PRIVATE_URLS": "1",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "KILN_VAR_DIR": str(tmp_path / "var"),
        "KILN_POLL_TICK_SECONDS": "0.5",
        "SECRET_KEY": "worker-test-secret-key-" + "x" * 40,
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "project", "worker", "-B", "-Q", "default,poll,download",
         "-c", "2", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING",
         "-s", str(tmp_path / "beat-schedule")],
        cwd=django_settings.BASE_DIR, env=env, start_new_session=True)
    try:
        with broker(redis_url):
            yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.redis
def test_a_worker_runs_a_shark_video_from_the_command_line_to_a_stored_file(worker, team, sandbox, sandbox_key):
    sandbox.control(duration=2)
    make_member(team, "owner@acme.test", "owner", credits=1_000_000)
    sandbox_key(team, "shark")
    started = time.monotonic()
    out = StringIO()
    call_command("generate", "--team", "acme", "--user", "owner@acme.test", "--model", VIDEO,
                 "--prompt", "a kiln at dawn", "--param", "duration=5", "--wait", "--timeout", "45", stdout=out)
    elapsed = time.monotonic() - started

    generation = Generation.objects.get()
    assert generation.status == Status.SUCCEEDED, out.getvalue()
    media = generation.media.get()
    assert media.file.path in out.getvalue()
    assert os.path.getsize(media.file.path) == media.bytes
    assert generation.actual_cost == generation.raw_payload["credit"]
    assert sum(s["count"] for s in sandbox.jobs()["submissions"]) == 1
    assert elapsed < 40
    assert_ledger_consistent()


def test_of_many_workers_racing_to_claim_one_job_exactly_one_wins(transactional_db, memory_broker, team, sandbox, sandbox_key):
    user = make_member(team, "racer@acme.test", credits=1_000_000)
    sandbox_key(team, "shark")
    membership = user.memberships.get()
    generation = create_generation(membership=membership, provider_id="shark", model_id=VIDEO,
                                   operation="text-to-video", prompt="race")
    barrier, wins = threading.Barrier(8), []

    def claim():
        barrier.wait()
        try:
            wins.append(engine.claim_for_submit(generation.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([w for w in wins if w is not None]) == 1


def test_concurrent_poll_ticks_share_due_jobs_without_overlap(transactional_db, memory_broker, team, sandbox, sandbox_key):
    user = make_member(team, "ticks@acme.test", credits=10_000_000)
    sandbox_key(team, "shark")
    membership = user.memberships.get()
    pks = [create_generation(membership=membership, provider_id="shark", model_id=VIDEO, operation="text-to-video",
                             prompt=f"job {i}").pk for i in range(30)]
    Generation.objects.filter(pk__in=pks).update(status=Status.SUBMITTED, provider_job_id="x",
                                                 next_poll_at=timezone.now())
    barrier, claimed = threading.Barrier(4), []

    def tick():
        barrier.wait()
        try:
            claimed.append([g.pk for g in engine._claim_due(timezone.now(), 10)])
        finally:
            connection.close()

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [pk for batch in claimed for pk in batch]
    assert len(flat) == len(set(flat)) == 30
    assert credits.verify() and all(c.ok for c in credits.verify())
