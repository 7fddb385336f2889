"""A real webhook receiver on loopback (``http.server`` in a thread) that answers from a script:
``receiver.script(500, "close", "hang", 200)`` answers the next requests so, then 200. Each
request it got is kept (headers, body, when), and ``wait(n)`` waits on a condition for them."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from generations.team_webhooks import outbox
from generations.team_webhooks.models import WebhookEndpoint, new_secret


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float              # time.time() when it arrived
    answered: int | str


class Receiver:
    def __init__(self):
        self.requests: list[Received] = []
        self._script: list[int | str] = []
        self._arrived = threading.Condition()
        self.release = threading.Event()  # ends a "hang"
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._arrived:
                    answer = receiver._script.pop(0) if receiver._script else 200
                    receiver.requests.append(Received({k.lower(): v for k, v in self.headers.items()}, body,
                                                      time.time(), answer))
                    receiver._arrived.notify_all()
                if answer == "close":  # the connection dropped without an answer
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if answer == "hang":  # no answer until the client gives up (or the test ends)
                    receiver.release.wait(30)
                    self.close_connection = True
                    return
                payload = b'{"ok": true}' if 200 <= int(answer) < 300 else b"receiver says no " * 100
                self.send_response(int(answer))
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/kiln"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def script(self, *answers: int | str) -> None:
        with self._arrived:
            self._script = list(answers)

    def wait(self, count: int = 1, timeout: float = 20) -> list[Received]:
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.requests) >= count, timeout=timeout):
                raise AssertionError(f"expected {count} webhook(s), got {len(self.requests)}")
            return list(self.requests)

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    """A receiver on loopback; private addresses allowed (as the sandbox has them) unless a test says otherwise."""
    settings.KILN_ALLOW_PRIVATE_URLS = True
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def endpoint_for(owner):
    """endpoint_for(team, url, events=(...)) -> (WebhookEndpoint, secret)."""

    def make(team, url, events=("generation.succeeded", "generation.failed", "generation.cancelled"), **fields):
        secret = new_secret()
        endpoint = WebhookEndpoint(team=team, url=url, events=list(events), created_by=owner, **fields)
        endpoint.set_secret(secret)
        endpoint.save()
        return endpoint, secret

    return make


@pytest.fixture
def woken(monkeypatch):
    """The deliveries whose worker was woken (after their transaction committed), instead of a broker."""
    pks: list[int] = []
    monkeypatch.setattr(outbox, "wake", lambda pk, countdown=None: pks.append(pk))
    return pks
