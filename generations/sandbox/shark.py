"""The Shark AI sandbox under ``/shark`` (``seeds/shark-ai-videos.txt``, ``shark-ai-images.txt``).

A key's base URL is ``<sandbox>/shark`` (the real one is ``https://shark.ai``).

Videos
- ``POST /api/v1/videos`` ``{model, prompt, duration, resolution, aspect_ratio,
  frame_images: [{image_url, frame_type: first_frame|last_frame}], negative_prompt,
  seed, timeout}`` → 202 ``{id, status: "pending", polling_url}`` (relative).
- ``GET /api/v1/videos/{id}``: ``pending`` → ``running`` (or ``in_progress``:
  the setting ``shark_running_status``: "running" | "in_progress" |
  "alternate" — each poll flips between the two) → ``completed`` with
  ``output.urls[]`` (signed, expiring; fresh on every poll) and ``credit``
  (integer, 1 USD = 10,000) | ``failed`` with ``error`` (a plain string) |
  ``cancelled``.
- ``POST /api/v1/videos/{id}/cancel``: 200 ``{id, status: "cancelled"}`` while
  pending (and again once cancelled), 409 once started or finished.

Images
- ``POST /api/v1/images/generations`` ``{model, prompt, n, size, quality,
  output_format, ...}`` is synchronous: after ``sync_seconds`` (setting) it
  answers 200 ``{created, data: [{url}] * n, usage, credit}``. With
  ``"async": true`` (and ``timeout`` 30-1800) → 202 ``{id, object:
  "image.generation.task", status: "pending", created, timeout, polling_url,
  cancel_url}`` (absolute URLs).
  The setting ``shark_ignore_async`` (true) plays a relay that drops the flag:
  every request is answered synchronously.
- ``GET /api/v1/images/generations/{id}``: the task, with ``result: {created,
  data, usage, credit}`` when completed or ``error: {message, type}`` when failed.
- ``POST /api/v1/images/generations/{id}/cancel``: as for videos.

Errors: ``{"error": {"message", "type"}}``: 400 invalid_request_error (unknown
model, values out of range), 400 content_moderation (a "[moderate]" prompt),
401 auth_error (key missing or "invalid"), 402 insufficient_credits (key
"broke"), 404 not_found_error (unknown or vanished task), 409 conflict_error;
429 rate_limit_error / 502 provider_error / 504 timeout_error come from
control faults (``{"path": "^/shark/api/v1/videos$", "status": 429,
"headers": {"Retry-After": "3"}}``).

Prompt keywords: "[moderate]" → 400 at submit; "[unsafe]" → the job fails
with "Content was blocked by the safety system."; "[fail]" → it fails with a
generic provider error (a synchronous image answers 502); "[slow]" x5 time.
A job that would take longer than its ``timeout`` fails at the timeout.

Credit (what Shark charges; the adapter's price rules agree):
video credits per second by resolution (``VIDEO_CREDITS_PER_SECOND``);
images per image by quality and size (``IMAGE_CREDITS``); "auto" size is
1024x1024 and "auto" quality is medium.
"""

from __future__ import annotations

import itertools
import time
import uuid

from generations.sandbox.server import (
    Phase,
    ProviderApp,
    Request,
    Response,
    json_response,
    keywords,
)

VIDEO_MODELS = {
    "alibaba/wan-2.7": {"durations": (5, 10, 15), "frames": ("first_frame", "last_frame")},
    "alibaba/wan-2.5": {"durations": (5, 10), "frames": ("first_frame",)},
}
VIDEO_CREDITS_PER_SECOND = {
    "alibaba/wan-2.7": {"480p": 500, "720p": 800, "1080p": 1200},
    "alibaba/wan-2.5": {"480p": 300, "720p": 500, "1080p": 800},
}
RESOLUTIONS = {"480p": 480, "720p": 720, "1080p": 1080}
ASPECT_RATIOS = ("16:9", "9:16", "1:1")

IMAGE_SIZES = ("1024x1024", "1536x1024", "1024x1536", "2048x2048")
IMAGE_MODELS = {
    "openai/gpt-image-2": {"sizes": (*IMAGE_SIZES, "auto"), "qualities": ("low", "medium", "high", "auto")},
    "black-forest-labs/flux-schnell": {"aspect_ratios": {"1:1": (1024, 1024), "16:9": (1344, 768),
                                                         "9:16": (768, 1344), "4:3": (1152, 896),
                                                         "3:4": (896, 1152)}},
}
# gpt-image-2 credits per image: quality -> size class.
IMAGE_CREDITS = {
    "low": {"square": 110, "wide": 160, "large": 440},
    "medium": {"square": 420, "wide": 630, "large": 1680},
    "high": {"square": 1670, "wide": 2500, "large": 6680},
}
FLUX_CREDITS_PER_IMAGE = 30
OUTPUT_FORMATS = ("png", "jpeg", "webp")

TYPES = {
    "auth": "auth_error", "credits": "insufficient_credits", "rate_limit": "rate_limit_error",
    "server": "provider_error", "upstream": "provider_error", "unavailable": "provider_error",
    "timeout": "timeout_error", "invalid_request": "invalid_request_error", "not_found": "not_found_error",
    "conflict": "conflict_error", "forbidden": "permission_error",
}
BLOCKED = "Content was blocked by the safety system."
MODERATION_REFUSED = "Your request was rejected by the safety system: the prompt may contain content that is not allowed."


def envelope(status: int, message: str, code: str | None = None) -> Response:
    kind = TYPES.get(code or "", code) or ("provider_error" if status >= 500 else "invalid_request_error")
    return json_response({"error": {"message": message, "type": kind}}, status)


class Invalid(ValueError):
    pass


def _int(body: dict, name: str, default: int, low: int, high: int) -> int:
    raw = body.get(name, default)
    if isinstance(raw, bool):
        raise Invalid(f"Invalid value for '{name}': expected an integer.")
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise Invalid(f"Invalid value for '{name}': expected an integer.") from None
    if not low <= value <= high:
        raise Invalid(f"Invalid value for '{name}': must be between {low} and {high}.")
    return value


def _choice(body: dict, name: str, default: str, choices) -> str:
    value = str(body.get(name, default)).strip()
    if value not in choices:
        raise Invalid(f"Invalid value for '{name}': must be one of {', '.join(choices)}.")
    return value


def _prompt(body: dict) -> str:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise Invalid("'prompt' is required.")
    if len(prompt) > 4000:
        raise Invalid("'prompt' is too long (4000 characters at most).")
    return prompt


def video_size(resolution: str, aspect_ratio: str) -> tuple[int, int]:
    short = RESOLUTIONS[resolution]
    long = {480: 854, 720: 1280, 1080: 1920}[short]
    return {"16:9": (long, short), "9:16": (short, long), "1:1": (short, short)}[aspect_ratio]


def image_credit(model: str, params: dict) -> int:
    if model == "black-forest-labs/flux-schnell":
        return FLUX_CREDITS_PER_IMAGE * params["n"]
    size = params["size"]
    size_class = "square" if size == "1024x1024" else "large" if size == "2048x2048" else "wide"
    return IMAGE_CREDITS[params["quality"]][size_class] * params["n"]


def validate_video(body: dict) -> dict:
    model = body.get("model")
    if model not in VIDEO_MODELS:
        if model in IMAGE_MODELS:
            raise Invalid(f"Model '{model}' is an image model; use /api/v1/images/generations.")
        raise Invalid(f"Model '{model}' not found." if model else "'model' is required.")
    spec = VIDEO_MODELS[model]
    params = {
        "model": model,
        "prompt": _prompt(body),
        "duration": int(_choice(body, "duration", "5", [str(d) for d in spec["durations"]])),
        "resolution": _choice(body, "resolution", "720p", tuple(RESOLUTIONS)),
        "aspect_ratio": _choice(body, "aspect_ratio", "16:9", ASPECT_RATIOS),
        "seed": _int(body, "seed", -1, -1, 2**31 - 1),
        "timeout": _int(body, "timeout", 600, 60, 3600),
        "negative_prompt": str(body.get("negative_prompt") or ""),
    }
    frames = body.get("frame_images") or []
    if not isinstance(frames, list):
        raise Invalid("Invalid value for 'frame_images': expected an array.")
    seen = []
    for frame in frames:
        if not isinstance(frame, dict):
            raise Invalid("Invalid value for 'frame_images': each item needs image_url and frame_type.")
        frame_type = frame.get("frame_type")
        if frame_type not in spec["frames"]:
            raise Invalid(f"Invalid frame_type {frame_type!r}: this model supports {', '.join(spec['frames'])}.")
        url = frame.get("image_url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://", "data:image/")):
            raise Invalid("Invalid value for 'frame_images[].image_url': expected an image URL or data URL.")
        if frame_type in seen:
            raise Invalid(f"Only one {frame_type} is allowed.")
        seen.append(frame_type)
    if seen == ["last_frame"]:
        raise Invalid("A last_frame needs a first_frame.")
    params["frame_types"] = seen
    return params


def validate_image(body: dict) -> dict:
    model = body.get("model")
    if model not in IMAGE_MODELS:
        if model in VIDEO_MODELS:
            raise Invalid(f"Model '{model}' is a video model; use /api/v1/videos.")
        raise Invalid(f"Model '{model}' not found." if model else "'model' is required.")
    spec = IMAGE_MODELS[model]
    params = {"model": model, "prompt": _prompt(body), "n": _int(body, "n", 1, 1, 4),
              "output_format": _choice(body, "output_format", "png", OUTPUT_FORMATS)}
    if model == "black-forest-labs/flux-schnell":
        ratio = _choice(body, "aspect_ratio", "1:1", tuple(spec["aspect_ratios"]))
        params["aspect_ratio"] = ratio
        params["width"], params["height"] = spec["aspect_ratios"][ratio]
        params["seed"] = _int(body, "seed", -1, -1, 2**31 - 1)
    else:
        size = _choice(body, "size", "auto", spec["sizes"])
        params["size"] = "1024x1024" if size == "auto" else size
        quality = _choice(body, "quality", "auto", spec["qualities"])
        params["quality"] = "medium" if quality == "auto" else quality
        params["width"], params["height"] = (int(v) for v in params["size"].split("x"))
    async_mode = body.get("async", False)
    if not isinstance(async_mode, bool):
        raise Invalid("Invalid value for 'async': expected a boolean.")
    params["async"] = async_mode
    params["timeout"] = _int(body, "timeout", 300, 30, 1800)
    return params


def register(app: ProviderApp) -> None:
    app.error_envelope = envelope
    flip = itertools.count()

    def running_word() -> str:
        setting = app.settings.get("shark_running_status", "running")
        if setting == "alternate":
            return ("running", "in_progress")[next(flip) % 2]
        return "in_progress" if setting == "in_progress" else "running"

    def status_of(job) -> str:
        if job.raw_status:
            return job.raw_status
        phase = job.phase()
        return {Phase.QUEUED: "pending", Phase.RUNNING: None, Phase.SUCCEEDED: "completed",
                Phase.FAILED: "failed", Phase.CANCELLED: "cancelled"}[phase] or running_word()

    def body_or_400(req: Request, validate):
        body = req.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            return None, envelope(400, "The request body must be a JSON object.", "invalid_request")
        try:
            params = validate(body)
        except Invalid as exc:
            return None, envelope(400, str(exc), "invalid_request")
        if "moderate" in keywords(params["prompt"]):
            return None, envelope(400, MODERATION_REFUSED, "content_moderation")
        return params, None

    def new_job(req: Request, kind: str, params: dict, prefix: str):
        words = keywords(params["prompt"])
        fail = BLOCKED if "unsafe" in words else None
        if "fail" in words:
            fail = ("Video generation failed: upstream provider error." if kind == "video"
                    else "Image generation failed: provider timeout")
        duration = app.jobs.default_duration() * (5 if "slow" in words else 1)
        if duration > params["timeout"]:
            duration, fail = float(params["timeout"]), f"Generation timed out after {params['timeout']} seconds."
        return app.jobs.create(app.id, kind, params, prompt=params["prompt"], duration=duration, fail=fail,
                               idempotency_key=req.headers.get("Idempotency-Key"),
                               job_id=f"{prefix}{uuid.uuid4().hex[:24]}" if prefix else None)

    def image_result(req: Request, job_or_params, created: int) -> dict:
        params = job_or_params
        data = [{"url": req.media_url("image", width=params["width"], height=params["height"],
                                      text=params["prompt"], fmt=params["output_format"], variant=index)}
                for index in range(params["n"])]
        tokens = len(params["prompt"].split()) + 4
        return {"created": created, "data": data,
                "usage": {"input_tokens": tokens, "output_tokens": 1542 * params["n"],
                          "total_tokens": tokens + 1542 * params["n"]},
                "credit": image_credit(params["model"], params)}

    # -- videos -----------------------------------------------------------

    @app.route("POST", "/api/v1/videos")
    def create_video(req: Request) -> Response:
        params, error = body_or_400(req, validate_video)
        if error:
            return error
        job = new_job(req, "video", params, "")
        return json_response({"id": job.id, "status": "pending", "polling_url": f"/api/v1/videos/{job.id}"}, 202)

    @app.route("GET", "/api/v1/videos/<id>")
    def show_video(req: Request) -> Response:
        job = app.jobs.poll(app.id, req.params["id"])
        if job is None or job.kind != "video":
            return envelope(404, f"Task '{req.params['id']}' not found.", "not_found")
        body = {"id": job.id, "status": status_of(job), "model": job.params["model"]}
        phase = job.phase()
        if phase == Phase.SUCCEEDED:
            width, height = video_size(job.params["resolution"], job.params["aspect_ratio"])
            body["output"] = {"urls": [req.media_url("video", width=width, height=height, text=job.prompt)]}
            rate = VIDEO_CREDITS_PER_SECOND[job.params["model"]][job.params["resolution"]]
            body["credit"] = rate * job.params["duration"]
        elif phase == Phase.FAILED:
            body["error"] = job.error or job.fail or "Video generation failed."
        return json_response(body)

    def cancel(req: Request, kind: str) -> Response:
        job = app.jobs.get(app.id, req.params["id"])
        if job is None or job.kind != kind or job.extra.get("sync"):
            return envelope(404, f"Task '{req.params['id']}' not found.", "not_found")
        phase = job.phase()
        if phase == Phase.QUEUED:
            job.override("cancelled")
        elif phase != Phase.CANCELLED:
            word = "already completed" if phase in (Phase.SUCCEEDED, Phase.FAILED) else "already started"
            return envelope(409, f"Task has {word} and cannot be cancelled. Only pending tasks can be cancelled.",
                            "conflict")
        body = {"id": job.id, "status": "cancelled"}
        if kind == "image":
            body["object"] = "image.generation.task"
        return json_response(body)

    @app.route("POST", "/api/v1/videos/<id>/cancel")
    def cancel_video(req: Request) -> Response:
        return cancel(req, "video")

    # -- images -----------------------------------------------------------

    @app.route("POST", "/api/v1/images/generations")
    def create_image(req: Request) -> Response:
        params, error = body_or_400(req, validate_image)
        if error:
            return error
        created = int(time.time())
        if params["async"] and app.settings.get("shark_ignore_async") not in (True, "true", "on"):
            job = new_job(req, "image", params, "task_")
            return json_response({
                "id": job.id, "object": "image.generation.task", "status": "pending", "created": created,
                "timeout": params["timeout"],
                "polling_url": f"{req.prefix_url}/api/v1/images/generations/{job.id}",
                "cancel_url": f"{req.prefix_url}/api/v1/images/generations/{job.id}/cancel",
            }, 202)
        # Synchronous: think, then answer with the images (the job is recorded, already finished).
        words = keywords(params["prompt"])
        seconds = float(app.settings.get("sync_seconds", 0)) * (5 if "slow" in words else 1)
        if seconds:
            time.sleep(seconds)
        job = app.jobs.create(app.id, "image", params, prompt=params["prompt"], duration=0,
                              idempotency_key=req.headers.get("Idempotency-Key"), extra={"sync": True})
        if "fail" in words or "unsafe" in words:
            job.override("failed", BLOCKED if "unsafe" in words else "Image generation failed: upstream provider error")
            if "unsafe" in words:
                return envelope(400, BLOCKED, "content_moderation")
            return envelope(502, "Image generation failed: upstream provider error", "upstream")
        return json_response(image_result(req, params, created))

    @app.route("GET", "/api/v1/images/generations/<id>")
    def show_image(req: Request) -> Response:
        job = app.jobs.poll(app.id, req.params["id"])
        if job is None or job.kind != "image" or job.extra.get("sync"):
            return envelope(404, f"Task '{req.params['id']}' not found.", "not_found")
        body = {"id": job.id, "object": "image.generation.task", "status": status_of(job),
                "created": int(job.created_at), "timeout": job.params["timeout"]}
        phase = job.phase()
        if phase == Phase.SUCCEEDED:
            body["result"] = image_result(req, job.params, int(job.ready_at))
        elif phase == Phase.FAILED:
            message = job.error or job.fail or "Image generation failed."
            body["error"] = {"message": message,
                             "type": "content_moderation" if message == BLOCKED else "generation_error"}
        return json_response(body)

    @app.route("POST", "/api/v1/images/generations/<id>/cancel")
    def cancel_image(req: Request) -> Response:
        return cancel(req, "image")
