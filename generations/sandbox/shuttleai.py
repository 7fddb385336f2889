"""The ShuttleAI sandbox: Sora jobs under ``/shuttleai`` (``seeds/shuttleai-videos.txt``).

A key's base URL is ``<sandbox>/shuttleai``, which plays the host
``https://api.shuttleai.com``: every route is served at its documented path under
``/v1/video/generations`` (the seed's base), and also straight under the prefix, as it was
before Kiln added the documented path to a host:

- ``POST /jobs`` ``{prompt, model: "sora", width, height, n_seconds}`` →
  ``{id: "task_…", status: "queued", created_at}``; validation errors are
  400s in ShuttleAI's envelope ``{"error": {"message", "type", "code"}}``.
- ``GET /jobs/{id}``: the job object (``object: "video.generation.job"``,
  ``status``, ``created_at``, ``finished_at``, ``expires_at``,
  ``generations[]``, ``prompt``, ``model``, ``n_variants``, ``n_seconds``,
  ``width``, ``height``, ``failure_reason``). Over the job's duration the
  status walks ``queued`` → ``preprocessing`` → ``running`` → ``processing``
  → ``succeeded``. Each generation has ``id`` ``gen_…`` and
  ``output.video_url``: a signed, expiring media URL on the "CDN" host (the
  other loopback name: ``localhost`` when the API is reached as
  ``127.0.0.1`` and vice versa), so a client that sends its key to the CDN
  is caught by ``/_control/requests`` (``auth``).
- ``GET /{gen_id}/content/video`` (the key is required): the same MP4.
- Unknown job → 404. No cancel route (any other method → 405).

Prompt keywords: ``[moderate]`` fails early with ``failure_reason``
``input_moderation``; ``[unsafe]`` fails at the end with
``output_moderation``; ``[fail]`` fails with ``internal_error``; ``[slow]``
takes 5x longer.

Settings (``POST /_control/settings``): ``shuttleai_omit_video_url`` (true:
finished generations carry no ``output.video_url``, only the content
endpoint has the video), ``shuttleai_rpm`` (requests per minute per key on
``POST /jobs``; above it a 429 with ``Retry-After``), ``shuttleai_variants``
(generations per job, default 1). A control override ``state: "failed"``
fails with ``internal_error`` unless the job had another reason.
"""

from __future__ import annotations

import collections
import secrets
import threading
import time
from urllib.parse import urlsplit

from generations.sandbox.server import (
    Phase,
    ProviderApp,
    Request,
    Response,
    bytes_response,
    json_response,
    keywords,
)

DIMENSIONS = (480, 720, 854, 1080, 1280, 1920)
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"

_TYPES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    402: ("insufficient_quota", "insufficient_balance"),
    403: ("permission_error", "forbidden"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    423: ("locked_error", "resource_locked"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    500: ("server_error", "internal_error"),
    503: ("service_unavailable_error", "service_unavailable"),
}


def envelope(status: int, message: str, code: str | None = None) -> Response:
    """ShuttleAI's error body: ``{"error": {"message", "type", "code"}}``."""
    error_type, default_code = _TYPES.get(status, ("server_error" if status >= 500 else "invalid_request_error",
                                                   "error"))
    hints = {"auth": "invalid_api_key", "credits": "insufficient_balance", "rate_limit": "rate_limit_exceeded"}
    return json_response({"error": {"message": message, "type": error_type,
                                    "code": hints.get(code or "", default_code)}}, status)


def _ulid(prefix: str) -> str:
    return prefix + "01" + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def cdn_root(req: Request) -> str:
    """The media host as a CDN: the other loopback name than the one the API was reached by."""
    parts = urlsplit(req.server_url)
    host = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}.get(parts.hostname or "", parts.hostname or "")
    return f"{parts.scheme}://{host}:{parts.port}" if parts.port else f"{parts.scheme}://{host}"


def _walk_status(phase: Phase, progress: int) -> str:
    if phase == Phase.QUEUED:
        return "queued"
    if phase == Phase.RUNNING:
        if progress < 35:
            return "preprocessing"
        if progress < 80:
            return "running"
        return "processing"
    return phase.value


def register(app: ProviderApp) -> None:
    app.error_envelope = envelope
    generation_jobs: dict[str, str] = {}       # gen id -> job id
    recent: dict[str, collections.deque] = collections.defaultdict(collections.deque)
    lock = threading.Lock()

    def rate_limited(req: Request) -> Response | None:
        rpm = app.settings.get("shuttleai_rpm")
        if not rpm:
            return None
        now = time.time()
        with lock:
            window = recent[req.api_key or ""]
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= int(rpm):
                wait = max(1, int(window[0] + 60 - now) + 1)
                response = envelope(429, f"Rate limit reached: your plan allows {int(rpm)} requests per minute.",
                                    "rate_limit")
                response.headers["Retry-After"] = str(wait)
                return response
            window.append(now)
        return None

    @app.post("/jobs")
    @app.post("/v1/video/generations/jobs")  # the documented path: a key's base URL may be the host
    def create(req: Request) -> Response:
        if limited := rate_limited(req):
            return limited
        body = req.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            return envelope(400, "The request body must be a JSON object.")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return envelope(400, "prompt is required.")
        model = body.get("model", "sora")
        if model != "sora":
            return envelope(400, f"Model '{model}' is not supported. Only sora is supported.", "model_not_found")
        for name in ("width", "height"):
            value = body.get(name)
            if value is None:
                return envelope(400, f"{name} is required.")
            if isinstance(value, bool) or not isinstance(value, int) or value not in DIMENSIONS:
                return envelope(400, f"Invalid {name} {value!r}. Allowed: 480, 720, 854, 1080, 1280, 1920.")
        seconds = body.get("n_seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= 20:
            return envelope(400, f"Invalid n_seconds {seconds!r}. Min 1, Max 20.")

        words = keywords(prompt)
        reason, fail, duration = None, None, None
        if "moderate" in words:
            reason, fail = "input_moderation", "Your prompt was flagged by the content filter."
            duration = float(app.settings["duration"]) * 0.3
        elif "unsafe" in words:
            reason, fail = "output_moderation", "The generated video was flagged by the content filter."
        elif "fail" in words:
            reason, fail = "internal_error", "An internal error occurred while generating the video."
        variants = max(1, min(4, int(app.settings.get("shuttleai_variants", 1) or 1)))
        gen_ids = [_ulid("gen_") for _ in range(variants)]
        job = app.jobs.create(app.id, "video", {"width": body["width"], "height": body["height"],
                                                "n_seconds": seconds, "model": "sora"},
                              prompt=prompt, duration=duration, fail=fail, outputs=variants,
                              extra={"failure_reason": reason, "gen_ids": gen_ids},
                              idempotency_key=req.headers.get("Idempotency-Key"), job_id=_ulid("task_"))
        with lock:
            for gen_id in gen_ids:
                generation_jobs[gen_id] = job.id
        return json_response({"id": job.id, "status": "queued", "created_at": int(job.created_at)})

    @app.get("/jobs/<id>")
    @app.get("/v1/video/generations/jobs/<id>")
    def show(req: Request) -> Response:
        job = app.jobs.poll(app.id, req.params["id"])
        if job is None:
            return envelope(404, f"Job '{req.params['id']}' not found.")
        phase = job.phase()
        status = job.raw_status or _walk_status(phase, job.progress())
        width, height = job.params["width"], job.params["height"]
        finished = job.completed_at()
        payload = {
            "object": "video.generation.job",
            "id": job.id,
            "status": status,
            "created_at": int(job.created_at),
            "finished_at": int(finished) if finished else None,
            "expires_at": int(finished + 86400) if finished else None,
            "generations": [],
            "prompt": job.prompt,
            "model": "sora",
            "n_variants": job.outputs,
            "n_seconds": job.params["n_seconds"],
            "height": height,
            "width": width,
            "failure_reason": None,
        }
        if phase == Phase.FAILED:
            payload["failure_reason"] = job.extra.get("failure_reason") or "internal_error"
        elif phase == Phase.SUCCEEDED:
            for gen_id in job.extra["gen_ids"]:
                generation = {"object": "video.generation", "id": gen_id, "job_id": job.id,
                              "created_at": int(finished or job.created_at), "width": width, "height": height,
                              "n_seconds": job.params["n_seconds"], "prompt": job.prompt, "output": {}}
                if not app.settings.get("shuttleai_omit_video_url"):
                    generation["output"]["video_url"] = req.sandbox.media_url(
                        cdn_root(req), "video", width=width, height=height, text=job.prompt,
                        seconds=min(2.0, job.params["n_seconds"]))
                payload["generations"].append(generation)
        return json_response(payload)

    @app.get('/<regex("gen_[A-Za-z0-9]+"):gen_id>/content/video')
    @app.get('/v1/video/generations/<regex("gen_[A-Za-z0-9]+"):gen_id>/content/video')
    def content(req: Request) -> Response:
        with lock:
            job_id = generation_jobs.get(req.params["gen_id"])
        job = app.jobs.get(app.id, job_id) if job_id else None
        if job is None or job.phase() != Phase.SUCCEEDED:
            return envelope(404, f"Generation '{req.params['gen_id']}' not found.")
        from generations.sandbox import media

        data = media.video_bytes(job.params["width"], job.params["height"], job.prompt,
                                 min(2.0, job.params["n_seconds"]))
        return bytes_response(data, "video/mp4", headers={"Cache-Control": "private, max-age=60"})

