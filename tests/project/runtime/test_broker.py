"""The embedded broker (project.runtime.broker): nothing unreadable, lost or doubled between
processes, and a file that is not a message never stops a worker."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.project.runtime import stress

ROOT = Path(__file__).resolve().parents[3]


def test_producers_and_consumers_in_many_processes_lose_nothing_and_read_nothing_twice(tmp_path):
    """kombu's own transport fails this: a consumer reads a file its producer has created
    but not yet written (JSONDecodeError, the message lost; in a Celery worker, its death).
    ``python -m tests.project.runtime.stress --transport kombu.transport.filesystem:Transport``."""
    outcome = stress.run(stress.KILN, tmp_path, messages=20_000, producers=4, consumers=4)
    assert outcome.unreadable == [], outcome
    assert (outcome.lost, outcome.duplicates, outcome.unique) == (0, 0, 20_000), outcome
    assert list((tmp_path / "queue").iterdir()) == [] and list((tmp_path / "processed").iterdir()) == []


def _wait_for(predicate, seconds=60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_corrupt_message_file_is_set_aside_and_the_worker_goes_on(tmp_path):
    """Garbage written into the queue folder by hand: logged, moved to corrupt/, skipped; the
    worker stays up and runs the task sent after it."""
    env = {**os.environ, "ECHO_BROKER_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env.pop("CELERY_BROKER_URL", None)  # Celery would prefer it (CI's Redis) to the app's filesystem://
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.project.runtime.echo_app", "worker", "-P", "solo",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert _wait_for(lambda: "ready." in log.read_text()), log.read_text()
        queue = tmp_path / "queue"
        bad = {"0000000000000001_a.echo.msg": b"", "0000000000000002_b.echo.msg": b"{not json",
               "0000000000000003_c.echo.msg": b'{"body": "e30=", "properties": {}}',
               "0000000000000004_d.echo.msg": b"\xff\xfe garbage"}
        for name, content in bad.items():
            (queue / name).write_bytes(content)
        subprocess.run([sys.executable, "-c", "from tests.project.runtime.echo_app import app; "
                        "app.send_task('echo.write', args=['after', 'still here'])"], cwd=ROOT, env=env, check=True)
        assert _wait_for(lambda: (tmp_path / "out" / "after").exists()), log.read_text()
        assert worker.poll() is None, log.read_text()
        assert sorted(p.name for p in (tmp_path / "corrupt").iterdir()) == sorted(bad)
        said = log.read_text()
        assert said.count("cannot be read") == len(bad), said
        assert "Unrecoverable error" not in said
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
