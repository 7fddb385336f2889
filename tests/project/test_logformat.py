"""KILN_LOG_FORMAT=json: every line a process writes to its log is one JSON object, in the web
server (gunicorn's own lines and Django's) and in a Celery worker."""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from django.conf import settings as django_settings

from project.celery import app
from project.logformat import JsonFormatter
from tests.processes import Output

FIELDS = {"time", "level", "logger", "message", "process", "pid"}


def _env(tmp_path, **extra) -> dict:
    """A process on the embedded defaults under ``tmp_path`` (SQLite, the embedded broker), JSON logs."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    return {**env, "KILN_VAR_DIR": str(tmp_path), "KILN_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1", **extra}


def _json_lines(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}\nin:\n{text[-3000:]}") from None
    assert all(set(obj) >= FIELDS for obj in parsed), parsed
    return parsed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_web_server_logs_are_json_lines_and_a_requests_lines_carry_the_proxys_request_id(tmp_path):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "project.wsgi", "-c", "project/runtime/gunicorn.conf.py",
         "-b", f"127.0.0.1:{port}", "-w", "1", "--threads", "2"],
        cwd=django_settings.BASE_DIR, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = Output(proc)
    try:
        out.wait_for("Kiln web worker ready")
        for headers in ({"X-Request-ID": "7f3c9a0e2b"}, {}, {"X-Request-ID": "not an id; <script>" + "x" * 200}):
            request = urllib.request.Request(f"http://127.0.0.1:{port}/no-such-page/", headers=headers)
            with pytest.raises(urllib.error.HTTPError):
                urllib.request.urlopen(request, timeout=30)
            out.wait_for("Not Found: /no-such-page/")
    finally:
        proc.send_signal(signal.SIGTERM)
        text = out.finish(60)
    lines = _json_lines(text)
    assert {"gunicorn.error", "django.request"} <= {line["logger"] for line in lines}
    not_found = [line for line in lines if line["message"] == "Not Found: /no-such-page/"]
    assert [line.get("request_id") for line in not_found] == ["7f3c9a0e2b", None, None]
    assert not_found[0]["level"] == "WARNING" and not_found[0]["pid"] != proc.pid  # the worker's, not the master's


def test_a_celery_workers_logs_are_json_lines(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "project", "worker", "-l", "INFO", "-c", "1", "-n", "json@%h",
         "--without-gossip", "--without-mingle"],
        cwd=django_settings.BASE_DIR, env=_env(tmp_path), stdout=subprocess.DEVNULL,  # stdout: the banner
        stderr=subprocess.PIPE, text=True)
    proc.stdout = proc.stderr  # Output reads .stdout
    out = Output(proc)
    try:
        out.wait_for(" ready.")
    finally:
        proc.send_signal(signal.SIGTERM)
        text = out.finish(60)
    assert proc.returncode == 0, text
    lines = _json_lines(text)
    assert any(line["logger"] == "celery.apps.worker" and line["message"].endswith(" ready.") for line in lines)


@app.task(name="tests.project.test_logformat.log_a_line")
def log_a_line() -> dict:
    try:
        raise ValueError("the provider said no")
    except ValueError:
        record = logging.LogRecord("generations.engine.poll", logging.ERROR, __file__, 1, "poll of %s failed",
                                   ("job-1",), sys.exc_info())
    return json.loads(JsonFormatter().format(record))


def test_a_json_line_carries_the_exception_and_inside_a_task_its_id():
    line = log_a_line.apply(task_id="task-42").get()
    assert line["message"] == "poll of job-1 failed" and line["level"] == "ERROR"
    assert line["logger"] == "generations.engine.poll"
    assert line["exception"].startswith("Traceback") and "ValueError: the provider said no" in line["exception"]
    assert line["task_id"] == "task-42" and line["task"] == "tests.project.test_logformat.log_a_line"
    assert line["time"].endswith("+00:00")


def test_an_unknown_log_format_is_refused_at_start(tmp_path):
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=django_settings.BASE_DIR,
                          env=_env(tmp_path, KILN_LOG_FORMAT="logfmt"), capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "KILN_LOG_FORMAT must be plain or json, got 'logfmt'" in done.stderr
