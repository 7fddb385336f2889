"""A team's webhook receiver is someone else's server: a slow or trickling one holds a
delivery for at most its deadline, and only the threads of the webhooks queue, never the
worker that submits and polls every team's jobs."""

from __future__ import annotations

import socket
import threading
import time

import httpcore
import pytest
from django.conf import settings

from generations.providers import http
from project.runtime.management.commands.runkiln import kiln_children


@pytest.fixture
def trickler():
    """A receiver that answers a status line, then one header byte a second for 8 s."""
    stop = threading.Event()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve():
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        end = time.monotonic() + 8
        while not stop.is_set() and time.monotonic() < end:
            try:
                conn.sendall(b"X")
            except OSError:
                return
            stop.wait(1)
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    stop.set()
    server.close()


def test_a_receiver_trickling_its_headers_is_cut_at_the_deadline(settings, trickler):
    settings.KILN_ALLOW_PRIVATE_URLS = True
    start = time.monotonic()
    with pytest.raises(http.DownloadError, match="did not answer in time"):
        http.post_webhook(trickler, b"{}", {"Content-Type": "application/json"}, deadline_seconds=2.0)
    # Each byte arrives within httpx's per-read timeout; only the whole request's deadline stops it.
    assert time.monotonic() - start < 4


def test_deliveries_have_their_own_queue_and_make_run_consumes_it_apart_from_the_job_worker():
    routes = settings.CELERY_TASK_ROUTES
    for task in ("generations.tasks.deliver_webhook", "generations.tasks.deliver_due_webhooks"):
        assert routes[task]["queue"] == "webhooks", task
    queues = {child.name: child.argv[child.argv.index("-Q") + 1].split(",")
              for child in kiln_children(8000, 8765) if "-Q" in child.argv}
    assert "webhooks" in queues["downloads"]
    assert "webhooks" not in queues["worker"]   # the submits and polls of every team's jobs


def test_a_2xx_whose_body_trickles_past_the_deadline_is_still_the_receivers_answer(settings):
    # A 200 is the receiver's acknowledgement: retrying it would send the event twice.
    settings.KILN_ALLOW_PRIVATE_URLS = True
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve():
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for _ in range(4):
            time.sleep(0.5)
            try:
                conn.sendall(b"o")
            except OSError:
                return
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    try:
        answer = http.post_webhook(url, b"{}", {}, deadline_seconds=1.0)
    finally:
        server.close()
    assert answer.status_code == 200


def test_the_webhook_deadline_bounds_connecting_to_a_receiver_with_many_dead_addresses(settings, monkeypatch):
    settings.KILN_ALLOW_PRIVATE_URLS = True
    monkeypatch.setattr(http, "_checked_addresses", lambda host, port, policy: [f"192.0.2.{i}" for i in range(1, 9)])
    attempts = []

    def blackholed(self, host, port, timeout=None, local_address=None, socket_options=None):
        attempts.append(timeout)
        time.sleep(min(timeout, 0.5))        # a SYN nobody answers (cut short to keep the test quick)
        raise httpcore.ConnectTimeout("timed out")

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", blackholed)
    http.reset_client()
    start = time.monotonic()
    with pytest.raises(http.DownloadError):
        http.post_webhook("http://hooks.example.com/kiln", b"{}", {}, deadline_seconds=1.0)
    elapsed = time.monotonic() - start
    http.reset_client()
    # Before: each address got the full 5 s connect timeout, and the loop went on past the deadline.
    assert elapsed < 1.5 and all(t <= 1.0 for t in attempts), (elapsed, attempts)
