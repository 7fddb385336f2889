"""The sandbox core: one loopback HTTP server that plays every provider API.

Werkzeug does the HTTP (its routing, request and response objects and its
threaded server); this module adds what a provider stand-in needs on top:
jobs that follow the clock, signed media, faults and the control API.
Provider modules (shark.py, shuttleai.py, ...) each expose
``register(app: ProviderApp) -> None`` and are mounted under
``/<provider_id>`` (see ``generations.sandbox.PROVIDERS``).

Starting it
-----------
    server = SandboxServer("127.0.0.1", 0, duration=1.0)   # port 0: pick a free one
    base = server.start()        # "http://127.0.0.1:PORT" (serves in a daemon thread)
    server.sandbox               # the shared state (Sandbox), usable in-process
    server.stop()
or ``python -m generations.sandbox --host 127.0.0.1 --port 8765 [--duration 8]``.

Writing a provider (the stable API R3 builds on)
------------------------------------------------
    from generations.sandbox.server import ProviderApp, Request, Response, json_response, Phase

    def envelope(status: int, message: str, code: str | None = None) -> Response:
        # the provider's own error body; ``code`` None: pick one from the status
        return json_response({"error": {"message": message, "type": code or "..."}}, status)

    def register(app: ProviderApp) -> None:
        app.error_envelope = envelope     # used for auth errors and status-only faults

        @app.route("POST", "/v1/things")               # full path: /<prefix>/v1/things
        def create(req: Request) -> Response:
            body = req.get_json(force=True, silent=True)   # None when the body is not JSON
            job = app.jobs.create(app.id, "video", body, prompt=body["prompt"],
                                  idempotency_key=req.headers.get("Idempotency-Key"))
            return json_response({"id": job.id}, 202)

        @app.get("/v1/things/<id>")                    # app.get / app.post / app.delete
        def show(req):
            job = app.jobs.poll(app.id, req.params["id"])   # None: unknown or vanished
            ...job.phase() -> Phase.QUEUED | RUNNING | SUCCEEDED | FAILED | CANCELLED
            ...req.media_url("image", width=1024, height=1024, text=job.prompt, fmt="png")

- Paths are Werkzeug rules, matched against the path after the prefix:
  ``<name>`` is one path segment (``[^/]+``), ``<regex("gen_[a-z0-9]+"):name>``
  one that matches the regex. A path no rule matches answers 404, a known path
  with another method 405, both in the provider's envelope.
- Routes check ``Authorization: Bearer <key>`` unless ``auth=False``: no key or
  the key ``invalid`` → 401, the key ``broke`` → 402, both in the provider's
  envelope (``app.error_envelope(status, message, "auth" | "credits")``; the
  third argument is a hint — map it to the provider's own type). Any other key
  is accepted; ``req.api_key`` holds it.
- ``Request`` is Werkzeug's (``method``, ``path``, ``args``, ``headers``,
  ``get_data()``, ``get_json()``, ``host_url``...) plus ``params`` (the rule's
  values), ``api_key``, ``server_url`` ("http://host:port" as the client
  addressed it), ``prefix_url`` ("http://host:port/shark"), ``app``, ``sandbox``
  and ``media_url(kind, ...)``.
- Responses are Werkzeug's ``Response``: ``json_response(obj, status=200, headers=None)``,
  ``bytes_response(data, content_type, status=200, headers=None)``,
  ``stream_response(chunks, content_type, status=200, headers=None)``
  (chunked transfer encoding, no Content-Length), ``empty_response(status)``.
  Every answer closes its connection (Werkzeug's server keeps none alive); the thread
  that answered it waits for the next connection (``_ReusedThreadsServer``).
- ``keywords(prompt)``: the set of sandbox keywords in a prompt: "moderate"
  (refuse at submit with the provider's moderation error), "fail" (the job
  fails with a generic provider error), "unsafe" (the job fails later with a
  moderation message), "slow" (JobStore makes the job take 5x longer).

Jobs (``app.jobs`` / ``sandbox.jobs``: a thread-safe ``JobStore``)
------------------------------------------------------------------
``create(provider, kind, params, *, prompt="", duration=None, idempotency_key=None,
fail=None, outputs=1, extra=None) -> SandboxJob``. Its ``phase()`` follows the
clock: QUEUED for the first 15 % of ``duration`` (default: the sandbox
setting; "[slow]" x5), RUNNING until ``duration``, then SUCCEEDED (or FAILED
with ``fail``, the message). ``progress()`` 0-100. Overrides (from code or the
control API): ``job.override(state, error=...)`` with state "queued" |
"running" (hold there), "succeeded" (finish now), "failed", "cancelled",
"vanished" (``get``/``poll`` return None: the provider answers 404 / UNKNOWN),
"auto" (back to the clock). ``job.raw_status``: when set (control API), the
provider module should send that string as its status (unknown-status tests).
``poll(provider, id)`` is ``get`` that also counts polls and records when a
poll first saw the job terminal. Every ``create`` counts a submission under
(provider, idempotency key or prompt): the control API shows duplicates.

Media
-----
``req.media_url(kind, width=, height=, text=, fmt=, seconds=, ttl=, variant=)``
(``variant``: the n-th output of one request, so outputs differ) → an
absolute signed URL ``/media/<token>.<ext>?exp=<unix>&sig=<hmac>`` (kind
"image": fmt png|jpeg|webp; kind "video": mp4). Signatures use a per-process
secret; an expired or bad signature answers 403. ``/media/big?bytes=N&exp=&sig=``
streams N bytes (an MP4 ``ftyp`` header + padding, chunked, no Content-Length).

Control API (JSON; no auth; never subject to faults)
----------------------------------------------------
- ``POST /_control/reset``: forget jobs, faults, request log; settings back to
  the defaults the server was started with.
- ``GET|POST /_control/settings`` (``POST /_control`` is the same): e.g.
  ``{"duration": 1.0, "media_ttl": 300, "shark_running_status": "in_progress",
  "sync_seconds": 0.0, "duration_range": [10, 120], "latency_range": [0.05, 0.2],
  "poll_latency": 0.2, "request_log": 100000}`` (``duration_range``: each new job takes a
  random duration in that range, for load tests; null: use ``duration``. ``latency_range``:
  every provider API request, media aside, is answered after a random delay in that range, as
  a real provider's network and queueing add, for load tests; null: at once. ``poll_latency``:
  every status request of a job waits that long before it answers, so two polls of one job at
  once show as overlapping intervals in the request log; ``request_log``: how many requests
  the log keeps); any key is stored (provider modules read
  ``app.settings.get(key, default)``). Answers the current settings.
- ``POST /_control/faults``: one fault or ``{"faults": [...]}``. A fault:
  ``{"path": regex (re.search on the full path, e.g. "^/shark/api/v1/videos$"),
  "method": "POST" (optional), "count": 1 (next N matching requests),
  "status": 429, "json": {...} | "body": "text", "message": "...",
  "headers": {"Retry-After": "7"}, "delay": seconds,
  "truncate": true (answer the first half of the body, Content-Length of the half:
  a complete but cut JSON) | "close" (declare the full length, send half, close),
  "reset": true (close the socket with RST instead of answering; the request
  is still handled unless "run" is false), "reset_after": N (send the real headers and N body bytes, then RST),
  "trickle": seconds | true (send the whole body a few bytes at a time, then pad
  with spaces until that many seconds — true: an hour — have passed; chunked),
  "trickle_interval": 0.1, "trickle_bytes": 16,
  "huge": bytes | true (stream that many bytes, true: 10 GiB, chunked),
  "run": bool (run the real handler first; default true unless status, json,
  body or huge is given — a reset/truncate after a real submit is how you test
  "the provider accepted but the answer was lost")}. A status-only fault is
  rendered in the provider's envelope. ``GET /_control/faults`` lists pending
  ones, ``DELETE /_control/faults`` clears them.
- ``GET /_control/jobs``: ``{"jobs": [{id, provider, kind, prompt, params,
  phase, created_at, ready_at, completed_at, first_seen_terminal_at, polls,
  submits, duration, error, raw_status, extra}], "submissions": [{provider,
  key, count}], "duplicates": [...same, count > 1]}``; times are Unix seconds;
  ``completed_at`` is when the sandbox made the job terminal (clock or override).
- ``POST /_control/jobs/<id>``: ``{"state": ..., "error": ..., "raw_status": ...}``.
- ``GET /_control/requests``: the last 5000 requests (the ``request_log``
  setting) ``{method, path, status, auth (bool: an Authorization header was
  sent), started, time, json}`` (``started``: when the request arrived,
  ``time``: when its answer was ready, Unix seconds); ``json`` is the
  request's JSON body as sent (strings over 200 characters cut, so inline media
  stays small; None when the body was not JSON): tests check the JSON types a
  client sends.
- ``GET /_control/big-url?bytes=N``: ``{"url": signed /media/big URL}``.
"""

from __future__ import annotations

import base64
import collections
import enum
import hashlib
import hmac
import json
import queue
import random
import re
import secrets
import socket
import struct
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, NamedTuple
from urllib.parse import urlencode

from werkzeug import wrappers
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import BaseConverter, Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler
from werkzeug.wrappers import Response

DEFAULT_SETTINGS: dict[str, Any] = {
    "duration": 8.0,       # seconds a job takes
    "media_ttl": 600.0,    # seconds a signed media URL lives
    "sync_seconds": 0.0,   # how long synchronous endpoints think before answering
    "duration_range": None,  # [low, high]: each job takes a random duration in it (overrides "duration")
    "latency_range": None,   # [low, high]: each provider API request waits a random time in it first
    "poll_latency": 0.0,   # seconds each status request (a poll) takes before it answers
    "request_log": 5000,   # requests the log keeps (the oldest go first)
}
QUEUED_FRACTION = 0.15
KEYWORDS = ("moderate", "fail", "unsafe", "slow")


def keywords(prompt: str | None) -> set[str]:
    """The sandbox keywords ("[moderate]", "[fail]", "[unsafe]", "[slow]") in a prompt."""
    text = (prompt or "").lower()
    return {word for word in KEYWORDS if f"[{word}]" in text}


# ---------------------------------------------------------------------------
# Requests and responses (Werkzeug's, with what a provider stand-in needs)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(obj, separators=(",", ":")).encode()
    return Response(body, status, headers, content_type="application/json")


def bytes_response(data: bytes, content_type: str, status: int = 200,
                   headers: dict[str, str] | None = None) -> Response:
    return Response(data, status, headers, content_type=content_type)


def stream_response(chunks: Iterable[bytes], content_type: str, status: int = 200,
                    headers: dict[str, str] | None = None) -> Response:
    """Sent as it comes, chunked: no Content-Length (Werkzeug only counts bytes it holds)."""
    return Response(chunks, status, headers, content_type=content_type)


def empty_response(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    response = Response(b"", status, headers)
    response.headers.pop("Content-Type", None)
    return response


def default_envelope(status: int, message: str, code: str | None = None) -> Response:
    return json_response({"error": {"message": message, "type": code or "error"}}, status)


class Request(wrappers.Request):
    """Werkzeug's request, plus the matched provider (``app``), the rule's values (``params``)
    and the shared state (``sandbox``)."""

    def __init__(self, environ: dict, sandbox: Sandbox):
        super().__init__(environ)
        self.sandbox = sandbox
        self.app: ProviderApp | None = None
        self.params: dict[str, str] = {}

    @property
    def api_key(self) -> str | None:
        value = self.headers.get("Authorization") or ""
        if value[:7].lower() == "bearer " and value[7:].strip():
            return value[7:].strip()
        return None

    @property
    def server_url(self) -> str:
        """``http://host:port`` as the client addressed the sandbox (its Host header)."""
        return self.host_url.rstrip("/")

    @property
    def prefix_url(self) -> str:
        return self.server_url + (self.app.prefix if self.app else "")

    def media_url(self, kind: str = "image", *, width: int = 1024, height: int = 1024, text: str = "",
                  fmt: str = "", seconds: float = 2.0, ttl: float | None = None, variant: int = 0) -> str:
        return self.sandbox.media_url(self.server_url, kind, width=width, height=height, text=text,
                                      fmt=fmt, seconds=seconds, ttl=ttl, variant=variant)


Handler = Callable[[Request], Response]


class RegexConverter(BaseConverter):
    """``<regex("gen_[A-Za-z0-9]+"):name>``: one path segment matching the regex (Werkzeug's
    documented way to add a converter)."""

    def __init__(self, url_map: Map, regex: str):
        super().__init__(url_map)
        self.regex = regex


class Endpoint(NamedTuple):
    handler: Handler
    auth: bool


class ProviderApp:
    """The routes of one provider, mounted under ``/<id>``: a Werkzeug ``Map`` of rules relative
    to the prefix. Rules are added by ``register()``, before the provider is mounted."""

    def __init__(self, sandbox: Sandbox, provider_id: str):
        self.sandbox = sandbox
        self.id = provider_id
        self.prefix = "/" + provider_id
        # No slash merging: "//" in a path is a 404, as on the providers, not a redirect.
        self.url_map = Map(converters={"regex": RegexConverter}, merge_slashes=False)
        self.error_envelope: Callable[..., Response] = default_envelope

    @property
    def jobs(self) -> JobStore:
        return self.sandbox.jobs

    @property
    def settings(self) -> Settings:
        return self.sandbox.settings

    def route(self, method: str, rule: str, *, auth: bool = True) -> Callable[[Handler], Handler]:
        """Register ``handler(req)`` for ``method`` and the Werkzeug ``rule`` (the path after the
        prefix; a GET rule answers HEAD too)."""

        def decorator(handler: Handler) -> Handler:
            self.url_map.add(Rule(rule, methods=[method.upper()], endpoint=Endpoint(handler, auth)))
            return handler
        return decorator

    def get(self, rule: str, **kw):
        return self.route("GET", rule, **kw)

    def post(self, rule: str, **kw):
        return self.route("POST", rule, **kw)

    def delete(self, rule: str, **kw):
        return self.route("DELETE", rule, **kw)

    def check_auth(self, req: Request) -> Response | None:
        """None when the bearer key is acceptable, else the provider's 401/402 response."""
        key = req.api_key
        if key is None:
            return self.error_envelope(401, "Missing API key. Send Authorization: Bearer <key>.", "auth")
        if key == "invalid":
            return self.error_envelope(401, "Invalid API key provided.", "auth")
        if key == "broke":
            return self.error_envelope(402, "Insufficient credits. Top up your balance to continue.", "credits")
        return None

    def dispatch(self, req: Request, subpath: str) -> Response:
        try:
            endpoint, params = self.url_map.bind("sandbox").match(subpath, req.method)
        except MethodNotAllowed:
            return self.error_envelope(405, f"Method {req.method} not allowed.", "invalid_request")
        except NotFound:
            return self.error_envelope(404, f"No route for {req.method} {req.path}.", "not_found")
        req.app, req.params = self, params
        if endpoint.auth and (refused := self.check_auth(req)):
            return refused
        return endpoint.handler(req)


# ---------------------------------------------------------------------------
# Settings, jobs


class Settings:
    def __init__(self, defaults: dict[str, Any]):
        self._defaults = dict(defaults)
        self._values = dict(defaults)
        self._lock = threading.Lock()

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self._values.get(key, default)

    def __getitem__(self, key: str) -> Any:
        with self._lock:
            return self._values[key]

    def update(self, values: dict[str, Any]) -> None:
        with self._lock:
            for key, value in values.items():
                if key in ("duration", "media_ttl", "sync_seconds", "poll_latency"):
                    value = float(value)
                    if value < 0:
                        raise ValueError(f"{key} must be >= 0")
                if key == "request_log":
                    value = int(value)
                    if value < 1:
                        raise ValueError("request_log must be >= 1")
                self._values[key] = value

    def reset(self) -> None:
        with self._lock:
            self._values = dict(self._defaults)

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._values)


class Phase(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    VANISHED = "vanished"


TERMINAL = {Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED}
_HOLD = {"queued": Phase.QUEUED, "running": Phase.RUNNING}


@dataclass
class SandboxJob:
    id: str
    provider: str
    kind: str
    params: dict
    prompt: str
    duration: float
    created_at: float                     # Unix time
    fail: str | None = None               # fail with this message when the clock runs out
    outputs: int = 1
    extra: dict = field(default_factory=dict)   # provider-specific data
    submit_key: str = ""
    state: str = "auto"                   # override: auto | queued | running | succeeded | failed | cancelled | vanished
    error: str = ""
    overridden_at: float | None = None
    raw_status: str | None = None
    polls: int = 0
    first_seen_terminal_at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def ready_at(self) -> float:
        return self.created_at + self.duration

    def phase(self, now: float | None = None) -> Phase:
        now = time.time() if now is None else now
        if self.state in _HOLD:
            return _HOLD[self.state]
        if self.state != "auto":
            return Phase(self.state)
        elapsed = now - self.created_at
        if elapsed >= self.duration:
            if self.fail is not None:
                self.error = self.error or self.fail
                return Phase.FAILED
            return Phase.SUCCEEDED
        if elapsed < self.duration * QUEUED_FRACTION:
            return Phase.QUEUED
        return Phase.RUNNING

    def progress(self, now: float | None = None) -> int:
        phase = self.phase(now)
        if phase == Phase.SUCCEEDED:
            return 100
        if phase in (Phase.QUEUED, Phase.FAILED, Phase.CANCELLED, Phase.VANISHED) or self.duration <= 0:
            return 0
        elapsed = (time.time() if now is None else now) - self.created_at
        return max(1, min(99, int(100 * elapsed / self.duration)))

    def override(self, state: str, error: str = "") -> None:
        if state not in {"auto", "queued", "running", *[p.value for p in Phase]}:
            raise ValueError(f"unknown state {state!r}")
        with self._lock:
            self.state = state
            self.overridden_at = time.time()
            if state == "failed":
                self.error = error or self.fail or "The job failed."
            elif error:
                self.error = error

    def completed_at(self) -> float | None:
        phase = self.phase()
        if phase not in TERMINAL:
            return None
        if self.state == "auto":
            return self.ready_at
        return self.overridden_at

    def as_dict(self, submits: int = 0) -> dict:
        return {
            "id": self.id, "provider": self.provider, "kind": self.kind, "prompt": self.prompt,
            "params": self.params, "phase": self.phase().value, "state": self.state,
            "created_at": self.created_at, "ready_at": self.ready_at, "completed_at": self.completed_at(),
            "first_seen_terminal_at": self.first_seen_terminal_at, "polls": self.polls,
            "submits": submits, "submit_key": self.submit_key, "duration": self.duration,
            "error": self.error or (self.fail if self.phase() == Phase.FAILED else ""),
            "raw_status": self.raw_status, "outputs": self.outputs, "extra": self.extra,
        }


class JobStore:
    """Thread-safe jobs whose status follows the clock."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._jobs: dict[str, SandboxJob] = {}
        self._submissions: collections.Counter = collections.Counter()
        self._lock = threading.Lock()

    def create(self, provider: str, kind: str, params: dict | None = None, *, prompt: str = "",
               duration: float | None = None, idempotency_key: str | None = None,
               fail: str | None = None, outputs: int = 1, extra: dict | None = None,
               job_id: str | None = None) -> SandboxJob:
        if duration is None:
            duration = self.default_duration()
        if "slow" in keywords(prompt):
            duration *= 5
        key = idempotency_key or prompt
        job = SandboxJob(id=job_id or str(uuid.uuid4()), provider=provider, kind=kind, params=dict(params or {}),
                         prompt=prompt, duration=duration, created_at=time.time(), fail=fail,
                         outputs=outputs, extra=dict(extra or {}), submit_key=key)
        with self._lock:
            self._jobs[job.id] = job
            self._submissions[(provider, key)] += 1
        return job

    def default_duration(self) -> float:
        """A new job's duration: the ``duration`` setting, or a random one in ``duration_range``."""
        spread = self.settings.get("duration_range")
        if spread:
            return random.uniform(float(spread[0]), float(spread[1]))
        return float(self.settings["duration"])

    def get(self, provider: str, job_id: str) -> SandboxJob | None:
        """The job, or None when unknown, of another provider, or vanished."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or job.provider != provider or job.state == "vanished":
            return None
        return job

    def find(self, job_id: str) -> SandboxJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def poll(self, provider: str, job_id: str) -> SandboxJob | None:
        latency = float(self.settings.get("poll_latency") or 0)
        if latency:
            time.sleep(latency)   # a slow status route: polls of one job by two clients at once overlap
        job = self.get(provider, job_id)
        if job is not None:
            with job._lock:
                job.polls += 1
                if job.first_seen_terminal_at is None and job.phase() in TERMINAL:
                    job.first_seen_terminal_at = time.time()
        return job

    def submissions(self, provider: str, key: str) -> int:
        with self._lock:
            return self._submissions[(provider, key)]

    def all(self) -> list[SandboxJob]:
        with self._lock:
            return list(self._jobs.values())

    def snapshot(self) -> dict:
        with self._lock:
            jobs = list(self._jobs.values())
            submissions = dict(self._submissions)
        rows = [{"provider": p, "key": k, "count": n} for (p, k), n in submissions.items()]
        return {
            "jobs": [j.as_dict(submissions.get((j.provider, j.submit_key), 0)) for j in jobs],
            "submissions": rows,
            "duplicates": [r for r in rows if r["count"] > 1],
        }

    def clear(self) -> None:
        with self._lock:
            self._jobs.clear()
            self._submissions.clear()


# ---------------------------------------------------------------------------
# Faults


@dataclass
class Fault:
    path: re.Pattern
    spec: dict
    method: str | None = None
    remaining: int = 1

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and bool(self.path.search(path))


class FaultQueue:
    def __init__(self):
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, spec: dict) -> None:
        if "path" not in spec:
            raise ValueError("a fault needs a path regex")
        count = int(spec.get("count", 1))
        if count < 1:
            raise ValueError("count must be >= 1")
        fault = Fault(re.compile(spec["path"]), dict(spec), (spec.get("method") or "").upper() or None, count)
        with self._lock:
            self._faults.append(fault)

    def take(self, method: str, path: str) -> dict | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault.spec
        return None

    def pending(self) -> list[dict]:
        with self._lock:
            return [{**f.spec, "remaining": f.remaining} for f in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


# ---------------------------------------------------------------------------
# The sandbox (shared state + top-level routing)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sandbox:
    """The shared state (jobs, settings, faults, request log) and the WSGI application.

    ``sandbox(environ, start_response)`` answers one request: ``/_control/...`` from
    ``control_map`` (never faulted), anything else through the next matching fault
    (``answer``) to ``/media/...``, ``/`` or the provider mounted at the path's first segment."""

    def __init__(self, settings: dict[str, Any] | None = None):
        self.settings = Settings({**DEFAULT_SETTINGS, **(settings or {})})
        self.jobs = JobStore(self.settings)
        self.faults = FaultQueue()
        self.apps: dict[str, ProviderApp] = {}
        self.secret = secrets.token_bytes(32)
        self.requests: collections.deque = collections.deque(maxlen=int(self.settings["request_log"]))
        # "/_control/settings/" is "/_control/settings": a test's trailing slash is no reason to fail.
        self.control_map = Map([
            Rule("/_control", endpoint="settings", methods=["GET", "POST"]),
            Rule("/_control/settings", endpoint="settings", methods=["GET", "POST"]),
            Rule("/_control/reset", endpoint="reset", methods=["POST"]),
            Rule("/_control/faults", endpoint="faults", methods=["GET", "POST", "DELETE"]),
            Rule("/_control/jobs", endpoint="jobs", methods=["GET"]),
            Rule("/_control/jobs/<job_id>", endpoint="job", methods=["GET", "POST"]),
            Rule("/_control/requests", endpoint="requests", methods=["GET"]),
            Rule("/_control/big-url", endpoint="big_url", methods=["GET"]),
        ], strict_slashes=False, merge_slashes=False)

    def mount(self, provider_id: str, register: Callable[[ProviderApp], None]) -> ProviderApp:
        app = ProviderApp(self, provider_id)
        register(app)
        self.apps[provider_id] = app
        return app

    def reset(self) -> None:
        self.jobs.clear()
        self.faults.clear()
        self.settings.reset()
        self.requests = collections.deque(maxlen=int(self.settings["request_log"]))

    # -- signed media ---------------------------------------------------------

    def sign(self, name: str, query: dict[str, str]) -> str:
        payload = name + "?" + urlencode(sorted((k, v) for k, v in query.items() if k != "sig"))
        return _b64(hmac.new(self.secret, payload.encode(), hashlib.sha256).digest()[:18])

    def signed_path(self, name: str, ttl: float | None = None, **query: Any) -> str:
        ttl = float(self.settings["media_ttl"]) if ttl is None else ttl
        values = {k: str(v) for k, v in query.items()}
        values["exp"] = str(int(time.time() + ttl))
        values["sig"] = self.sign(name, values)
        return f"/media/{name}?{urlencode(values)}"

    def verify(self, name: str, query: dict[str, str]) -> bool:
        expected = self.sign(name, query)
        if not hmac.compare_digest(expected, query.get("sig", "")):
            return False
        try:
            return int(query.get("exp", "0")) >= time.time()
        except ValueError:
            return False

    def media_url(self, root_url: str, kind: str = "image", *, width: int = 1024, height: int = 1024,
                  text: str = "", fmt: str = "", seconds: float = 2.0, ttl: float | None = None,
                  variant: int = 0) -> str:
        words = " ".join(text.split()[:6])[:60]
        if kind == "video":
            spec = {"k": "v", "w": int(width), "h": int(height), "t": words, "s": float(seconds)}
            ext = "mp4"
        else:
            fmt = (fmt or "png").lower().replace("jpg", "jpeg")
            spec = {"k": "i", "w": int(width), "h": int(height), "t": words, "f": fmt}
            ext = "jpg" if fmt == "jpeg" else fmt
        if variant:
            spec["n"] = int(variant)
        token = _b64(json.dumps(spec, separators=(",", ":")).encode())
        return root_url + self.signed_path(f"{token}.{ext}", ttl)

    def serve_media(self, req: Request, name: str) -> Response:
        from generations.sandbox import media

        query = req.args.to_dict()
        if not self.verify(name, query):
            return bytes_response(b"<Error><Code>AccessDenied</Code><Message>Request has expired or the signature "
                                  b"does not match.</Message></Error>", "application/xml", 403)
        if name == "big":
            try:
                size = int(query.get("bytes", "0"))
            except ValueError:
                size = 0
            return stream_response(_big_file(size), "video/mp4")
        token, _, ext = name.partition(".")
        try:
            spec = json.loads(_unb64(token))
            if spec["k"] == "v":
                data = media.video_bytes(spec["w"], spec["h"], spec["t"], float(spec.get("s", 2.0)),
                                         variant=int(spec.get("n", 0)))
            else:
                data = media.image_bytes(spec["w"], spec["h"], spec["t"], spec.get("f", "png"),
                                         variant=int(spec.get("n", 0)))
        except (ValueError, KeyError, TypeError):
            return bytes_response(b"<Error><Code>NoSuchKey</Code></Error>", "application/xml", 404)
        return bytes_response(data, media.CONTENT_TYPES.get(ext, "application/octet-stream"),
                              headers={"Cache-Control": "private, max-age=60"})

    # -- the WSGI application ---------------------------------------------------

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        req = Request(environ, self)
        if req.path == "/_control" or req.path.startswith("/_control/"):
            response = self.control(req)
        else:
            response = self.answer(req)
        # Werkzeug writes reason phrases in capitals ("502 BAD GATEWAY"); providers send the
        # standard ones, and Kiln shows them to users ("HTTP 502 Bad Gateway").
        if response.status_code in _PHRASES:
            response.status = f"{response.status_code} {_PHRASES[response.status_code]}"
        return response(environ, start_response)

    def dispatch(self, req: Request) -> Response:
        """The answer to a provider-side request, faults aside."""
        path = req.path
        if path.startswith("/media/"):
            return self.serve_media(req, path[len("/media/"):])
        if path == "/" or path == "":
            return json_response({"sandbox": "kiln", "providers": sorted(self.apps)})
        provider_id, _, rest = path.lstrip("/").partition("/")
        app = self.apps.get(provider_id)
        if app is None:
            return json_response({"error": {"message": f"No sandbox provider at /{provider_id}.",
                                            "type": "not_found"}}, 404)
        req.app = app
        return app.dispatch(req, "/" + rest)

    def answer(self, req: Request) -> Response:
        """``dispatch`` with the next matching fault applied, logged in ``requests``.

        Raises ``ResetConnection`` for a ``reset`` fault; a ``reset_after`` answer raises it
        while it is being sent."""
        started = time.time()
        fault = self.faults.take(req.method, req.path)
        latency = self.settings.get("latency_range")
        if latency and not req.path.startswith("/media/"):
            time.sleep(random.uniform(float(latency[0]), float(latency[1])))
        entry = {"method": req.method, "path": req.path, "auth": bool(req.headers.get("Authorization")),
                 "started": started}
        try:
            response = self._respond(req, fault)
        except ResetConnection:
            self.requests.append({**entry, "status": 0, "time": time.time(), "fault": True})
            raise
        sent = req.get_json(force=True, silent=True) if req.get_data() else None
        self.requests.append({**entry, "status": response.status_code, "time": time.time(), "fault": bool(fault),
                              "json": _loggable(sent)})
        return self._faulty(req, response, fault) if fault else response

    def _respond(self, req: Request, fault: dict | None) -> Response:
        if not fault:
            return self._run(req)
        replaces = any(k in fault for k in ("status", "json", "body", "huge"))
        run = bool(fault.get("run", not replaces))
        response = self._run(req) if run else None
        if fault.get("reset") and not fault.get("reset_after"):
            raise ResetConnection
        if "status" in fault or "json" in fault or "body" in fault:
            status = int(fault.get("status", 200))
            if "json" in fault:
                response = json_response(fault["json"], status)
            elif "body" in fault:
                response = bytes_response(str(fault["body"]).encode(), fault.get("content_type", "text/html"), status)
            else:
                envelope = req.app.error_envelope if req.app else default_envelope
                if req.app is None:
                    provider_id = req.path.lstrip("/").partition("/")[0]
                    app = self.apps.get(provider_id)
                    envelope = app.error_envelope if app else default_envelope
                response = envelope(status, fault.get("message") or _reason(status), _status_hint(status))
        if response is None:
            response = json_response({}, 200)
        for name, value in (fault.get("headers") or {}).items():
            response.headers[name] = str(value)
        return response

    def _run(self, req: Request) -> Response:
        try:
            return self.dispatch(req)
        except Exception as exc:  # a sandbox bug: answer 500 so the test sees it
            traceback.print_exc()
            return json_response({"error": {"message": f"sandbox error: {exc!r}", "type": "server_error"}}, 500)

    def _faulty(self, req: Request, response: Response, fault: dict) -> Response:
        """The answer as the fault sends it: late, huge, cut, reset part-way or trickled."""
        delay = float(fault.get("delay") or 0)
        if delay:
            time.sleep(delay)
        if fault.get("huge"):
            size = 10 * 1024**3 if fault["huge"] is True else int(fault["huge"])
            content_type = "video/mp4" if req.path.startswith("/media/") else "application/json"
            chunks = _big_file(size) if content_type == "video/mp4" else _huge_json(size)
            return stream_response(chunks, content_type, response.status_code)
        body = response.get_data()
        if fault.get("reset_after") is not None and fault.get("reset_after") is not False:
            # The real headers and Content-Length, the first N bytes, then RST.
            response.response = _then_reset(body[: int(fault["reset_after"])])
            response.headers["Content-Length"] = str(len(body))
            return response
        if fault.get("truncate"):
            half = body[: len(body) // 2]
            response.set_data(half)      # Content-Length of the half: a complete, cut answer
            if fault["truncate"] == "close":
                # The full length declared, half sent, then the connection ends (FIN).
                response.headers["Content-Length"] = str(len(body))
            return response
        if fault.get("trickle"):
            seconds = 3600.0 if fault["trickle"] is True else float(fault["trickle"])
            interval = float(fault.get("trickle_interval", 0.1))
            step = max(1, int(fault.get("trickle_bytes", 16)))
            response.response = _trickle(body, seconds, interval, step)
            response.headers.pop("Content-Length", None)    # chunked
            return response
        return response

    # -- the control API -------------------------------------------------------

    def control(self, req: Request) -> Response:
        data = req.get_data()
        body = req.get_json(force=True, silent=True) if data else {}
        if data and not isinstance(body, dict):
            return json_response({"error": "the body must be a JSON object"}, 400)
        try:
            endpoint, params = self.control_map.bind("sandbox").match(req.path, req.method)
        except (NotFound, MethodNotAllowed) as exc:
            return json_response({"error": f"unknown control route {req.method} {req.path}"}, exc.code)
        try:
            return getattr(self, f"_control_{endpoint}")(req, body, **params)
        except (ValueError, TypeError, re.error) as exc:
            return json_response({"error": str(exc)}, 400)

    def _control_reset(self, req: Request, body: dict) -> Response:
        self.reset()
        return json_response({"ok": True, "settings": self.settings.as_dict()})

    def _control_settings(self, req: Request, body: dict) -> Response:
        if req.method == "POST":
            self.settings.update(body)
            if "request_log" in body:
                self.requests = collections.deque(self.requests, maxlen=int(self.settings["request_log"]))
        return json_response(self.settings.as_dict())

    def _control_faults(self, req: Request, body: dict) -> Response:
        if req.method == "POST":
            for spec in body.get("faults", [body]):
                self.faults.add(spec)
        elif req.method == "DELETE":
            self.faults.clear()
        return json_response({"faults": self.faults.pending()})

    def _control_jobs(self, req: Request, body: dict) -> Response:
        return json_response(self.jobs.snapshot())

    def _control_job(self, req: Request, body: dict, job_id: str) -> Response:
        job = self.jobs.find(job_id)
        if job is None:
            return json_response({"error": "no such job"}, 404)
        if req.method == "POST":
            if "raw_status" in body:
                job.raw_status = body["raw_status"]
            if "state" in body:
                job.override(body["state"], body.get("error", ""))
        submits = self.jobs.submissions(job.provider, job.submit_key)
        return json_response(job.as_dict(submits))

    def _control_requests(self, req: Request, body: dict) -> Response:
        return json_response({"requests": list(self.requests)})

    def _control_big_url(self, req: Request, body: dict) -> Response:
        size = int(req.args.get("bytes", "0"))
        ttl = float(req.args["ttl"]) if "ttl" in req.args else None
        return json_response({"url": req.server_url + self.signed_path("big", ttl, bytes=size)})


def _big_file(size: int) -> Iterator[bytes]:
    from generations.sandbox.media import big_mp4_prefix

    head = big_mp4_prefix()
    remaining = max(0, size)
    if remaining <= len(head):
        yield head[:remaining]
        return
    yield head
    remaining -= len(head)
    # Then one box holding the padding (an 'mdat' with a 64-bit size when needed).
    box = struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", remaining) if remaining > 0xFFFFFFFF - 16 \
        else struct.pack(">I", remaining) + b"free"
    box = box[:remaining]
    yield box
    remaining -= len(box)
    block = b"\0" * 65536
    while remaining > 0:
        chunk = block if remaining >= len(block) else block[:remaining]
        yield chunk
        remaining -= len(chunk)


def _huge_json(size: int) -> Iterator[bytes]:
    head = b'{"data":"'
    yield head
    remaining = size - len(head)
    block = b"x" * 65536
    while remaining > 0:
        chunk = block if remaining >= len(block) else block[:remaining]
        yield chunk
        remaining -= len(chunk)


def _then_reset(sent: bytes) -> Iterator[bytes]:
    yield sent
    raise ResetConnection


def _trickle(body: bytes, seconds: float, interval: float, step: int) -> Iterator[bytes]:
    """The whole body ``step`` bytes at a time, then spaces, until ``seconds`` have passed."""
    until = time.monotonic() + seconds
    offset = 0
    while offset < len(body) or time.monotonic() < until:
        yield body[offset:offset + step] if offset < len(body) else b" " * step
        offset += step
        time.sleep(interval)


def _loggable(value: Any) -> Any:
    """A request's JSON with its types kept and long strings (inline media) cut to 200 characters."""
    if isinstance(value, str):
        return value if len(value) <= 200 else value[:200] + "…"
    if isinstance(value, list):
        return [_loggable(v) for v in value]
    if isinstance(value, dict):
        return {k: _loggable(v) for k, v in value.items()}
    return value


_PHRASES = {status.value: status.phrase for status in HTTPStatus}


def _reason(status: int) -> str:
    return {
        400: "Bad request.", 401: "Invalid API key provided.", 402: "Insufficient credits.",
        403: "Forbidden.", 404: "Not found.", 409: "Conflict.", 429: "Rate limit exceeded. Please slow down.",
        500: "Internal server error.", 502: "Upstream provider error.", 503: "Service temporarily unavailable.",
        504: "The upstream provider timed out.",
    }.get(status, f"HTTP {status}")


def _status_hint(status: int) -> str:
    """A provider-neutral hint for status-only faults; envelope functions map it to their own type."""
    return {400: "invalid_request", 401: "auth", 402: "credits", 403: "forbidden", 404: "not_found",
            409: "conflict", 429: "rate_limit", 500: "server", 502: "upstream", 503: "unavailable",
            504: "timeout"}.get(status, "server" if status >= 500 else "invalid_request")


# ---------------------------------------------------------------------------
# The server: Werkzeug's threaded one, with what the faults need


class ResetConnection(ConnectionResetError):
    """Raised by the application (or while its answer is sent) to end the connection with a
    TCP reset. Werkzeug takes a ConnectionError as a dropped connection and hands it to
    ``connection_dropped``, where the handler resets the socket."""


class _RequestHandler(WSGIRequestHandler):
    timeout = 120   # a client that connects and sends nothing is let go after this

    def setup(self) -> None:
        super().setup()
        # Headers, chunk sizes and bodies go out in separate writes: without this, Nagle's
        # algorithm and delayed ACKs add ~40 ms to answers.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Quiet: a line per poll would drown ``make run``'s output (errors are still logged)."""

    def connection_dropped(self, error: BaseException, environ: dict | None = None) -> None:
        if not isinstance(error, ResetConnection):
            return
        # Close with RST (SO_LINGER 0) and no FIN: the client sees a connection reset. The socket's
        # file (rfile) holds a reference to it: both must close for the reset to go out now.
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass


class _ReusedThreadsServer(BaseWSGIServer):
    """Werkzeug's WSGI server, each connection answered by a thread that is then kept for the next.

    Werkzeug's ``ThreadedWSGIServer`` starts a thread per connection, and since its server closes
    every connection after one answer, that is a thread per request. Starting one waits until the
    new thread has run: on a busy host that wait, in front of every request, cost more than the
    request itself (docs/performance.md). Threads are daemons, like Werkzeug's, so a client that
    holds a connection open (a trickled answer) never keeps the process from exiting; the pool
    grows when every thread is busy and never queues a connection behind one."""

    multithread = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._connections: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads = 0

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        with self._lock:
            start = not self._idle
            if start:
                self._threads += 1
            else:
                self._idle -= 1
        if start:
            threading.Thread(target=self._answer_connections, name="kiln-sandbox-request", daemon=True).start()
        self._connections.put((request, client_address))

    def _answer_connections(self) -> None:
        while (item := self._connections.get()) is not None:
            request, client_address = item
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)
            with self._lock:
                self._idle += 1

    def server_close(self) -> None:
        super().server_close()
        with self._lock:
            threads, self._threads, self._idle = self._threads, 0, 0
        for _ in range(threads):   # each thread ends at its next wait for a connection
            self._connections.put(None)


class SandboxServer:
    """``SandboxServer(host, port, providers=None, duration=None, **settings).start() -> base URL``.

    ``providers``: provider ids to mount (default: every module in
    ``generations.sandbox.PROVIDERS`` that exists)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, providers: Iterable[str] | None = None,
                 duration: float | None = None, **settings: Any):
        from generations.sandbox import load_providers

        if duration is not None:
            settings["duration"] = duration
        self.sandbox = Sandbox(settings)
        for provider_id, register in load_providers(providers).items():
            self.sandbox.mount(provider_id, register)
        self.httpd: BaseWSGIServer = _ReusedThreadsServer(host, port, self.sandbox, handler=_RequestHandler)
        self.host, self.port = self.httpd.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="kiln-sandbox", daemon=True)
        self._thread.start()
        return self.url

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.5)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)
