"""`make run`'s supervisor: prefixed output, Ctrl-C or SIGTERM stops everything, a child that dies is
started again, one that keeps crashing stops all."""

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest

from project.runtime.supervisor import Child, Supervisor
from tests.processes import Output

ROOT = Path(__file__).resolve().parents[3]
PY = sys.executable


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by someone else) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _run_script(script: str) -> Output:
    return Output(subprocess.Popen([PY, "-c", textwrap.dedent(script)], cwd=ROOT, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True))


def _started_pids(text: str) -> list[int]:
    return [int(line.split("(pid ")[1].split(")")[0]) for line in text.splitlines() if "| started " in line]


def test_a_child_that_dies_is_restarted_with_its_status_and_last_lines_and_the_others_keep_running():
    proc = _run_script("""
        import sys
        from project.runtime.supervisor import Child, Supervisor
        flaky = "import sys, time; print('flaky says goodbye', flush=True); time.sleep(0.3); sys.exit(3)"
        children = [Child("steady", [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]),
                    Child("flaky", [sys.executable, "-c", flaky])]
        sys.exit(Supervisor(children, grace=5).run())
    """)
    try:
        proc.wait_for("restarting flaky in 2 s")  # the second crash: the backoff doubled
        proc.proc.send_signal(signal.SIGTERM)
        text = proc.finish(30)
    finally:
        if proc.proc.poll() is None:
            proc.proc.kill()
    assert proc.proc.returncode == 0, text
    assert "flaky exited unexpectedly (status 3). Its last lines:" in text
    assert "kiln   |     flaky says goodbye" in text  # its last lines, again, beside the verdict
    assert "restarting flaky in 1 s (1 crash(es) within 60 s; 5 stop Kiln)." in text
    assert text.count("started flaky") >= 2 and text.count("started steady") == 1
    assert not any(_alive(pid) for pid in _started_pids(text))


def test_a_child_that_keeps_crashing_stops_everything_and_the_supervisor_fails():
    out = io.StringIO()
    supervisor = Supervisor([
        Child("steady", [PY, "-c", "import time; print('up', flush=True); time.sleep(60)"]),
        Child("flaky", [PY, "-c", "import sys; print('starting', flush=True); sys.exit(3)"]),
    ], out=out, grace=5, crash_limit=3, max_backoff=0.2)
    started = time.monotonic()
    assert supervisor.run() == 1
    assert time.monotonic() - started < 20
    text = out.getvalue()
    assert "steady | up" in text
    assert text.count("flaky  | starting") == 3
    assert "flaky crashed 3 times within 60 s; stopping everything." in text
    assert all(c.process.poll() is not None for c in supervisor.children)


def test_a_child_that_ignores_interrupts_is_terminated_in_the_end(tmp_path):
    flag = tmp_path / "ignoring"
    stubborn = ("import signal, time, pathlib; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                f"pathlib.Path({str(flag)!r}).touch(); time.sleep(60)")
    quitter = f"import time, pathlib\nwhile not pathlib.Path({str(flag)!r}).exists(): time.sleep(0.05)"
    supervisor = Supervisor([Child("stubborn", [PY, "-c", stubborn]), Child("quitter", [PY, "-c", quitter])],
                            out=io.StringIO(), grace=1, crash_limit=1)
    assert supervisor.run() == 1  # the quitter's exit stops everything (after the stubborn one ignores SIGINT)
    assert supervisor.children[0].process.returncode == -signal.SIGTERM


SCRIPT = """
    import sys
    from project.runtime.supervisor import Child, Supervisor
    children = [Child(f"c{i}", [sys.executable, "-c",
        "import time; print('pid-here', flush=True); time.sleep(60)"]) for i in range(2)]
    sys.exit(Supervisor(children, grace=5).run())
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_ctrl_c_or_sigterm_stops_every_child_and_exits_0(sig):
    proc = _run_script(SCRIPT)
    for _ in range(2):
        proc.wait_for("pid-here")
    proc.proc.send_signal(sig)
    text = proc.finish(30)
    assert proc.proc.returncode == 0, text
    assert f"{signal.Signals(sig).name} received; stopping." in text
    pids = _started_pids(text)
    assert len(pids) == 2 and not any(_alive(pid) for pid in pids)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_while_the_children_are_starting_stops_them_all_and_exits_0(sig):
    """Before every child is ready (or while one waits to be started again) a stop is a stop."""
    proc = _run_script("""
        import sys
        from project.runtime.supervisor import Child, Supervisor
        slow = "import time; print('warming up', flush=True); time.sleep(60)"
        children = [Child(f"c{i}", [sys.executable, "-c", slow], ready="never says so") for i in range(3)]
        sys.exit(Supervisor(children, grace=5, on_started=lambda: print("ALL READY", flush=True)).run())
    """)
    proc.wait_for("started c0")
    proc.proc.send_signal(sig)
    text = proc.finish(30)
    assert proc.proc.returncode == 0, text
    assert f"{signal.Signals(sig).name} received; stopping." in text and "ALL READY" not in text
    assert not any(_alive(pid) for pid in _started_pids(text))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # let the 302 surface as an HTTPError


def test_runkiln_serves_kiln_and_stops_cleanly_on_ctrl_c(tmp_path):
    """The real thing: sandbox, gunicorn, a Celery worker with beat and a download worker, on free ports."""
    import socket

    def free_port():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    port, sandbox_port = free_port(), free_port()
    env = {**os.environ, "KILN_VAR_DIR": str(tmp_path), "PORT": str(port),
           "KILN_SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}", "KILN_MANIFEST_STATIC": "0"}
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL"):
        env.pop(name, None)
    manage = [PY, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, capture_output=True)
    proc = subprocess.Popen([*manage, "runkiln"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    out = Output(proc)
    try:
        assert f"open http://127.0.0.1:{port}/" in out.wait_for("Kiln is running: open", 120)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=30) as response:
            assert response.status == 200
            assert b"Sign in to Kiln" in response.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{sandbox_port}/_control/jobs", timeout=30) as response:
            assert response.status == 200
        # A gallery with 100 pending cards polls with all of them in its query string (~6.6 KB):
        # gunicorn must hand it to Django (here: "sign in first") instead of "414 URI Too Long".
        status_poll = f"http://127.0.0.1:{port}/gallery/status/?" + urlencode(
            {"ids": ",".join(f"{uuid.uuid4()}:downloading-100-ffffffff" for _ in range(100))})
        assert len(status_poll) > 6500
        opener = urllib.request.build_opener(NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as answer:
            opener.open(status_poll, timeout=30)
        assert answer.value.code == 302 and "/accounts/login/" in answer.value.headers["Location"]
        proc.send_signal(signal.SIGINT)
        text = out.finish(90)
    finally:
        if proc.poll() is None:  # a failed assertion: stop runkiln the way a user would, so it stops its children
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert proc.returncode == 0, text[-3000:]
    for name in ("sandbox", "web", "worker", "downloads"):
        assert f"{name} stopped (status 0)." in text
    pids = _started_pids(text)
    assert len(pids) == 4 and not any(_alive(pid) for pid in pids)


def test_make_run_starts_a_killed_worker_again_and_sigterm_to_make_stops_everything(tmp_path):
    """What an operator does: ``make run``, a worker killed from outside (the OOM killer, say)
    comes back on its own, and ``kill <pid of make>`` (what systemd or a container runtime
    sends) stops every process; make used to die alone and leave ten processes running."""
    import socket

    def free_port():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    port = free_port()
    env = {**os.environ, "KILN_VAR_DIR": str(tmp_path), "PORT": str(port),
           "KILN_SANDBOX_URL": f"http://127.0.0.1:{free_port()}", "KILN_MANIFEST_STATIC": "0"}
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "MAKEFLAGS", "MAKELEVEL"):
        env.pop(name, None)
    proc = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    out = Output(proc)
    try:
        out.wait_for("Kiln is running: open", 240)
        downloads = next(pid for line in out.lines if "started downloads (pid " in line
                         for pid in [int(line.split("(pid ")[1].split(")")[0])])
        os.kill(downloads, signal.SIGKILL)
        out.wait_for("started downloads")
        out.wait_for(" ready.")  # the others said so long ago: this is the new one
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=30) as response:
            assert response.status == 200
        proc.send_signal(signal.SIGTERM)  # to make alone, as `kill <pid>` does
        text = out.finish(90)  # the output ends when every process holding it has
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=30)
    assert "downloads exited unexpectedly (signal SIGKILL)" in text, text[-3000:]
    assert "restarting downloads in 1 s" in text
    assert "SIGTERM received; stopping." in text, text[-3000:]
    for name in ("sandbox", "web", "worker", "downloads"):
        assert f"{name} stopped (status 0)." in text, text[-3000:]
    pids = _started_pids(text)
    assert len(pids) == 5 and not any(_alive(pid) for pid in pids)


@pytest.mark.parametrize("taken", ["web", "sandbox", "same"])
def test_runkiln_refuses_a_port_in_use_before_starting_anything(tmp_path, taken):
    """`make run` beside something on its port says which port and what to do, and starts nothing."""
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy = listener.getsockname()[1]
        with socket.socket() as spare:
            spare.bind(("127.0.0.1", 0))
            free = spare.getsockname()[1]
        port, sandbox_port = {"web": (busy, free), "sandbox": (free, busy), "same": (free, free)}[taken]
        env = {**os.environ, "KILN_VAR_DIR": str(tmp_path), "PORT": str(port),
               "KILN_SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}"}
        done = subprocess.run([PY, str(ROOT / "manage.py"), "runkiln"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)
    assert done.returncode == 2
    assert "started" not in done.stdout, done.stdout
    expected = {"web": f"Kiln's port {busy} is already in use on 127.0.0.1",
                "sandbox": f"The sandbox's port {busy} is already in use on 127.0.0.1",
                "same": f"PORT {free} is the sandbox's port too"}[taken]
    assert expected in done.stderr, done.stderr
