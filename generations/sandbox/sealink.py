"""The Sealink sandbox: DashScope Wan tasks under ``/sealink`` (``seeds/sealink-videos.txt``).

A key's base URL is ``<sandbox>/sealink`` (the real one ``https://test.sealink.io``):

- ``POST /v1/video/generations``: ``wan2.6-t2v``, ``wan2.6-i2v``,
  ``wan2.6-i2v-flash``; ``prompt`` or ``template_id`` + ``variables``
  (known templates: ``tpl_sunset`` needs ``place``, ``tpl_product`` needs
  ``product``; unknown → 404 ``template_not_found``); ``image`` /
  ``image_url`` (a data URL or bare base64 of a PNG/JPEG/WebP, checked by its
  magic bytes, or an http(s) URL; required by the i2v models); ``n`` 1-4,
  ``size`` enum, ``duration`` 1-60, ``fps`` 1-60, ``negative_prompt`` ≤ 1024,
  ``seed``, ``tags`` (strings), ``webhook_url`` (https only).
- ``POST /v1/video/edits``: ``happyhorse-1.0-video-edit`` with ``video``
  (an MP4/WebM data URL, base64 or URL), ``prompt``, ``resolution``,
  ``duration``, ``seed``.
- ``GET /v1/tasks/{id}``: ``status`` pending → running → completed | failed.
  The result is placed in ``data`` or in ``upstream_response`` (DashScope's
  ``{request_id, output: {task_id, task_status, video_url, code, message,
  submit_time, end_time}, usage: {duration, size: "1280*720", video_count}}``).
  Placement: setting ``sealink_result_in`` = ``data`` | ``upstream`` |
  ``both`` | ``auto`` (default: varies by task id, deterministically). The
  shape of ``data``: ``sealink_data_shape`` = ``video_url`` | ``urls`` |
  ``videos`` | ``list`` | ``auto``. Running tasks always carry
  ``upstream_response`` with their DashScope ``task_status``.
  A task overridden to ``vanished`` (control API) is one DashScope lost:
  ``task_status: UNKNOWN``, top-level ``status`` from the setting
  ``sealink_unknown_status`` (``running`` by default, or ``failed``).
- ``DELETE /v1/tasks/{id}``: 200 while pending (the task then reads
  ``failed`` with DashScope ``CANCELED``), 409 once running, 400 once
  finished, 501 for ``happyhorse-1.0-video-edit`` (no upstream cancel).
- ``GET /v1/templates``: the known templates.
- ``GET /v1/tasks?limit=N``: the newest tasks, ``{"object": "list", "data": [{id, object,
  model, status, created_at}], "has_more"}`` ("Test key"'s harmless read call).
- Webhooks: when ``webhook_url`` is given, a thread POSTs
  ``{"id", "object": "event", "type": "video.task.completed" | "video.task.failed",
  "status", "created_at"}`` to it once the task is terminal (best effort,
  once; the outcome is kept in the job's ``extra.webhook`` for the control
  API). Setting ``sealink_http_webhooks`` (sandbox only) also accepts http://
  URLs, for local tests.
- Errors ``{"error": {"message", "type", "code"}}``. Setting
  ``sealink_rpm`` limits POSTs per key per minute: every answer then carries
  ``X-RateLimit-Limit-Requests``, ``X-RateLimit-Remaining-Requests``,
  ``X-RateLimit-Reset-Requests``, and a 429 adds ``Retry-After``.

Prompt keywords: ``[moderate]`` fails early with DashScope's
``DataInspectionFailed`` (input), ``[unsafe]`` fails at the end
(output), ``[fail]`` fails with ``InternalError``, ``[slow]`` 5x longer.
"""

from __future__ import annotations

import base64
import binascii
import collections
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from datetime import UTC, datetime
from typing import Any

from generations.sandbox.server import (
    Phase,
    ProviderApp,
    Request,
    Response,
    SandboxJob,
    json_response,
    keywords,
)
from generations.sandbox.shuttleai import cdn_root

GENERATION_MODELS = ("wan2.6-t2v", "wan2.6-i2v", "wan2.6-i2v-flash")
IMAGE_MODELS = ("wan2.6-i2v", "wan2.6-i2v-flash")
EDIT_MODEL = "happyhorse-1.0-video-edit"
UNCANCELLABLE = (EDIT_MODEL,)
SIZES = ("1920x1080", "1280x720", "640x480", "1080x1920", "720x1280", "480x640")

TEMPLATES: dict[str, dict[str, Any]] = {
    "tpl_sunset": {
        "name": "Sunset pan",
        "text": "A serene {place} at sunset, camera slowly panning across the water, {mood} light",
        "required": ["place"], "defaults": {"mood": "golden"},
    },
    "tpl_product": {
        "name": "Product turntable",
        "text": "A {product} rotating slowly on a {surface} turntable, soft studio light, clean background",
        "required": ["product"], "defaults": {"surface": "white"},
    },
}

_TYPES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    402: ("insufficient_quota", "insufficient_balance"),
    403: ("permission_error", "forbidden"),
    404: ("not_found_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    409: ("invalid_request_error", "conflict"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    500: ("server_error", "internal_error"),
    501: ("not_implemented_error", "cancel_not_supported"),
    502: ("upstream_error", "upstream_error"),
    503: ("server_error", "service_unavailable"),
}

FAILURES = {
    "moderate": ("DataInspectionFailed", "Input data may contain inappropriate content."),
    "unsafe": ("DataInspectionFailed", "Output data may contain inappropriate content."),
    "fail": ("InternalError", "An internal error has occured, please try again later or contact service support."),
}


def envelope(status: int, message: str, code: str | None = None) -> Response:
    """Sealink's OpenAI-shaped error: ``{"error": {"message", "type", "code"}}``.

    ``code`` is Sealink's code, or one of the core's neutral hints ("auth", "rate_limit"...)."""
    error_type, default_code = _TYPES.get(status, ("server_error" if status >= 500 else "invalid_request_error",
                                                   "error"))
    code = _HINTS.get(code or "", code or default_code)
    return json_response({"error": {"message": message, "type": error_type, "code": code or default_code}}, status)


_HINTS = {"auth": "invalid_api_key", "credits": "insufficient_balance", "rate_limit": "rate_limit_exceeded",
          "invalid_request": "", "forbidden": "", "not_found": "", "conflict": "", "server": "",
          "upstream": "", "unavailable": "", "timeout": ""}


def _decode_inline(value: str) -> bytes | None:
    """The bytes of a data URL or bare base64 string; None when it is neither."""
    text = value.strip()
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if ";base64" not in header:
            return None
    try:
        return base64.b64decode(re.sub(r"\s+", "", text), validate=True)
    except (binascii.Error, ValueError):
        return None


def check_media(value: Any, kind: str) -> str | None:
    """None when ``value`` is an acceptable image/video (URL or inline), else the error message."""
    if not isinstance(value, str) or not value.strip():
        return f"{'image' if kind == 'image' else 'video'} must be a URL or base64 data."
    if value.strip().startswith(("http://", "https://")):
        return None
    data = _decode_inline(value)
    if not data:
        return f"{'image' if kind == 'image' else 'video'} is neither a URL nor valid base64 data."
    if kind == "image":
        if data.startswith(b"\x89PNG\r\n\x1a\n") or data.startswith(b"\xff\xd8\xff") or (
                data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
            return None
        return "image is not a PNG, JPEG or WebP image."
    if data[4:8] == b"ftyp" or data.startswith(b"\x1a\x45\xdf\xa3"):
        return None
    return "video is not an MP4 or WebM video."


def _dims(size: str) -> tuple[int, int]:
    width, _, height = str(size).partition("x")
    return int(width), int(height)


def _stamp(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _variant(job_id: str, options: tuple[str, ...]) -> str:
    return options[zlib.crc32(job_id.encode()) % len(options)]


def register(app: ProviderApp) -> None:
    app.error_envelope = envelope
    recent: dict[str, collections.deque] = collections.defaultdict(collections.deque)
    lock = threading.Lock()

    # -- rate limits ------------------------------------------------------------

    def limit_headers(req: Request, *, count: bool) -> tuple[dict[str, str], bool]:
        """The X-RateLimit-* headers (when ``sealink_rpm`` is set) and whether this request is over."""
        rpm = app.settings.get("sealink_rpm")
        if not rpm:
            return {}, False
        rpm, now = int(rpm), time.time()
        with lock:
            window = recent[req.api_key or ""]
            while window and window[0] <= now - 60:
                window.popleft()
            over = count and len(window) >= rpm
            if count and not over:
                window.append(now)
            reset = max(1, int(window[0] + 60 - now) + 1) if window else 60
            headers = {"X-RateLimit-Limit-Requests": str(rpm),
                       "X-RateLimit-Remaining-Requests": str(max(0, rpm - len(window))),
                       "X-RateLimit-Reset-Requests": f"{reset}s"}
        if over:
            headers["Retry-After"] = str(reset)
        return headers, over

    def answer(response: Response, headers: dict[str, str]) -> Response:
        response.headers.extend(headers.items())
        return response

    # -- submit -------------------------------------------------------------------

    def common_checks(body: dict) -> str | None:
        if "duration" in body and not _int_in(body["duration"], 1, 60):
            return "duration must be an integer between 1 and 60."
        if "seed" in body and not _int_in(body["seed"], 0, 2**31 - 1):
            return "seed must be an integer between 0 and 2147483647."
        return None

    def start(req: Request, body: dict, prompt: str, *, model: str, size: str, n: int,
              template: str | None = None) -> Response:
        words = keywords(prompt)
        failure = next((FAILURES[w] for w in ("moderate", "unsafe", "fail") if w in words), None)
        duration = float(app.settings["duration"]) * 0.3 if "moderate" in words else None
        job = app.jobs.create(
            app.id, "video", body, prompt=prompt, duration=duration,
            fail=failure[1] if failure else None, outputs=n,
            idempotency_key=req.headers.get("Idempotency-Key"), job_id="task_" + secrets.token_hex(12),
            extra={"model": model, "size": size, "upstream_task_id": str(uuid.uuid4()),
                   "request_id": str(uuid.uuid4()), "failure_code": failure[0] if failure else None,
                   "template_id": template, "webhook": None},
        )
        if body.get("webhook_url"):
            threading.Thread(target=_deliver_webhook, args=(app, job, body["webhook_url"]),
                             name=f"sealink-webhook-{job.id}", daemon=True).start()
        return json_response({"id": job.id, "object": "video.generation.task", "model": model,
                              "status": "pending", "created_at": int(job.created_at)})

    @app.post("/v1/video/generations")
    def create(req: Request) -> Response:
        headers, over = limit_headers(req, count=True)
        if over:
            return answer(envelope(429, "Rate limit exceeded: too many requests per minute.", "rate_limit"),
                          headers)
        body = req.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            return answer(envelope(400, "The request body must be a JSON object."), headers)
        model = body.get("model")
        if model not in GENERATION_MODELS:
            return answer(envelope(400, f"Model '{model}' is not supported on /v1/video/generations.",
                                   "model_not_supported"), headers)
        template_id = body.get("template_id")
        prompt = body.get("prompt")
        if template_id:
            template = TEMPLATES.get(str(template_id))
            if template is None:
                return answer(envelope(404, f"Template '{template_id}' not found.", "template_not_found"), headers)
            variables = body.get("variables") or {}
            if not isinstance(variables, dict):
                return answer(envelope(400, "variables must be an object of name: value pairs."), headers)
            values = {**template["defaults"], **{str(k): str(v) for k, v in variables.items()}}
            missing = [name for name in template["required"] if not values.get(name)]
            if missing:
                return answer(envelope(400, f"Template '{template_id}' needs the variable '{missing[0]}'.",
                                       "missing_variable"), headers)
            rendered = re.sub(r"\{(\w+)\}", lambda m: values.get(m[1], ""), template["text"])
            prompt = f"{rendered}. {prompt}" if isinstance(prompt, str) and prompt.strip() else rendered
        if not isinstance(prompt, str) or not prompt.strip():
            return answer(envelope(400, "prompt is required (or a template_id)."), headers)
        image = body.get("image") or body.get("image_url")
        if model in IMAGE_MODELS and not image:
            return answer(envelope(400, f"{model} needs a starting frame in image or image_url."), headers)
        if image and (problem := check_media(image, "image")):
            return answer(envelope(400, problem, "invalid_image"), headers)
        n = body.get("n", 1)
        if not _int_in(n, 1, 4):
            return answer(envelope(400, "n must be an integer between 1 and 4."), headers)
        size = body.get("size", "1280x720")
        if size not in SIZES:
            return answer(envelope(400, f"size must be one of {', '.join(SIZES)}."), headers)
        if "fps" in body and not _int_in(body["fps"], 1, 60):
            return answer(envelope(400, "fps must be an integer between 1 and 60."), headers)
        negative = body.get("negative_prompt")
        if negative is not None and (not isinstance(negative, str) or len(negative) > 1024):
            return answer(envelope(400, "negative_prompt must be a string of at most 1024 characters."), headers)
        tags = body.get("tags")
        if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
            return answer(envelope(400, "tags must be an array of strings."), headers)
        webhook = body.get("webhook_url")
        if webhook is not None:
            allowed = ("https://", "http://") if app.settings.get("sealink_http_webhooks") else ("https://",)
            if not isinstance(webhook, str) or not webhook.startswith(allowed):
                return answer(envelope(400, "webhook_url must be an https URL."), headers)
        if problem := common_checks(body):
            return answer(envelope(400, problem), headers)
        stored = {k: v for k, v in body.items() if k not in ("image", "image_url")}
        stored["has_image"] = bool(image)
        return answer(start(req, stored, prompt, model=model, size=size, n=n, template=template_id), headers)

    @app.post("/v1/video/edits")
    def edit(req: Request) -> Response:
        headers, over = limit_headers(req, count=True)
        if over:
            return answer(envelope(429, "Rate limit exceeded: too many requests per minute.", "rate_limit"),
                          headers)
        body = req.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            return answer(envelope(400, "The request body must be a JSON object."), headers)
        if body.get("model") != EDIT_MODEL:
            return answer(envelope(400, f"Model '{body.get('model')}' is not supported on /v1/video/edits.",
                                   "model_not_supported"), headers)
        if not body.get("video"):
            return answer(envelope(400, "video is required."), headers)
        if problem := check_media(body["video"], "video"):
            return answer(envelope(400, problem, "invalid_video"), headers)
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return answer(envelope(400, "prompt (the edit instruction) is required."), headers)
        size = body.get("resolution", "1280x720")
        if size not in SIZES:
            return answer(envelope(400, f"resolution must be one of {', '.join(SIZES)}."), headers)
        if problem := common_checks(body):
            return answer(envelope(400, problem), headers)
        stored = {k: v for k, v in body.items() if k != "video"}
        stored["video_bytes"] = len(_decode_inline(body["video"]) or b"")
        return answer(start(req, stored, prompt, model=EDIT_MODEL, size=size, n=1), headers)

    # -- tasks --------------------------------------------------------------------

    def find(task_id: str) -> SandboxJob | None:
        job = app.jobs.find(task_id)
        return job if job is not None and job.provider == app.id else None

    @app.get("/v1/tasks/<id>")
    def show(req: Request) -> Response:
        headers, _ = limit_headers(req, count=False)
        job = app.jobs.poll(app.id, req.params["id"]) or find(req.params["id"])
        if job is None:
            return answer(envelope(404, f"Task '{req.params['id']}' not found.", "task_not_found"), headers)
        return answer(json_response(task_body(req, job)), headers)

    @app.delete("/v1/tasks/<id>")
    def cancel(req: Request) -> Response:
        job = app.jobs.get(app.id, req.params["id"])
        if job is None:
            return envelope(404, f"Task '{req.params['id']}' not found.", "task_not_found")
        if job.extra["model"] in UNCANCELLABLE:
            return envelope(501, f"Cancellation is not supported for {job.extra['model']} tasks.",
                            "cancel_not_supported")
        phase = job.phase()
        if phase == Phase.QUEUED:
            job.override("cancelled")
            return json_response({"id": job.id, "object": "video.generation.task", "status": "cancelled",
                                  "cancelled": True})
        if phase == Phase.RUNNING:
            return envelope(409, "The task has already started and can no longer be cancelled.",
                            "task_not_cancellable")
        return envelope(400, f"The task has already {'completed' if phase == Phase.SUCCEEDED else 'ended'}.",
                        "task_finished")

    @app.get("/v1/tasks")
    def task_list(req: Request) -> Response:
        try:
            limit = max(1, min(100, int(req.args.get("limit") or 20)))
        except ValueError:
            return envelope(400, "limit must be an integer between 1 and 100.", "invalid_request")
        tasks = sorted((job for job in app.jobs.all() if job.provider == app.id), key=lambda j: -j.created_at)
        data = [{"id": job.id, "object": "video.generation.task", "model": job.extra["model"],
                 "status": task_body(req, job)["status"], "created_at": int(job.created_at)} for job in tasks[:limit]]
        return json_response({"object": "list", "data": data, "has_more": len(tasks) > limit})

    @app.get("/v1/templates")
    def templates(req: Request) -> Response:
        return json_response({"object": "list", "data": [
            {"id": key, "name": t["name"], "text": t["text"], "variables": sorted({*t["required"], *t["defaults"]}),
             "required": t["required"]} for key, t in TEMPLATES.items()]})

    def task_body(req: Request, job: SandboxJob) -> dict:
        phase = job.phase()
        vanished = job.state == "vanished"
        model, size = job.extra["model"], job.extra["size"]
        finished = job.completed_at()
        if vanished:
            status = app.settings.get("sealink_unknown_status", "running")
            task_status = "UNKNOWN"
        else:
            status, task_status = {
                Phase.QUEUED: ("pending", "PENDING"), Phase.RUNNING: ("running", "RUNNING"),
                Phase.SUCCEEDED: ("completed", "SUCCEEDED"), Phase.FAILED: ("failed", "FAILED"),
                Phase.CANCELLED: ("failed", "CANCELED"),
            }[phase]
        status = job.raw_status or status
        output: dict[str, Any] = {"task_id": job.extra["upstream_task_id"], "task_status": task_status,
                                  "submit_time": _stamp(job.created_at),
                                  "scheduled_time": _stamp(job.created_at + 0.1)}
        body: dict[str, Any] = {"id": job.id, "object": "video.generation.task", "model": model, "status": status,
                                "created_at": int(job.created_at), "updated_at": int(finished or time.time()),
                                "data": None, "upstream_response": None}
        upstream = {"request_id": job.extra["request_id"], "output": output}
        if phase == Phase.RUNNING and not vanished:
            body["progress"] = job.progress()
        if vanished or phase in (Phase.QUEUED, Phase.RUNNING):
            body["upstream_response"] = upstream
            return body
        output["end_time"] = _stamp(finished)
        if phase == Phase.FAILED:
            code = job.extra.get("failure_code") or "InternalError"
            message = job.error or job.fail or "The task failed."
            output.update(code=code, message=message)
            body["error"] = {"message": message, "type": "upstream_error", "code": code}
            body["upstream_response"] = upstream
            return body
        if phase == Phase.CANCELLED:
            body["error"] = {"message": "The task was cancelled.", "type": "invalid_request_error",
                             "code": "task_cancelled"}
            body["upstream_response"] = upstream
            return body
        width, height = _dims(size)
        seconds = min(2.0, float(job.params.get("duration", 5)))
        urls = [req.sandbox.media_url(cdn_root(req), "video", width=width, height=height,
                                      text=f"{job.prompt} #{i + 1}" if job.outputs > 1 else job.prompt,
                                      seconds=seconds, ttl=None) for i in range(job.outputs)]
        placement = app.settings.get("sealink_result_in", "auto")
        if placement not in ("data", "upstream", "both"):
            placement = _variant(job.id, ("data", "upstream"))
        if placement in ("data", "both"):
            body["data"] = data_shape(job, urls)
        if placement in ("upstream", "both"):
            output["video_url"] = urls[0]
            if len(urls) > 1:
                output["results"] = [{"url": url} for url in urls]
            output["orig_prompt"] = job.prompt
            upstream["usage"] = {"duration": int(job.params.get("duration", 5)), "size": size.replace("x", "*"),
                                 "video_count": len(urls), "SR": min(_dims(size))}
            body["upstream_response"] = upstream
        return body

    def data_shape(job: SandboxJob, urls: list[str]) -> Any:
        shape = app.settings.get("sealink_data_shape", "auto")
        if shape not in ("video_url", "urls", "videos", "list"):
            shape = _variant(job.id[::-1], ("video_url", "videos") if len(urls) == 1 else ("urls", "videos", "list"))
        if shape == "video_url":
            return {"video_url": urls[0], **({"urls": urls} if len(urls) > 1 else {})}
        if shape == "urls":
            return {"urls": urls}
        if shape == "videos":
            return {"videos": [{"url": url, "index": i} for i, url in enumerate(urls)]}
        return [{"url": url} for url in urls]


def _int_in(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _deliver_webhook(app: ProviderApp, job: SandboxJob, url: str, max_wait: float = 3600.0) -> None:
    """Wait until the task is terminal, then POST one small notification (best effort)."""
    deadline = time.time() + max_wait
    while time.time() < deadline:
        current = app.jobs.find(job.id)
        if current is None:          # the sandbox was reset
            return
        phase = current.phase()
        if phase in (Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED):
            break
        time.sleep(min(0.2, max(0.02, current.ready_at - time.time())))
    else:
        return
    status = "completed" if phase == Phase.SUCCEEDED else "failed"
    payload = json.dumps({"id": job.id, "object": "event", "type": f"video.task.{status}", "status": status,
                          "created_at": int(time.time())}).encode()
    request = urllib.request.Request(url, data=payload, method="POST",  # noqa: S310 (http(s) checked at submit)
                                     headers={"Content-Type": "application/json", "User-Agent": "Sealink-Webhook/1.0"})
    outcome: dict[str, Any] = {"url": url, "at": time.time()}
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            outcome["status_code"] = response.status
    except urllib.error.HTTPError as exc:
        outcome["status_code"] = exc.code
    except (urllib.error.URLError, OSError) as exc:
        outcome["error"] = f"{type(exc).__name__}: {exc}"
    job.extra["webhook"] = outcome
