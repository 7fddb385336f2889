"""Process faults with real Celery workers on PostgreSQL and a private Redis broker.

A worker process (``celery -A project worker -B``) runs Shark jobs against the
sandbox. The test SIGKILLs it while it sends a job, while it polls, while it
downloads; stops and restarts the broker (which comes back empty: every
queued message is gone); and drops the worker's database connections. Then a
new worker and the periodic sweep (``requeue_stuck``) recover, and
``fault_report`` checks: every job terminal, none sent twice, every file whole
(sha256 of the stored file == Media.sha256 == the sandbox's bytes) and stored
once, and the ledger exact.

Leases are minutes long in production (a killed poll is retried after
``poll.POLL_LEASE``, a killed download after ``download.DOWNLOAD_LEASE``); ``jump_clock``
stands in for that wait: it makes the leased rows due and runs the sweep as it
would run a few minutes later.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from generations.engine.recovery import requeue_stuck
from generations.models import IN_FLIGHT, TERMINAL, Generation, Status
from generations.services import create_generation
from tests.brokers import use_broker
from tests.generations.conftest import IMAGE, VIDEO
from tests.processes import database_url

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis]

VIDEO_POLL = r"^/shark/api/v1/videos/[^/]+$"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    stop = time.monotonic() + timeout
    while time.monotonic() < stop:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class PrivateRedis:
    """A redis-server of our own on a free port, so a restart touches nobody else's."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port)
        wait_for(lambda: _ping(client), 10, "redis-server to start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def _ping(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


class Workers:
    """Start and SIGKILL real worker processes (each with an embedded beat)."""

    def __init__(self, broker: PrivateRedis, tmp: Path, settings):
        self.broker, self.tmp, self.started = broker, tmp, []
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(),            # persistent connections (conn_max_age 60)
            "CELERY_BROKER_URL": broker.url,
            "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
            "KILN_ALLOW_PRIVATE_URLS": "1",
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "KILN_VAR_DIR": str(tmp / "var"),
            "KILN_POLL_TICK_SECONDS": "0.5",
            "SECRET_KEY": "fault-suite-secret-key-" + "x" * 40,
            "LOG_LEVEL": "WARNING",
        }

    def start(self) -> subprocess.Popen:
        n = len(self.started)
        log = self.tmp / f"worker-{n}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "project", "worker", "-B", "-Q", "default,poll,download,webhooks",
                 "-c", "2", "-n", f"fault{n}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
                 "-l", "INFO", "-s", str(self.tmp / f"beat-{n}")],
                cwd=django_settings.BASE_DIR, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        process.log = log  # type: ignore[attr-defined]
        self.started.append(process)
        wait_for(lambda: b" ready." in log.read_bytes() or process.poll() is not None, 60, "the worker to start")
        assert process.poll() is None, log.read_text()[-3000:]
        return process

    @staticmethod
    def kill(process: subprocess.Popen) -> None:
        """SIGKILL the worker and its pool children at once: no cleanup, no acks, no goodbyes."""
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def logs(self) -> str:
        """The end of every worker's log, for a failing assertion's message."""
        return "\n".join(f"--- {p.log.name}\n" + p.log.read_text(errors="replace")[-4000:] for p in self.started)

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.kill(process)


@pytest.fixture
def broker(tmp_path):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    redis = PrivateRedis(tmp_path / "redis")
    redis.start()
    try:
        with use_broker(redis.url):
            yield redis
    finally:
        redis.kill()


@pytest.fixture
def workers(transactional_db, broker, sandbox, settings, tmp_path):
    pool = Workers(broker, tmp_path, settings)
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture
def member(transactional_db, team, sandbox, sandbox_key):
    from tests.conftest import make_member

    user = make_member(team, "faults@acme.test", credits=50_000_000)
    sandbox_key(team, "shark")
    return user.memberships.select_related("team", "user").get()


def new_job(member, prompt: str, model: str = VIDEO) -> Generation:
    params = {"duration": 5, "resolution": "480p"} if model == VIDEO else {"quality": "low", "size": "1024x1024"}
    return create_generation(membership=member, provider_id="shark", model_id=model,
                             operation="text-to-video" if model == VIDEO else "text-to-image",
                             prompt=prompt, params=params)


def statuses(pks) -> dict[int, str]:
    return dict(Generation.objects.filter(pk__in=pks).values_list("pk", "status"))


def all_terminal(pks) -> bool:
    return all(status in TERMINAL for status in statuses(pks).values())


def fault_consumed(sandbox) -> bool:
    return sandbox._call("GET", "faults").get("faults") == []


def jump_clock(minutes: float = 3) -> dict[str, int]:
    """Let every lease run out (as if ``minutes`` passed) and run the periodic sweep."""
    now = timezone.now()
    Generation.objects.filter(Q(status__in=IN_FLIGHT) | Q(status=Status.DOWNLOADING), next_poll_at__gt=now).update(
        next_poll_at=now)
    return requeue_stuck(now=now + timedelta(minutes=minutes))


def recover(workers, pks, timeout: float = 60) -> None:
    workers.start()
    jump_clock()
    stop = time.monotonic() + timeout
    while time.monotonic() < stop and not all_terminal(pks):
        time.sleep(1.0)
        if not all_terminal(pks):
            jump_clock()  # a sweep as beat would run it (the test cannot wait the real minutes)
    assert all_terminal(pks), (statuses(pks), workers.logs())


def test_a_worker_killed_between_submit_and_saving_the_job_id_never_sends_it_again(
        workers, member, sandbox, settings, fault_report):
    settings.KILN_SUBMIT_LEASE_SECONDS = 60
    sandbox.control(duration=1.5)
    # Shark takes the job, then its answer is slow: the worker dies while it waits.
    sandbox.fault(r"^/shark/api/v1/videos$", method="POST", delay=20)
    worker = workers.start()
    victim = new_job(member, "killed while sending")
    wait_for(lambda: fault_consumed(sandbox), 20, "the submit to reach the sandbox")
    others = [new_job(member, f"queued behind it {i}", IMAGE) for i in range(2)]
    wait_for(lambda: Generation.objects.filter(pk=victim.pk, claimed_at__isnull=False).exists(), 10, "the claim")
    workers.kill(worker)
    assert Generation.objects.get(pk=victim.pk).provider_job_id == ""

    recover(workers, [victim.pk, *[g.pk for g in others]])
    victim.refresh_from_db()
    assert (victim.status, victim.needs_review) == (Status.EXPIRED, True)
    assert "not re-sent so you are not charged twice" in victim.error
    # The other child may have been sending one of the others too: that one is held for review the
    # same way; everything else was sent once and finished.
    for other in Generation.objects.filter(pk__in=[g.pk for g in others]):
        assert other.status == Status.SUCCEEDED or (other.status, other.needs_review) == (Status.EXPIRED, True)
    fault_report("SIGKILL between submit and saving the job id", [victim, *others], sandbox)


def test_a_worker_killed_mid_poll_is_taken_over_by_the_next_one(workers, member, sandbox, fault_report):
    sandbox.control(duration=3)
    worker = workers.start()
    jobs = [new_job(member, f"killed mid poll {i}") for i in range(3)]
    wait_for(lambda: all(s == Status.RUNNING or s == Status.SUBMITTED for s in statuses([g.pk for g in jobs]).values()),
             30, "the jobs to be submitted")
    sandbox.fault(VIDEO_POLL, method="GET", delay=20, count=1)
    wait_for(lambda: fault_consumed(sandbox), 20, "a poll to reach the sandbox")
    time.sleep(0.3)
    workers.kill(worker)
    assert not all_terminal([g.pk for g in jobs])

    recover(workers, [g.pk for g in jobs])
    assert {g.status for g in Generation.objects.filter(pk__in=[g.pk for g in jobs])} == {Status.SUCCEEDED}
    fault_report("SIGKILL mid-poll", jobs, sandbox)


def test_a_worker_killed_mid_download_leaves_no_half_file_and_the_next_stores_it_once(
        workers, member, sandbox, settings, fault_report):
    sandbox.control(duration=1.5)
    sandbox.fault(r"^/media/", trickle=True, trickle_interval=0.05, trickle_bytes=256, count=1)
    worker = workers.start()
    job = new_job(member, "killed mid download")
    wait_for(lambda: fault_consumed(sandbox), 30, "the download to start")
    time.sleep(0.5)
    workers.kill(worker)
    job.refresh_from_db()
    assert job.status == Status.DOWNLOADING
    assert job.media.count() == 0
    assert not list(Path(settings.MEDIA_ROOT).rglob("*.mp4"))  # nothing half-stored where users see it

    recover(workers, [job.pk])
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED, job.error
    fault_report("SIGKILL mid-download", [job], sandbox)


def test_jobs_survive_a_broker_restart_that_lost_every_queued_message(workers, broker, member, sandbox, fault_report):
    sandbox.control(duration=2)
    workers.start()
    jobs = [new_job(member, f"broker restart {i}", VIDEO if i % 2 else IMAGE) for i in range(4)]
    wait_for(lambda: any(s != Status.QUEUED for s in statuses([g.pk for g in jobs]).values()), 30, "a submit")
    # The broker dies while a poll task is running: its message is delivered but not yet acked
    # (acks_late). Celery 5.7.0's worker crashed on exactly this (see pyproject.toml).
    sandbox.fault(VIDEO_POLL, method="GET", delay=3, count=1)
    wait_for(lambda: fault_consumed(sandbox), 30, "a poll to be in flight")
    broker.kill()
    # A job asked for while the broker is down is still created, paid for once, and run later.
    during = new_job(member, "asked for while the broker was down", IMAGE)
    time.sleep(1)
    broker.start()  # empty: every queued wake-up is gone
    jobs.append(during)
    stop = time.monotonic() + 90
    while time.monotonic() < stop and not all_terminal([g.pk for g in jobs]):
        time.sleep(1.0)
        jump_clock()
    assert all_terminal([g.pk for g in jobs]), (statuses([g.pk for g in jobs]), workers.logs())
    assert {g.status for g in Generation.objects.filter(pk__in=[g.pk for g in jobs])} == {Status.SUCCEEDED}
    fault_report("broker restart (queues lost)", jobs, sandbox)


def test_jobs_survive_the_database_dropping_the_workers_connections(workers, member, sandbox, fault_report):
    sandbox.control(duration=2)
    workers.start()
    jobs = [new_job(member, f"db drop {i}", VIDEO if i % 2 else IMAGE) for i in range(4)]
    pks = [g.pk for g in jobs]
    name = django_settings.DATABASES["default"]["NAME"]
    dropped = 0
    outage = time.monotonic() + 8  # every 0.7 s for 8 s, the database kills the worker's connections
    while time.monotonic() < outage and not all_terminal(pks):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE datname = %s AND pid <> pg_backend_pid()", [name])
            dropped += cursor.fetchone()[0]
        time.sleep(0.7)
    stop = time.monotonic() + 60
    while time.monotonic() < stop and not all_terminal(pks):
        time.sleep(1.0)
        jump_clock()
    assert dropped > 0
    assert all_terminal(pks), (statuses(pks), workers.logs())
    assert {g.status for g in Generation.objects.filter(pk__in=pks)} == {Status.SUCCEEDED}
    fault_report(f"database connections dropped ({dropped} backends)", jobs, sandbox)
