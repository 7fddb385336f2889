"""Shared fixtures: a team with an owner and a teammate, and an outsider in another team.

Tests that need PostgreSQL or Redis carry the ``postgres`` / ``redis`` markers:
they are skipped (with the reason) where those are not configured, and fail
instead of skipping when ``CI`` is set.
"""

import itertools
import os

import pytest
from django.db import connection

from accounts.credits.services import wallet_for
from accounts.models import Membership, Role, Team, User

PASSWORD = "correct horse battery staple 42"


def pytest_generate_tests(metafunc):
    """A test marked ``media`` runs twice: on the file system, and on S3 (the ``s3`` variant)."""
    if metafunc.definition.get_closest_marker("media") and "media_backend" not in metafunc.fixturenames:
        metafunc.fixturenames.append("media_backend")
    pinned = any("media_backend" in str(m.args[0]) for m in metafunc.definition.iter_markers("parametrize"))
    if "media_backend" in metafunc.fixturenames and not pinned:  # a test may pin one variant itself
        metafunc.parametrize("media_backend", ["fs", pytest.param("s3", marks=pytest.mark.s3)], indirect=True)


def pytest_collection_modifyitems(config, items):
    in_ci = bool(os.environ.get("CI"))
    on_postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
    has_redis = os.environ.get("REDIS_URL", "").startswith("redis://")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            if in_ci:
                item.add_marker(pytest.mark.xfail(reason="CI must run this on PostgreSQL (DATABASE_URL)", strict=True, run=False))
            else:
                item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://..."))
        if "redis" in item.keywords and not has_redis:
            if in_ci:
                item.add_marker(pytest.mark.xfail(reason="CI must run this with Redis (REDIS_URL)", strict=True, run=False))
            else:
                item.add_marker(pytest.mark.skip(reason="needs Redis: set REDIS_URL=redis://..."))


_windows = itertools.count()


@pytest.fixture(autouse=True)
def _rate_limit_window(monkeypatch):
    """Each test counts its rate limits in windows of its own, 30 s into a minute and 30 min
    into an hour, so no limit resets mid-test: on the wall clock, seven webhooks sent across a
    minute boundary found the 6th and 7th of a limit of 5 allowed (CI, 11:30:59.989)."""
    from project import ratelimit

    instant = 1_800_000_000 + next(_windows) * 3600 + 1830.0
    monkeypatch.setattr(ratelimit, "clock", lambda: instant)


def make_member(team: Team, email: str, role: str = Role.MEMBER, credits: int = 0) -> User:
    user = User.objects.filter(email=email).first() or User.objects.create_user(email, PASSWORD)
    membership = Membership.objects.create(team=team, user=user, role=role)
    wallet = wallet_for(membership)
    if credits:
        from accounts.credits.services import grant

        grant(wallet, credits, reason="test grant")
    return user


@pytest.fixture
def team(db):
    return Team.objects.create(slug="acme", name="Acme Studio")


@pytest.fixture
def other_team(db):
    return Team.objects.create(slug="rivals", name="Rival Films")


@pytest.fixture
def owner(team):
    return make_member(team, "owner@acme.test", Role.OWNER, credits=1_000_000)


@pytest.fixture
def teammate(team):
    return make_member(team, "mate@acme.test", Role.MEMBER, credits=1_000_000)


@pytest.fixture
def outsider(other_team):
    return make_member(other_team, "outsider@rivals.test", Role.OWNER, credits=1_000_000)


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def teammate_client(client, teammate):
    client.force_login(teammate)
    return client


@pytest.fixture
def outsider_client(client, outsider):
    client.force_login(outsider)
    return client


@pytest.fixture
def csrf_client(owner):
    """A client that enforces CSRF like a browser would."""
    from django.test import Client

    c = Client(enforce_csrf_checks=True)
    c.force_login(owner)
    return c


@pytest.fixture
def is_postgres():
    return connection.vendor == "postgresql"


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On SQLite, the test database is a file (WAL, with the busy timeout from settings)
    rather than shared-cache memory: there, a table lock between the live server's thread
    and the test's thread fails at once ("database table is locked") instead of waiting."""
    from django.conf import settings as django_settings

    database = django_settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        database.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("db") / "kiln_test.sqlite3")


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hasher():
    """Real hashing costs ~0.3 s per user; tests sign in with real passwords all the same."""
    from django.conf import settings as django_settings

    django_settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _plain_static_storage(settings, tmp_path):
    """Tests render templates without a collectstatic manifest, and keep media in a temp dir."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _media_variant(request):
    """Runs ``media_backend`` for a ``media`` test that does not ask for it itself. pytest drops a
    fixture that only ``pytest_generate_tests`` added from the fixtures a test runs (its parameter
    is set, the fixture never runs): the ``s3`` variant would quietly run on the file system."""
    if "media_backend" in getattr(getattr(request.node, "callspec", None), "params", {}):
        request.getfixturevalue("media_backend")


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 API server on loopback (moto, its own process), for the session."""
    from tests.s3 import MotoServer

    with MotoServer() as server:
        yield server


@pytest.fixture
def media_backend(request, settings, tmp_path):
    """Where this test's media live: "fs" (MEDIA_ROOT in a temp dir) or "s3" (a fresh bucket on
    ``s3_server``, under a prefix, as a deployment sharing a bucket would have it)."""
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        bucket = server.make_bucket()
        settings.STORAGES = {**settings.STORAGES, "default": server.storages_default(bucket, prefix="kiln")}
    return request.param


@pytest.fixture
def media_env(request, settings) -> dict[str, str]:
    """What a Kiln process a test starts (a worker, a web server) needs in its environment to
    keep media where this test does: the bucket of the ``s3`` variant, else MEDIA_ROOT."""
    if "media_backend" in request.fixturenames:
        request.getfixturevalue("media_backend")  # the variant's settings first, whatever the fixtures' order
    default = settings.STORAGES["default"]
    if default["BACKEND"] != "generations.storage.S3MediaStorage":
        return {"MEDIA_ROOT": str(settings.MEDIA_ROOT)}
    options = default["OPTIONS"]
    return request.getfixturevalue("s3_server").env(options["bucket_name"], options["location"])


def stored_names(prefix: str = "") -> list[str]:
    """Every file in the media storage under ``prefix``, through the storage API (the same
    question on the file system and on a bucket)."""
    from django.core.files.storage import default_storage

    def walk(folder: str) -> list[str]:
        folders, files = default_storage.listdir(folder)
        found = [f"{folder}/{name}".lstrip("/") for name in files]
        for sub in folders:
            found += walk(f"{folder}/{sub}".lstrip("/"))
        return found

    try:
        return walk(prefix.rstrip("/"))
    except FileNotFoundError:  # a MEDIA_ROOT nothing was ever written to
        return []


# ---------------------------------------------------------------------------
# The provider sandbox (generations/sandbox): real HTTP on loopback.
# ``sandbox_server`` (session) starts it once; ``sandbox`` (function) is the same
# helper, reset before the test (jobs, faults, settings, request log).


class SandboxHelper:
    """Drives the sandbox's control API (documented in generations/sandbox/server.py)."""

    def __init__(self, server):
        import httpx

        self.server = server
        self.sandbox = server.sandbox          # in-process state (JobStore, settings...)
        self.url = server.url
        self._http = httpx.Client(base_url=server.url, timeout=10)

    def base_url(self, provider_id: str = "shark") -> str:
        return f"{self.url}/{provider_id}"

    def _call(self, method: str, path: str, **kw) -> dict:
        response = self._http.request(method, f"/_control/{path}", **kw)
        response.raise_for_status()
        return response.json()

    def control(self, **settings) -> dict:
        """Change settings: duration=, media_ttl=, sync_seconds=, shark_running_status=..."""
        return self._call("POST", "settings", json=settings)

    def fault(self, path: str, **spec) -> dict:
        """Queue a fault for the next ``count`` requests whose path matches the regex ``path``."""
        return self._call("POST", "faults", json={"path": path, **spec})

    def job(self, job_id: str, **change) -> dict:
        """Inspect a job, or override it: state="failed"|"cancelled"|"vanished"|"running"|..., raw_status=."""
        return self._call("POST" if change else "GET", f"jobs/{job_id}", json=change or None)

    def jobs(self) -> dict:
        return self._call("GET", "jobs")

    def requests(self) -> list[dict]:
        return self._call("GET", "requests")["requests"]

    def big_url(self, size: int, ttl: float | None = None) -> str:
        params = {"bytes": size, **({"ttl": ttl} if ttl is not None else {})}
        return self._call("GET", "big-url", params=params)["url"]

    def reset(self) -> dict:
        return self._call("POST", "reset")


@pytest.fixture(scope="session")
def sandbox_server():
    from generations.sandbox.server import SandboxServer

    server = SandboxServer("127.0.0.1", 0, duration=1.0)
    server.start()
    helper = SandboxHelper(server)
    yield helper
    server.stop()


@pytest.fixture
def sandbox(sandbox_server, settings):
    """The running sandbox, reset for this test; provider URLs on loopback are allowed."""
    sandbox_server.reset()
    settings.KILN_ALLOW_PRIVATE_URLS = True
    settings.KILN_SANDBOX_URL = sandbox_server.url
    yield sandbox_server
    sandbox_server.reset()


@pytest.fixture
def sandbox_key(sandbox, settings):
    """``sandbox_key(team, provider_id="shark", api_key=None, **fields)`` -> an active ProviderKey
    whose base_url is the sandbox's prefix for that provider."""
    from generations.keys.models import ProviderKey

    def make(team, provider_id: str = "shark", api_key: str | None = None, **fields):
        settings.KILN_ALLOW_PRIVATE_URLS = True
        key = ProviderKey(team=team, provider=provider_id,
                          label=fields.pop("label", f"Sandbox {provider_id} {ProviderKey.objects.count() + 1}"),
                          base_url=sandbox.base_url(provider_id), is_active=True, **fields)
        key.set_api_key(api_key or f"sk-test-{provider_id}-0000")
        key.save()
        return key

    return make


# ---------------------------------------------------------------------------
# A real SMTP server on loopback (aiosmtpd): ``mailbox`` points Django's default mailer at
# it for one test and collects what arrives, parsed.


class Mailbox:
    """What the loopback SMTP server received, as ``email.message.EmailMessage`` objects."""

    def __init__(self):
        import threading

        self.messages: list = []
        self._arrived = threading.Condition()
        self.port = 0

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        import email
        import email.policy

        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def clear(self) -> None:
        with self._arrived:
            self.messages.clear()

    def wait(self, count: int = 1, timeout: float = 20) -> list:
        """The first ``count`` messages, waiting for them to arrive (a condition, not a sleep)."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout):
                raise AssertionError(f"expected {count} e-mail(s), got {len(self.messages)}")
            return list(self.messages)

    def to(self, address: str) -> list:
        return [m for m in self.messages if address in m["X-Envelope-To"]]

    @staticmethod
    def text(message) -> str:
        return message.get_body(("plain",)).get_content()

    @staticmethod
    def html(message) -> str:
        return message.get_body(("html",)).get_content()

    @classmethod
    def link(cls, message, path: str = "/accounts/") -> str:
        """The one link in the plain-text part whose path starts with ``path``."""
        import re

        links = sorted(set(re.findall(r"https?://\S+", cls.text(message))))
        found = [url for url in links if path in url]
        assert len(found) == 1, links
        return found[0]


@pytest.fixture(scope="session")
def smtp_server():
    import logging
    import socket

    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
    mailbox = Mailbox()
    with socket.socket() as probe:  # a free port (aiosmtpd's controller needs a fixed one)
        probe.bind(("127.0.0.1", 0))
        mailbox.port = probe.getsockname()[1]
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    yield mailbox
    controller.stop()


@pytest.fixture
def mailbox(smtp_server, settings):
    """Django's default mailer sends over SMTP to the loopback server; its mailbox, emptied."""
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                                    "OPTIONS": {"host": "127.0.0.1", "port": smtp_server.port, "timeout": 10}}}
    smtp_server.clear()
    yield smtp_server
    smtp_server.clear()
