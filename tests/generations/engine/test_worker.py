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

from accounts.credits import services as credits
from generations.engine.poll import _claim_due
from generations.engine.submit import claim_for_submit
from generations.models import Generation, Status
from generations.services import create_generation
from tests.conftest import make_member
from tests.generations.engine.conftest import VIDEO, assert_ledger_consistent, broker
from tests.processes import database_url

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def memory_broker():
    """Transactional tests really commit, so on_commit enqueues run: keep them in memory."""
    with broker("memory://"):
        yield


def _start_worker(settings, tmp_path, *, beat: bool = True, broker_url: str | None = None):
    """A worker process on PostgreSQL and ``broker_url`` (default: the Redis of REDIS_URL;
    "" for the embedded filesystem broker under ``tmp_path``/var, as ``make run`` has)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url() + "?conn_max_age=0",
        "CELERY_BROKER_URL": os.environ["REDIS_URL"] if broker_url is None else broker_url,
        "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
        "KILN_ALLOW_PRIVATE_URLS": "1",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "KILN_VAR_DIR": str(tmp_path / "var"),
        "KILN_POLL_TICK_SECONDS": "0.5",
        "SECRET_KEY": "worker-test-secret-key-" + "x" * 40,
        "LOG_LEVEL": "WARNING",
    }
    if not env["CELERY_BROKER_URL"]:
        del env["CELERY_BROKER_URL"]
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "project", "worker", *(["-B"] if beat else []),
         "-Q", "default,poll,download,webhooks", "-c", "2", "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-l", "WARNING", "-s", str(tmp_path / "beat-schedule")],
        cwd=django_settings.BASE_DIR, env=env, start_new_session=True)


def _stop(process) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture
def worker(transactional_db, sandbox, settings, tmp_path):
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    process = _start_worker(settings, tmp_path)
    try:
        with broker(os.environ["REDIS_URL"]):
            yield process
    finally:
        _stop(process)


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
            wins.append(claim_for_submit(generation.pk))
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
            claimed.append([g.pk for g in _claim_due(timezone.now(), 10)])
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


def _filesystem_broker(tmp_path) -> dict:
    """The transport options ``make run``'s embedded broker has under KILN_VAR_DIR (project/settings.py)."""
    folders = {name: tmp_path / "var" / "broker" / sub for name, sub in
               (("data_folder_in", "queue"), ("data_folder_out", "queue"), ("processed_folder", "processed"),
                ("control_folder", "control"))}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {**{name: str(folder) for name, folder in folders.items()}, "store_processed": False}


def test_poll_ticks_left_in_the_queue_are_dropped_so_a_submit_does_not_wait_behind_them(
        transactional_db, team, sandbox, sandbox_key, settings, tmp_path):
    """The beat sends a tick a second whether or not the workers keep up. A tick that waited
    longer than a tick is worth nothing (the next one polls all that is due), so it expires:
    a backlog (workers held by slow provider calls, or the embedded broker's one-second
    fetch cycle) is thrown away on arrival instead of being worked through ahead of new
    jobs' submits. On the embedded filesystem broker that ``make run`` uses."""
    from project.celery import app
    from tests.brokers import use_broker

    user = make_member(team, "owner@acme.test", "owner", credits=1_000_000)
    sandbox_key(team, "shark")
    app.finalize(auto=True)  # the beat schedule is built then
    tick = next(e for e in app.conf.beat_schedule.values() if e["task"] == "generations.tasks.poll_due")
    with use_broker("filesystem://", _filesystem_broker(tmp_path)):
        for _ in range(100):  # ticks the beat sent while the workers were busy
            app.send_task(tick["task"], **tick["options"])
        time.sleep(settings.KILN_POLL_TICK_SECONDS + 0.5)
        generation = create_generation(membership=user.memberships.get(team=team), provider_id="shark",
                                       model_id=VIDEO, operation="text-to-video", prompt="a kiln at dawn",
                                       params={"duration": 5})
        process = _start_worker(settings, tmp_path, beat=False, broker_url="")
        try:
            started = time.monotonic()
            while time.monotonic() - started < 120:
                generation.refresh_from_db()
                if generation.status != Status.QUEUED:
                    break
                time.sleep(0.1)
            waited = time.monotonic() - started
        finally:
            _stop(process)
    assert generation.status == Status.SUBMITTED, generation.error
    assert waited < 15, f"the submit waited {waited:.1f} s behind old ticks"


def test_the_embedded_broker_hands_a_burst_of_submits_to_the_workers_without_a_second_s_pause_each(
        transactional_db, team, sandbox, sandbox_key, settings, tmp_path):
    """kombu's filesystem transport looks for messages once a second when its workers are
    busy; at that rate a worker took about one message a second, so ``make run`` fell behind
    its own beat. It looks every 0.1 s now: 20 submits go out in a few seconds, not 10+."""
    from tests.brokers import use_broker

    user = make_member(team, "owner@acme.test", "owner", credits=1_000_000)
    sandbox_key(team, "shark")
    with use_broker("filesystem://", _filesystem_broker(tmp_path)):
        jobs = [create_generation(membership=user.memberships.get(team=team), provider_id="shark", model_id=VIDEO,
                                  operation="text-to-video", prompt=f"kiln {n}", params={"duration": 5})
                for n in range(20)]
        process = _start_worker(settings, tmp_path, beat=False, broker_url="")
        left = {g.pk: None for g in jobs}
        try:
            deadline = time.monotonic() + 90
            while any(t is None for t in left.values()) and time.monotonic() < deadline:
                for pk in Generation.objects.filter(pk__in=left).exclude(status=Status.QUEUED).values_list(
                        "pk", flat=True):
                    left[pk] = left[pk] or time.monotonic()
                time.sleep(0.05)
        finally:
            _stop(process)
    assert all(left.values()), "some submits never went out"
    spread = max(left.values()) - min(left.values())
    assert spread < 5, f"20 submits took {spread:.1f} s to go out"
