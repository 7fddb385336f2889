"""Shark AI (``seeds/shark-ai-videos.txt``, ``seeds/shark-ai-images.txt``, ``PROVIDERS.md``).

Videos are asynchronous: ``POST /api/v1/videos`` answers 202 ``{id, status:
"pending", polling_url}``; ``GET /api/v1/videos/{id}`` goes ``pending`` →
``running`` (the per-model pages say ``in_progress``: both are accepted) →
``completed`` (``output.urls[]`` and ``credit``), ``failed`` (``error`` is a
plain string) or ``cancelled``. ``POST /api/v1/videos/{id}/cancel`` works only
while pending; 409 once started.

Images: ``POST /api/v1/images/generations`` is synchronous by default (200
``{created, data[].url, usage, credit}``) and takes 10-180 s. Slow models are
sent with ``"async": true`` (202 with ``polling_url`` / ``cancel_url``; the
task's ``result`` holds ``{data, usage, credit}`` when completed, ``error:
{message, type}`` when failed). The documented image model is a slow one, so
every image job goes async; should Shark (or a relay in front of it) answer
one in the synchronous shape anyway, ``submit`` returns the finished result
with a synthetic job id (``sync-…``) — the engine runs ``submit`` inside a
worker, never in a web request.

The catalog is the models the docs name (alibaba/wan-2.7, openai/gpt-image-2:
tests/generations/providers/test_catalog_docs.py ties them); ``RETIRED`` ones are no longer
offered but their jobs already in flight are still followed.

Inputs (first / last frame) are sent inline as data URLs in
``frame_images[].image_url``. ``credit`` is Shark's charge (1 USD = 10,000
credits) and becomes ``Progress.cost``; the price rules below give the same
figures for the estimate ("auto" image size/quality are priced at the most
they can cost, so the estimate never undershoots).

The base URL is the host (``https://shark.ai``; a pasted ``/api/v1`` is dropped). Shark
documents no harmless read call: "Test key" asks for a video that does not exist
(``keycheck``), which proves a refused key or a wrong base URL, never a working key. A 404
to a submit means the base URL leads elsewhere (``ROUTE_MISSING``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from generations.providers import http, keycheck
from generations.providers.base import (
    MODERATION,
    CancelOutcome,
    CancelResult,
    Credentials,
    InputSlot,
    Job,
    KeyCheck,
    ModelSpec,
    Output,
    Param,
    ParamType,
    Progress,
    Provider,
    ProviderError,
    State,
    Submitted,
    as_int,
    moderation_in,
    route_missing,
)

logger = logging.getLogger(__name__)

STATUSES: dict[str, State] = {
    "pending": State.QUEUED,
    "queued": State.QUEUED,
    "running": State.RUNNING,
    "in_progress": State.RUNNING,
    "processing": State.RUNNING,
    "completed": State.SUCCEEDED,
    "succeeded": State.SUCCEEDED,
    "failed": State.FAILED,
    "cancelled": State.CANCELLED,
    "canceled": State.CANCELLED,
}

SYNC_PREFIX = "sync-"
TOO_LATE = "Shark AI had already started this job, so it cannot be cancelled; it will finish and be charged."

# ---------------------------------------------------------------------------
# Prices (credits; 1 USD = 10,000). They match what Shark reports as ``credit``.

VIDEO_CREDITS_PER_SECOND = {
    "alibaba/wan-2.7": {"480p": 500, "720p": 800, "1080p": 1200},
    "alibaba/wan-2.5": {"480p": 300, "720p": 500, "1080p": 800},
}
# gpt-image-2, per image: quality -> size class (square 1024, wide 1536x1024 / 1024x1536, large 2048).
GPT_IMAGE_CREDITS = {
    "low": {"square": 110, "wide": 160, "large": 440},
    "medium": {"square": 420, "wide": 630, "large": 1680},
    "high": {"square": 1670, "wide": 2500, "large": 6680},
}


def _video_price(model_id: str):
    def price(params: Mapping[str, Any], operation: str) -> int:
        rates = VIDEO_CREDITS_PER_SECOND[model_id]
        rate = rates.get(str(params.get("resolution") or "720p"), max(rates.values()))
        return rate * (as_int(params.get("duration"), 5) or 5)
    return price


def _gpt_image_price(params: Mapping[str, Any], operation: str) -> int:
    quality = str(params.get("quality") or "auto")
    size = str(params.get("size") or "auto")
    # "auto" lets the model choose (a 1024-class size, any quality): estimate
    # the most it can cost, so the reservation never falls short.
    table = GPT_IMAGE_CREDITS.get(quality, GPT_IMAGE_CREDITS["high"])
    size_class = {"1024x1024": "square", "1536x1024": "wide", "1024x1536": "wide",
                  "2048x2048": "large"}.get(size, "wide")
    return table[size_class] * (as_int(params.get("n"), 1) or 1)


# ---------------------------------------------------------------------------
# The catalog

T2V, I2V, FLF = "text-to-video", "image-to-video", "first-last-frame"
T2I = "text-to-image"


def _seed() -> Param:
    return Param("seed", ParamType.INTEGER, default=-1, min=-1, max=2_147_483_647,
                 help="-1 picks a random seed; the same seed and prompt repeat a result.")


def _video_params(durations: tuple[int, ...]) -> tuple[Param, ...]:
    # ``duration`` is an integer in the API reference (shark-ai-videos.txt): the choices are
    # ints so the request body carries 5, not "5" (PROVIDERS.md saw strings accepted too).
    return (
        Param("duration", ParamType.ENUM, label="Duration (seconds)", default=durations[0], choices=durations,
              help="Length of the video in seconds."),
        Param("resolution", ParamType.ENUM, default="720p", choices=("480p", "720p", "1080p"),
              help="Higher resolutions cost more per second."),
        Param("aspect_ratio", ParamType.ENUM, label="Aspect ratio", default="16:9", choices=("16:9", "9:16", "1:1"),
              operations=frozenset({T2V}), help="Image-to-video follows the first frame's shape."),
        _seed(),
        Param("timeout", ParamType.INTEGER, label="Timeout (seconds)", default=600, min=60, max=3600,
              help="How long Shark AI may work on the video before giving up (60-3600)."),
    )


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        id="alibaba/wan-2.7", provider="shark", label="Wan 2.7", kind="video",
        operations=(T2V, I2V, FLF),
        params=_video_params((5, 10, 15)),
        inputs=(
            InputSlot("first_frame", "image", label="First frame", required=True, operations=frozenset({I2V, FLF})),
            InputSlot("last_frame", "image", label="Last frame", required=False, operations=frozenset({I2V})),
            InputSlot("last_frame", "image", label="Last frame", required=True, operations=frozenset({FLF})),
        ),
        price=_video_price("alibaba/wan-2.7"),
        description="Alibaba's Wan 2.7: text or a first (and last) frame to a 5-15 s video, up to 1080p.",
        poll_interval=4.0, default_timeout=600, negative_prompt=True, negative_prompt_max_length=2000,
    ),
    ModelSpec(
        id="openai/gpt-image-2", provider="shark", label="GPT Image 2", kind="image",
        operations=(T2I,),
        params=(
            Param("n", ParamType.INTEGER, label="Images", default=1, min=1, max=4, help="How many images (1-4)."),
            Param("size", ParamType.ENUM, default="1024x1024",
                  choices=("1024x1024", "1536x1024", "1024x1536", "2048x2048", "auto")),
            Param("quality", ParamType.ENUM, default="medium", choices=("low", "medium", "high", "auto"),
                  help="Higher quality takes longer and costs more."),
            Param("output_format", ParamType.ENUM, label="Format", default="png", choices=("png", "jpeg", "webp")),
            Param("timeout", ParamType.INTEGER, label="Timeout (seconds)", default=300, min=30, max=1800,
                  help="How long Shark AI may work on the images before giving up (30-1800)."),
        ),
        price=_gpt_image_price,
        description="OpenAI's GPT Image 2 through Shark AI: detailed images, slow (sent in async mode).",
        poll_interval=3.0, default_timeout=300,
    ),
)

# Models Kiln offered before the catalog was tied to the docs (neither the seeds nor
# PROVIDERS.md name them): never offered or submitted, but a job already sent on one
# is still followed to its end.
RETIRED: tuple[ModelSpec, ...] = (
    ModelSpec(
        id="alibaba/wan-2.5", provider="shark", label="Wan 2.5", kind="video",
        operations=(T2V, I2V),
        params=_video_params((5, 10)),
        inputs=(InputSlot("first_frame", "image", label="First frame", required=True, operations=frozenset({I2V})),),
        price=_video_price("alibaba/wan-2.5"),
        description="Alibaba's Wan 2.5: a cheaper, quicker 5 or 10 s video from text or a first frame.",
        poll_interval=4.0, default_timeout=600, negative_prompt=True, negative_prompt_max_length=2000,
    ),
)


class SharkProvider(Provider):
    id = "shark"
    name = "Shark AI"
    default_base_url = "https://shark.ai"
    supports_cancel = True
    cancel_help = "Shark AI can cancel a job only while it is still pending."
    accepts_inline_inputs = True

    def models(self, model_ids: list[str] | None = None) -> list[ModelSpec]:
        return list(MODELS)

    def base_url(self, credentials: Credentials) -> str:
        base = super().base_url(credentials)
        # The host is the base (https://shark.ai); a pasted ".../api/v1" is dropped, our paths carry it.
        for suffix in ("/api/v1", "/api"):
            if base.endswith(suffix):
                return base[: -len(suffix)]
        return base

    def check_key(self, credentials: Credentials) -> KeyCheck:
        """Shark AI documents no harmless read call: a probe for a video that does not exist."""
        return keycheck.ask("Shark AI", f"{self.base_url(credentials)}/api/v1/videos/{keycheck.PROBE_ID}",
                            credentials)

    def job_model(self, model_id: str, model_ids: list[str] | None = None) -> ModelSpec | None:
        return super().job_model(model_id, model_ids) or next((m for m in RETIRED if m.id == model_id), None)

    # -- submit -------------------------------------------------------------

    def submit(self, job: Job, credentials: Credentials) -> Submitted:
        if job.model.kind == "video":
            return self._submit_video(job, credentials)
        return self._submit_async_image(job, credentials)

    def _body(self, job: Job) -> dict[str, Any]:
        body: dict[str, Any] = {"model": job.model.id, "prompt": job.prompt}
        allowed = {p.name: p for p in job.model.params_for(job.operation)}
        for name, value in job.params.items():
            if name in allowed and value is not None:
                body[allowed[name].api_name or name] = value
        return body

    def _submit_video(self, job: Job, credentials: Credentials) -> Submitted:
        body = self._body(job)
        if job.negative_prompt:
            body["negative_prompt"] = job.negative_prompt
        frames = [{"image_url": i.data_url(), "frame_type": role}
                  for role in ("first_frame", "last_frame") for i in job.inputs_with_role(role)[:1]]
        if frames:
            body["frame_images"] = frames
        response = self._post(f"{self.base_url(credentials)}/api/v1/videos", body, credentials)
        return Submitted(job_id=self._job_id(http.json_of(response)))

    def _post(self, url: str, body: dict[str, Any], credentials: Credentials):
        try:
            return http.request("POST", url, credentials=credentials, json_body=body)
        except ProviderError as exc:
            if exc.status_code == 404:
                raise route_missing(exc, "Shark AI", "POST", url, f"its host, {self.default_base_url}") from None
            raise

    def _submit_async_image(self, job: Job, credentials: Credentials) -> Submitted:
        body = {**self._body(job), "async": True}
        response = self._post(f"{self.base_url(credentials)}/api/v1/images/generations", body, credentials)
        data = http.json_of(response)
        images, is_task = data.get("data"), bool(data.get("id") or data.get("task_id"))
        sync = (isinstance(images, list) and bool(images)) or ("data" in data and not is_task)
        if response.status_code == 200 and sync:
            # A Shark (or a relay in front of it) that ignored "async" and answered in the
            # synchronous shape (no task id; or images in hand): the images are already here.
            # A task answered with 200 rather than 202, ``"data": null`` and all, is polled.
            return Submitted(job_id=f"{SYNC_PREFIX}{uuid.uuid4().hex}", result=self._image_result(data, data))
        return Submitted(job_id=self._job_id(data))

    @staticmethod
    def _job_id(data: dict) -> str:
        job_id = data.get("id") or data.get("task_id")
        if not job_id:
            raise ProviderError(f"Shark AI accepted the request but sent no task id: {str(data)[:200]}")
        return str(job_id)

    # -- poll -----------------------------------------------------------------

    def poll(self, job_id: str, credentials: Credentials, *, model: ModelSpec) -> Progress:
        if job_id.startswith(SYNC_PREFIX):
            raise ProviderError("This image was made synchronously: Shark AI has no task to look up again.")
        path = "videos" if model.kind == "video" else "images/generations"
        response = http.request("GET", f"{self.base_url(credentials)}/api/v1/{path}/{job_id}",
                                credentials=credentials)
        data = http.json_of(response)
        if model.kind == "video":
            return self._video_progress(data)
        return self._image_progress(data)

    def _video_progress(self, data: dict) -> Progress:
        status = str(data.get("status") or "")
        state = self.normalize(status, STATUSES)
        progress = Progress(state, provider_status=status, percent=as_int(data.get("progress")),
                            cost=as_int(data.get("credit")), raw=data)
        if state == State.SUCCEEDED:
            output = data.get("output")
            urls = _urls(output.get("urls") if isinstance(output, dict) else output) or _urls(data.get("urls"))
            if isinstance(output, dict) and not urls:
                urls = _urls(output.get("url") or output.get("video_url"))
            progress.outputs = [Output(url, "video") for url in urls]
            if not urls:
                progress.state = State.FAILED
                progress.error = "Shark AI reported the video as completed but sent no video URL."
        elif state == State.FAILED:
            progress.error = _message(data.get("error")) or "Shark AI reported the video as failed without a reason."
            progress.error_kind = _kind(data.get("error"))
        return progress

    def _image_progress(self, data: dict) -> Progress:
        status = str(data.get("status") or "")
        state = self.normalize(status, STATUSES)
        if state == State.SUCCEEDED:
            result = data.get("result") if isinstance(data.get("result"), dict) else data
            progress = self._image_result(result, data)
            progress.provider_status = status
            return progress
        progress = Progress(state, provider_status=status, percent=as_int(data.get("progress")), raw=data)
        if state == State.FAILED:
            progress.error = _message(data.get("error")) or "Shark AI reported the images as failed without a reason."
            progress.error_kind = _kind(data.get("error"))
        return progress

    @staticmethod
    def _image_result(result: Mapping[str, Any], raw: Any) -> Progress:
        items = result.get("data")
        urls = []
        for item in items if isinstance(items, list) else []:
            urls += _urls(item.get("url") if isinstance(item, dict) else item)
        progress = Progress(State.SUCCEEDED, provider_status="completed", percent=100,
                            outputs=[Output(url, "image") for url in urls],
                            cost=as_int(result.get("credit"), as_int(raw.get("credit")) if isinstance(raw, dict) else None),
                            raw=raw)
        if not urls:
            progress.state = State.FAILED
            progress.error = "Shark AI reported the images as ready but sent no image URL."
        return progress

    # -- cancel -----------------------------------------------------------------

    def cancel(self, job_id: str, credentials: Credentials, *, model: ModelSpec) -> CancelOutcome:
        if job_id.startswith(SYNC_PREFIX):
            return CancelOutcome(CancelResult.TOO_LATE, "These images were already made.")
        path = "videos" if model.kind == "video" else "images/generations"
        response = http.request("POST", f"{self.base_url(credentials)}/api/v1/{path}/{job_id}/cancel",
                                credentials=credentials, ok=(409,))
        if response.status_code == 409:
            said = http.default_error_message(response, http.parse_json(response))
            logger.info("Shark AI refused to cancel %s: %s", job_id, said)
            return CancelOutcome(CancelResult.TOO_LATE, TOO_LATE)
        data = http.parse_json(response)
        status = str(data.get("status") or "cancelled") if isinstance(data, dict) else "cancelled"
        if self.normalize(status, STATUSES) == State.CANCELLED:
            return CancelOutcome(CancelResult.CANCELLED, "Cancelled.")
        return CancelOutcome(CancelResult.TOO_LATE, TOO_LATE)


def _urls(value: Any) -> list[str]:
    """URLs from a string, a list of strings or a list of {"url"} objects; blanks dropped."""
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, list):
        found = []
        for item in value:
            found += _urls(item.get("url") if isinstance(item, dict) else item)
        return found
    return []


def _message(error: Any) -> str:
    """The provider's words: videos send a plain string, images ``{message, type}``."""
    if isinstance(error, str):
        return error.strip()
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or "").strip()
    return ""


def _kind(error: Any) -> str:
    """``MODERATION`` when the error's type says moderation refused it (``content_moderation``),
    whatever its message says."""
    if isinstance(error, dict) and moderation_in(str(error.get("type") or ""), str(error.get("code") or "")):
        return MODERATION
    return ""
