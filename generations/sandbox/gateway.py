"""The OpenAI-compatible gateway sandbox (new-api / one-api relays serving Vidu)
under ``/gateway`` (``seeds/openai-compatible-gateway-videos.txt``).

A key's base URL is ``<sandbox>/gateway`` (an operator's own address in real life):

- ``POST /v1/video/generations``: any ``vidu…`` model (others, and those
  listed in the setting ``gateway_no_channel``: 503 ``model_not_found``, "No
  available channel for model … under group default (distributor)", new-api's
  answer when no channel serves the model); ``prompt``; ``image`` and
  ``last_image`` (first-and-last frame; ``last_image`` alone is a 400);
  ``reference_image_urls`` (1-7, mix models only, and they require it);
  images as URLs or base64 / data URLs (checked by magic bytes);
  ``aspect_ratio``; ``duration`` 1-16 (int or numeric string);
  ``extra_body`` {audio, bgm, seed}. Answers ``{id, task_id, object, model,
  status: "queued", progress: 0, created_at}``.
- ``GET /v1/video/generations/{task_id}``: the wrapped new-api shape
  ``{"code": "success", "message": "", "data": {task_id, status, progress:
  "30%", result_url, fail_reason, submit_time, start_time, finish_time,
  ...}}``. The status walks NOT_START → SUBMITTED → QUEUED → IN_PROGRESS →
  SUCCESS | FAILURE; a finished task, failed or not, reads ``progress: "100%"``.
- ``GET /v1/videos/{task_id}``: OpenAI's video object (``status`` queued |
  in_progress | completed | failed, integer ``progress``, ``metadata.url``,
  ``error: {code, message}``).
- An unknown (or vanished) id: 400 ``{"code": "task_not_exist", "message":
  "task_not_exist", "data": null}`` (``/v1/videos``: the same code in the
  OpenAI error envelope).
- ``GET /v1/models``: new-api's model list (OpenAI's shape plus
  ``supported_endpoint_types``): the Vidu models it serves (``openai-video``) and,
  like a real relay, a chat and an embedding model that are not video.
- No cancel route. Result URLs are signed, expiring, on the "CDN" host.
- Errors elsewhere: ``{"error": {"message", "type": "new_api_error", "code"}}``.

Settings (``POST /_control/settings``): ``gateway_shape`` = ``wrapped``
(default) | ``openai``: the body the ``/v1/video/generations/{id}`` route
answers with; ``gateway_wrapped_route`` = false: that route answers 404
(an older or newer gateway without it; clients fall back to
``/v1/videos/{id}``); ``gateway_vanished`` = ``not_exist`` (default) |
``unknown``: what a vanished task reads as (``UNKNOWN`` keeps it in limbo);
``gateway_no_channel`` = a list of model ids (or ``"*"``) the gateway has no
channel for; ``gateway_models`` = the ids ``/v1/models`` lists (``vidu…`` ones as video
models, others as chat; default ``LISTED_MODELS``), ``gateway_models_route`` = false:
that route answers 404 (a relay without it).

Prompt keywords: ``[moderate]`` fails early, ``[unsafe]`` fails at the end
(moderation), ``[fail]`` fails upstream, ``[slow]`` takes 5x longer.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from typing import Any

from generations.sandbox.sealink import check_media
from generations.sandbox.server import (
    QUEUED_FRACTION,
    Phase,
    ProviderApp,
    Request,
    Response,
    SandboxJob,
    json_response,
    keywords,
)
from generations.sandbox.shuttleai import cdn_root

ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4")
# What /v1/models lists by default: Vidu models this relay has channels for (not quite the
# docs' list: one more off-peak variant, two of the docs' models missing), and the chat and
# embedding models a real relay lists beside them.
LISTED_MODELS = ("viduq3p-540p", "viduq3p-720p", "viduq3p-1080p", "viduq3t-540p", "viduq3t-720p",
                 "viduq3t-720p-offpeak", "viduq3p-mix-720p", "gpt-4o-mini", "text-embedding-3-small")
HEIGHTS = {"360p": 360, "540p": 540, "720p": 720, "1080p": 1080}
MAX_REFERENCES = 7

FAILURES = {
    "moderate": "The prompt did not pass content moderation.",
    "unsafe": "The generated video did not pass content moderation.",
    "fail": "Upstream task failed: the video model reported an internal error.",
}


def envelope(status: int, message: str, code: str | None = None) -> Response:
    """new-api's relay error: ``{"error": {"message", "type": "new_api_error", "code"}}``."""
    hints = {"auth": "invalid_token", "credits": "insufficient_user_quota", "rate_limit": "rate_limit_exceeded",
             "not_found": "invalid_url"}
    return json_response({"error": {"message": message, "type": "new_api_error",
                                    "code": hints.get(code or "", code or "")}}, status)


def not_exist(openai_style: bool) -> Response:
    if openai_style:
        return envelope(400, "task_not_exist", "task_not_exist")
    return json_response({"code": "task_not_exist", "message": "task_not_exist", "data": None}, 400)


def _task_id() -> str:
    return "task_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))


def _duration(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _frame(model: str, aspect: str | None) -> tuple[int, int]:
    match = re.search(r"(360p|540p|720p|1080p)", model)
    height = HEIGHTS[match[1]] if match else 720
    ratio = aspect or "16:9"
    wide, tall = (int(x) for x in ratio.split(":"))
    if wide >= tall:
        return round(height * wide / tall) // 2 * 2, height
    return height, round(height * tall / wide) // 2 * 2


def _time(moment: float | None) -> int | None:
    return int(moment) if moment else None


def register(app: ProviderApp) -> None:
    app.error_envelope = envelope

    @app.post("/v1/video/generations")
    def create(req: Request) -> Response:
        body = req.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            return envelope(400, "Invalid request body: expected a JSON object.", "invalid_request")
        model = body.get("model")
        no_channel = app.settings.get("gateway_no_channel") or ()
        if (not isinstance(model, str) or not model.startswith("vidu") or no_channel == "*"
                or model in no_channel):
            return envelope(503, f"No available channel for model {model} under group default (distributor)",
                            "model_not_found")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return envelope(400, "prompt is required.", "invalid_request")
        image, last_image = body.get("image"), body.get("last_image")
        references = body.get("reference_image_urls")
        if last_image and not image:
            return envelope(400, "last_image requires image: first-and-last-frame video needs both frames.",
                            "invalid_request")
        for name, value in (("image", image), ("last_image", last_image)):
            if value and (problem := check_media(value, "image")):
                return envelope(400, f"{name}: {problem}", "invalid_request")
        is_mix = "-mix" in model
        if references is not None:
            if not is_mix:
                return envelope(400, f"reference_image_urls is only supported by the mix models, not {model}.",
                                "invalid_request")
            if not isinstance(references, list) or not 1 <= len(references) <= MAX_REFERENCES:
                return envelope(400, f"reference_image_urls must list 1 to {MAX_REFERENCES} images.",
                                "invalid_request")
            for index, value in enumerate(references, start=1):
                if problem := check_media(value, "image"):
                    return envelope(400, f"reference_image_urls[{index}]: {problem}", "invalid_request")
        elif is_mix:
            return envelope(400, f"{model} needs reference_image_urls.", "invalid_request")
        if (image or last_image) and is_mix:
            return envelope(400, f"{model} takes reference images, not image / last_image.", "invalid_request")
        duration = _duration(body.get("duration", 5))
        if duration is None or not 1 <= duration <= 16:
            return envelope(400, "duration must be between 1 and 16 seconds.", "invalid_request")
        aspect = body.get("aspect_ratio")
        if aspect is not None and aspect not in ASPECT_RATIOS:
            return envelope(400, f"aspect_ratio must be one of {', '.join(ASPECT_RATIOS)}.", "invalid_request")
        extra = body.get("extra_body") or {}
        if not isinstance(extra, dict):
            return envelope(400, "extra_body must be an object.", "invalid_request")
        for flag in ("audio", "bgm"):
            if flag in extra and not isinstance(extra[flag], bool):
                return envelope(400, f"extra_body.{flag} must be true or false.", "invalid_request")
        if "seed" in extra and (isinstance(extra["seed"], bool) or not isinstance(extra["seed"], int)):
            return envelope(400, "extra_body.seed must be an integer.", "invalid_request")

        words = keywords(prompt)
        fail = next((FAILURES[w] for w in ("moderate", "unsafe", "fail") if w in words), None)
        duration_s = float(app.settings["duration"]) * 0.3 if "moderate" in words else None
        if references:
            action = "referenceGenerate"
        elif last_image:
            action = "firstTailGenerate"
        elif image:
            action = "generate"
        else:
            action = "textGenerate"
        stored = {k: v for k, v in body.items() if k not in ("image", "last_image", "reference_image_urls")}
        stored.update(has_image=bool(image), has_last_image=bool(last_image),
                      references=len(references or []), duration=duration)
        job = app.jobs.create(app.id, "video", stored, prompt=prompt, duration=duration_s, fail=fail,
                              idempotency_key=req.headers.get("Idempotency-Key"), job_id=_task_id(),
                              extra={"model": model, "action": action, "aspect_ratio": aspect})
        return json_response({"id": job.id, "task_id": job.id, "object": "video.generation.job", "model": model,
                              "status": "queued", "progress": 0, "created_at": int(job.created_at)})

    @app.get(r"/v1/models")
    def models(req: Request) -> Response:
        if app.settings.get("gateway_models_route", True) in (False, "false", "off", "missing"):
            return envelope(404, f"Invalid URL (GET {req.path})", "not_found")
        listed = app.settings.get("gateway_models") or LISTED_MODELS
        data = [{"id": model_id, "object": "model", "created": 1_700_000_000,
                 "owned_by": "vidu" if model_id.startswith("vidu") else "openai",
                 "supported_endpoint_types": ["openai-video"] if model_id.startswith("vidu") else (
                     ["embeddings"] if "embedding" in model_id else ["openai"])} for model_id in listed]
        return json_response({"success": True, "object": "list", "data": data})

    def lookup(task_id: str) -> tuple[SandboxJob | None, bool]:
        """(job, vanished)."""
        job = app.jobs.poll(app.id, task_id)
        if job is not None:
            return job, False
        lost = app.jobs.find(task_id)
        return (lost, True) if lost is not None and lost.provider == app.id else (None, False)

    @app.get("/v1/video/generations/<id>")
    def show_wrapped(req: Request) -> Response:
        if app.settings.get("gateway_wrapped_route", True) in (False, "false", "off", "missing"):
            return envelope(404, f"Invalid URL (GET {req.path})", "not_found")
        job, vanished = lookup(req.params["id"])
        openai_shape = app.settings.get("gateway_shape", "wrapped") == "openai"
        if job is None or (vanished and (openai_shape or app.settings.get("gateway_vanished") != "unknown")):
            return not_exist(openai_shape)
        if openai_shape:
            return json_response(openai_video(req, job, vanished))
        return json_response({"code": "success", "message": "", "data": wrapped_task(req, job, vanished)})

    @app.get("/v1/videos/<id>")
    def show_openai(req: Request) -> Response:
        job, vanished = lookup(req.params["id"])
        if job is None or vanished:
            return not_exist(True)
        return json_response(openai_video(req, job, vanished))

    def result_url(req: Request, job: SandboxJob) -> str:
        width, height = _frame(job.extra["model"], job.extra.get("aspect_ratio"))
        return req.sandbox.media_url(cdn_root(req), "video", width=width, height=height, text=job.prompt,
                                     seconds=min(2.0, float(job.params.get("duration", 5))))

    def wrapped_task(req: Request, job: SandboxJob, vanished: bool) -> dict:
        phase = job.phase()
        elapsed = (time.time() - job.created_at) / max(job.duration, 1e-6)
        if vanished:
            status = "UNKNOWN"
        elif phase == Phase.QUEUED:
            status = "NOT_START" if elapsed < QUEUED_FRACTION / 3 else (
                "SUBMITTED" if elapsed < QUEUED_FRACTION * 2 / 3 else "QUEUED")
        else:
            status = {Phase.RUNNING: "IN_PROGRESS", Phase.SUCCEEDED: "SUCCESS", Phase.FAILED: "FAILURE",
                      Phase.CANCELLED: "FAILURE"}[phase]
        finished = job.completed_at()
        task = {
            "task_id": job.id, "platform": "vidu", "action": job.extra["action"], "model": job.extra["model"],
            "status": job.raw_status or status, "progress": f"{job.progress()}%",
            "submit_time": int(job.created_at),
            "start_time": int(job.created_at + job.duration * QUEUED_FRACTION) if phase != Phase.QUEUED else 0,
            "finish_time": _time(finished) or 0, "fail_reason": "", "result_url": "",
        }
        if phase in (Phase.FAILED, Phase.CANCELLED) and not vanished:
            task["progress"] = "100%"   # new-api marks a finished task 100 %, failed or not
        if phase == Phase.FAILED and not vanished:
            task["fail_reason"] = job.error or job.fail or "Upstream task failed."
        elif phase == Phase.CANCELLED and not vanished:
            task["fail_reason"] = "The upstream task was cancelled."
        elif phase == Phase.SUCCEEDED and not vanished:
            task["result_url"] = result_url(req, job)
            task["progress"] = "100%"
        return task

    def openai_video(req: Request, job: SandboxJob, vanished: bool) -> dict:
        phase = job.phase()
        status = {Phase.QUEUED: "queued", Phase.RUNNING: "in_progress", Phase.SUCCEEDED: "completed",
                  Phase.FAILED: "failed", Phase.CANCELLED: "failed"}[phase]
        finished = job.completed_at()
        width, height = _frame(job.extra["model"], job.extra.get("aspect_ratio"))
        video = {
            "id": job.id, "object": "video", "model": job.extra["model"], "status": job.raw_status or status,
            "progress": 100 if finished else job.progress(), "created_at": int(job.created_at),
            "completed_at": _time(finished),
            "expires_at": _time(finished + 86400) if finished else None,
            "seconds": str(job.params.get("duration", 5)), "size": f"{width}x{height}",
            "error": None, "metadata": {},
        }
        if phase == Phase.FAILED:
            video["error"] = {"code": "upstream_failed", "message": job.error or job.fail or "Upstream task failed."}
        elif phase == Phase.CANCELLED:
            video["error"] = {"code": "cancelled", "message": "The upstream task was cancelled."}
        elif phase == Phase.SUCCEEDED:
            video["metadata"]["url"] = result_url(req, job)
        return video
