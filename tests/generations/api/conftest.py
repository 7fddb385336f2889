"""The API under test is Kiln as ``make run`` serves it: gunicorn started with runkiln's own
command line (``kiln_children``'s ``web``), on the test database, over real HTTP on loopback.

Tests that use it write with ``transactional_db`` (committed rows, so gunicorn sees them).
Media is shared: the test's MEDIA_ROOT is the server's. Each web process counts its own
rate limits (local-memory cache), as ``make run`` does.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from datetime import datetime

import httpx
import pytest
from django.conf import settings as django_settings

from accounts.models import Membership
from accounts.tokens.services import create_token
from tests.processes import database_url

API_REQUESTS_PER_MINUTE = 60  # per token and web process; test_tokens_api's limit test relies on it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class KilnWeb:
    def __init__(self, url: str, media_root, proc: subprocess.Popen, log_path):
        self.url, self.media_root, self.proc, self.log_path = url, media_root, proc, log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def kiln_web(django_db_setup, django_db_blocker, tmp_path_factory):
    """gunicorn serving Kiln on the test database, started once for the session."""
    from project.runtime.management.commands.runkiln import kiln_children

    with django_db_blocker.unblock():
        url = database_url()
    port = _free_port()
    web = next(c for c in kiln_children(port, _free_port()) if c.name == "web")
    base = tmp_path_factory.mktemp("kiln-web")
    media_root = base / "media"
    media_root.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": django_settings.SECRET_KEY,
        "FIELD_ENCRYPTION_KEYS": ",".join(django_settings.FIELD_ENCRYPTION_KEYS),
        "MEDIA_ROOT": str(media_root),
        "CELERY_BROKER_URL": f"filesystem://{base / 'broker'}",  # nothing consumes it: tests drive the engine
        "KILN_ALLOW_PRIVATE_URLS": "1",
        "KILN_API_REQUESTS_PER_MINUTE": str(API_REQUESTS_PER_MINUTE),
        "KILN_MANIFEST_STATIC": "0",
        "DEBUG": "0",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("KILN_CACHE_URL", None)
    log_path = base / "gunicorn.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(web.argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                cwd=django_settings.BASE_DIR, start_new_session=True)
    server = KilnWeb(f"http://127.0.0.1:{port}", media_root, proc, log_path)
    deadline = time.monotonic() + 60
    while server.log().count("Kiln web worker ready") < 2:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"gunicorn did not start:\n{server.log()[-3000:]}")
        time.sleep(0.05)
    yield server
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def api_url(kiln_web, settings, transactional_db):
    """The server's URL; this test's media is the server's."""
    settings.MEDIA_ROOT = kiln_web.media_root
    return kiln_web.url + "/api/v1"


@pytest.fixture
def token_for():
    """token_for(user, team, scopes=("read", "generate", "share"), expires_at=None) -> the secret."""

    def make(user, team, scopes=("read", "generate", "share"), expires_at: datetime | None = None,
             name: str = "test script") -> str:
        membership = Membership.objects.get(user=user, team=team)
        return create_token(membership, name, scopes, expires_at=expires_at)[1]

    return make


@pytest.fixture
def call(api_url):
    """call(method, path, token=None, **httpx kwargs) -> httpx.Response, over real HTTP."""
    client = httpx.Client(base_url=api_url, timeout=30)

    def request(method: str, path: str, token: str | None = None, **kwargs) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return client.request(method, path, headers=headers, **kwargs)

    yield request
    client.close()

