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
