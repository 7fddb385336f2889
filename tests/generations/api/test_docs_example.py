"""docs/api.md's example, run as written against Kiln served by gunicorn: it submits, waits
and downloads a real result, and a second run makes nothing new (its Idempotency-Key)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from django.conf import settings

from generations.models import Generation, Status
from tests.generations.engine.conftest import drive

pytestmark = pytest.mark.django_db(transaction=True)


def example() -> str:
    text = (settings.BASE_DIR / "docs" / "api.md").read_text()
    block = re.search(r"## A complete example.*?```python\n(.*?)```", text, re.S)
    assert block, "docs/api.md has no Python example under “A complete example”"
    return block.group(1)


def run_example(tmp_path, api_url, token, shark_job=None) -> subprocess.CompletedProcess:
    script = tmp_path / "example.py"
    script.write_text(example())
    env = {**os.environ, "KILN_URL": api_url.removesuffix("/api/v1"), "KILN_TOKEN": token}
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while proc.poll() is None and time.monotonic() < deadline:
        # Play the worker: drive the job the example made through the sandbox.
        queued = Generation.objects.filter(status=Status.QUEUED).values_list("pk", flat=True).first()
        if queued:
            drive(queued)
        time.sleep(0.2)
    if proc.poll() is None:
        proc.kill()
    out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_the_example_in_the_docs_submits_waits_and_downloads(tmp_path, api_url, token_for, owner, team, shark):
    token = token_for(owner, team, scopes=("read", "generate"))
    first = run_example(tmp_path, api_url, token)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "succeeded"
    [job] = Generation.objects.all()
    [media] = job.media.all()
    saved = tmp_path / "teapot-0.png"
    assert saved.read_bytes() == media.file.read()

    again = run_example(tmp_path, api_url, token)
    assert again.returncode == 0, again.stderr
    assert Generation.objects.count() == 1   # the same Idempotency-Key: nothing new, nothing reserved twice


def test_a_script_polling_every_few_seconds_keeps_its_connection(api_url, token_for, owner, team):
    """The example polls every 2 s on one kept-alive connection. With gunicorn's default
    keep-alive (2 s) the server closed it just as the next poll went out ("connection reset
    by peer" on a loaded host); the server now keeps an idle connection 5 s."""
    import httpx

    token = token_for(owner, team, scopes=("read",))
    with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {token}"}) as client:
        def port() -> int:
            answer = client.get("/me")
            assert answer.status_code == 200
            return answer.extensions["network_stream"].get_extra_info("client_addr")[1]

        first = port()
        time.sleep(3)
        assert port() == first, "the server closed the idle connection within 3 s"
