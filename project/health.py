"""``/healthz``: is this web process able to serve? The database and the broker, checked.

A load balancer asks every second or so, from an address and with a ``Host`` Kiln does not know,
often over plain HTTP. So the answer comes from a middleware placed first: before the HTTPS
redirect, host validation, sessions, authentication, CSRF and rate limits, none of which a probe
should meet. Each check is one round trip on a connection the process keeps (``SELECT 1`` on
Django's persistent connection, ``PING`` on a pooled Redis client), so an answer costs well
under a millisecond of work (bench/healthz.py).

- 200 ``{"database": "ok", "broker": "ok"}`` when both answer;
- 503 with ``"down"`` for each that does not. The reason (which may name a host or hold a URL)
  goes to the log, never into the answer, and only when the state changes: a load balancer
  asking every second must not write a line a second, nor Django's "Service Unavailable"
  request log.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

from django.db import connection
from django.http import HttpResponse

logger = logging.getLogger(__name__)

PATHS = ("/healthz", "/healthz/")
TIMEOUT_SECONDS = 2.0  # a broker that does not answer within this is down (the LB has its own timeout too)


def check_database() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        connection.close()  # the next probe (or request) reconnects instead of reusing a broken connection
        raise


_redis_clients: dict[str, object] = {}
_redis_lock = threading.Lock()


def _redis(url: str):
    with _redis_lock:
        if url not in _redis_clients:
            import redis

            _redis_clients[url] = redis.Redis.from_url(url, socket_timeout=TIMEOUT_SECONDS,
                                                       socket_connect_timeout=TIMEOUT_SECONDS)
        return _redis_clients[url]


def check_broker() -> None:
    """The broker Celery sends to, as configured (Celery prefers ``CELERY_BROKER_URL`` from the
    environment): Redis answers ``PING``; the embedded broker's folders exist and are writable; any
    other transport (RabbitMQ) gets a connection through kombu."""
    from project.celery import app

    url = app.conf.broker_url or ""
    if url.startswith(("redis://", "rediss://", "unix://")):
        _redis(url).ping()
    elif url.startswith("filesystem://"):
        options = app.conf.broker_transport_options or {}
        for key in ("data_folder_in", "data_folder_out"):
            folder = Path(options.get(key) or url.removeprefix("filesystem://"))
            if not (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)):
                raise OSError(f"the broker folder {folder} is missing or not writable")
    else:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=TIMEOUT_SECONDS)


CHECKS = {"database": check_database, "broker": check_broker}
_last_state: dict[str, str] = {}


def health() -> dict[str, str]:
    state = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:
            state[name] = "down"
            if _last_state.get(name) != "down":
                logger.error("healthz: the %s is down (%s: %s)", name, type(exc).__name__, exc)
        else:
            state[name] = "ok"
            if _last_state.get(name) == "down":
                logger.warning("healthz: the %s is back", name)
    _last_state.update(state)
    return state


class HealthCheckMiddleware:
    """Answers ``/healthz`` itself; every other request passes through untouched."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info not in PATHS:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
        else:
            state = health()
            response = HttpResponse(json.dumps(state), content_type="application/json",
                                    status=200 if all(v == "ok" for v in state.values()) else 503)
        response["Cache-Control"] = "no-store"
        response._has_been_logged = True  # not one "Service Unavailable" line per probe (see above)
        return response
