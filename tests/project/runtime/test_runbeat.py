"""``manage.py runbeat``: one beat ticks in the whole installation, whatever runs or dies.

Each runbeat process gets an embedded broker of its own, so its ticks are the ``poll_due``
messages in its own queue folder; a message file's name starts with the (system-wide) monotonic
clock in microseconds when it was sent, which the test compares with its own clock.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from project.runtime.beatlock import CHECK_SECONDS, LOCK_KEY, RETRY_SECONDS
from tests.processes import Output, database_url

TICK = 0.5  # KILN_POLL_TICK_SECONDS of the beats under test
# Room for a busy 2-core machine (a process's start, a thread scheduled late) in the bounds below.
SLACK = 8.0


class Beat:
    """One ``manage.py runbeat`` with a broker folder of its own."""

    def __init__(self, tmp: Path, name: str, db_url: str):
        self.var = tmp / name
        env = {**os.environ, "DATABASE_URL": db_url + "?conn_max_age=0", "KILN_VAR_DIR": str(self.var),
               "KILN_POLL_TICK_SECONDS": str(TICK), "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
        env.pop("CELERY_BROKER_URL", None)  # the embedded broker, under KILN_VAR_DIR
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runbeat", "-s", str(tmp / f"{name}-schedule")],
            cwd=django_settings.BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.out = Output(self.proc)

    def ticks(self) -> list[float]:
        """When each of its poll ticks was sent (monotonic seconds), oldest first."""
        queue = self.var / "broker" / "queue"
        return sorted(int(path.name.split("_")[0]) / 1e6 for path in queue.glob("*.poll.msg")) if queue.exists() else []

    def wait_ticks(self, count: int, seconds: float = 60) -> list[float]:
        deadline = time.monotonic() + seconds
        while len(ticks := self.ticks()) < count:
            assert self.proc.poll() is None, f"runbeat exited ({self.proc.returncode}):\n{self.out.text[-3000:]}"
            assert time.monotonic() < deadline, f"fewer than {count} ticks in {seconds} s:\n{self.out.text[-3000:]}"
            time.sleep(0.1)
        return ticks

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.out.finish(30)


@pytest.fixture
def beats(db, tmp_path):
    started = []
    url = database_url()

    def start(name: str) -> Beat:
        started.append(Beat(tmp_path, name, url))
        return started[-1]

    yield start
    for beat in started:
        beat.stop()


def _terminate_lock_session() -> float:
    """pg_terminate_backend on the session holding the beat lock; when (monotonic)."""
    high, low = divmod(LOCK_KEY, 1 << 32)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = %s AND objid = %s AND objsubid = 1", (high, low))
        assert [row[0] for row in cursor.fetchall()] == [True]
    return time.monotonic()


@pytest.mark.postgres
def test_of_two_runbeats_one_ticks_and_the_standby_takes_over_when_it_is_killed_and_sigterm_stops_it(beats):
    first = beats("first")
    first.out.wait_for("holding the beat lock")
    second = beats("second")
    second.out.wait_for("waiting as a standby")
    first.wait_ticks(6)
    assert second.ticks() == [] and "holding the beat lock" not in second.out.text

    first.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    first.proc.wait(timeout=30)
    taken_over = second.wait_ticks(1)[0]
    # The standby tries every RETRY_SECONDS; PostgreSQL frees the lock as the killed process's socket closes.
    assert taken_over - killed < RETRY_SECONDS + SLACK, f"took over {taken_over - killed:.1f} s after the kill"
    assert all(tick < killed for tick in first.ticks())
    second.wait_ticks(4)  # and it goes on ticking
    second.proc.send_signal(signal.SIGTERM)  # systemctl stop
    assert second.proc.wait(timeout=60) == 0
    print(f"standby's first tick {taken_over - killed:.2f} s after the holder was killed")


@pytest.mark.postgres
def test_a_beat_whose_lock_session_is_terminated_stops_and_exits_1_and_the_standby_takes_over(beats):
    first = beats("first")
    first.out.wait_for("holding the beat lock")
    second = beats("second")
    second.out.wait_for("waiting as a standby")
    first.wait_ticks(4)

    terminated = _terminate_lock_session()
    assert first.proc.wait(timeout=60) == 1
    assert "lost the beat lock: its connection failed" in first.out.finish(30)
    # It stopped ticking within its check interval (plus one tick's sleep).
    last = first.ticks()[-1]
    assert last - terminated < CHECK_SECONDS + TICK + SLACK, f"ticked {last - terminated:.1f} s after losing the lock"
    second.wait_ticks(2)
    print(f"terminated holder's last tick {last - terminated:+.2f} s after the termination")


def _runbeat(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "runbeat", *args], cwd=django_settings.BASE_DIR,
                          env=env, capture_output=True, text=True, timeout=120)


def test_runbeat_refuses_a_database_that_cannot_hold_the_lock(tmp_path):
    env = {**os.environ, "KILN_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)  # SQLite under KILN_VAR_DIR
    done = _runbeat(env=env)
    assert done.returncode == 2
    assert "runbeat guarantees one beat across hosts with a PostgreSQL advisory lock; this database is sqlite" in done.stderr


@pytest.mark.postgres
def test_runbeat_refuses_detach_and_bad_options_before_waiting_for_the_lock(db, tmp_path):
    env = {**os.environ, "DATABASE_URL": database_url(), "KILN_VAR_DIR": str(tmp_path)}
    detached = _runbeat("--detach", env=env)
    assert detached.returncode == 2 and "runbeat cannot --detach" in detached.stderr
    bad = _runbeat("--max-interval", "soon", env=env)
    assert bad.returncode == 2 and "celery beat: Invalid value for '--max-interval'" in bad.stderr
    assert "holding the beat lock" not in bad.stderr
