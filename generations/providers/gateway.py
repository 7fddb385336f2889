"""OpenAI-compatible video gateways (the new-api / one-api family of relays),
here serving Vidu models (``seeds/openai-compatible-gateway-videos.txt``).

Operators run their own gateway: there is no default base URL, the key's
``base_url`` is required (the host; a trailing ``/v1`` is dropped, our paths carry it).

Which models: operators expose different ones. In this order, a key serves

1. the ids an admin listed on the key by hand (``ProviderKey.models_override``);
2. else the gateway's own list, ``GET /v1/models`` (OpenAI's model list; new-api adds
   ``supported_endpoint_types``), fetched by "Test key" or "Refresh models" and cached on
   the key (``ProviderKey.listed_models``): only its video models (``video_model_ids``);
3. else the models the gateway's docs name (``DEFAULT_MODEL_IDS``;
   tests/generations/providers/test_catalog_docs.py ties the two): a model the docs do not
   name (``viduq3p-mix-540p`` was one) fails every job on a gateway without a channel for it.

Ids that follow Vidu's naming (``viduq3p-720p``, ``viduq3t-1080p-offpeak``...) get the
documented Vidu schema, any other id a generic Vidu-like one.

A gateway without a channel for the model answers 503 ``model_not_found``
("No available channel for model …"). That is an answer, not an outage: the
job fails at once in the gateway's words and its credits are released
(``ProviderError.code == MODEL_UNAVAILABLE``), instead of being retried as
"not reached".

- Submit ``POST {base}/v1/video/generations`` → ``{id, task_id, object,
  model, status: "queued", progress: 0, created_at}``.
  text-to-video: ``prompt`` + ``aspect_ratio``; image-to-video: ``image``;
  first-and-last-frame: ``image`` + ``last_image`` (``last_image`` alone is
  refused by the schema: the last-frame slot exists only for that operation,
  where the first frame is required too); reference-to-video (mix models):
  ``reference_image_urls`` with ``@Image1``-style prompts. ``duration`` 1-16
  and ``extra_body`` {audio, bgm, seed}. Images go as a short-lived signed
  URL under KILN_PUBLIC_URL when Kiln has one, else inline as data URLs
  (Vidu takes both).
- Poll ``GET {base}/v1/video/generations/{task_id}``: the wrapped shape
  ``{"code": "success", "data": {task_id, status NOT_START | SUBMITTED |
  QUEUED | IN_PROGRESS | SUCCESS | FAILURE | UNKNOWN, progress: "30%",
  result_url, fail_reason}}``. Gateways that answer that route with 404
  are asked ``GET {base}/v1/videos/{task_id}`` instead, OpenAI's video shape
  (``status`` queued | in_progress | completed | failed, integer
  ``progress``, ``metadata.url``, ``error: {code, message}``). Either shape
  is understood from either route. ``UNKNOWN`` keeps the job running until
  Kiln's deadline. An unknown id answers 400 ``{"code": "task_not_exist"}``:
  the job fails ("the gateway no longer knows this task").
- No cancel route. Download URLs point at a CDN: the key is never sent there.

Polling cadence: the gateway itself refreshes its upstream tasks about every
15 s, so polling it faster only returns the same answer; 10 s (below the
gateway's period, so we see its update within ~10 s of it) is the interval.

Price (plausible figures; gateways set their own ratios): USD per second by
resolution tier: viduq3p 540p $0.05, 720p $0.09, 1080p $0.15; viduq3t (turbo)
$0.03 / $0.05 / $0.08; mix (reference) models as viduq3p x 1.2; ``-offpeak``
variants half price; unknown ids the viduq3p 720p rate. The gateway reports
no charge, so the estimate is the actual cost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx

from generations.providers import http, keycheck
from generations.providers.base import (
    MODEL_UNAVAILABLE,
    Credentials,
    InputSlot,
    Job,
    JobInput,
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
    route_missing,
    usd_to_credits,
)

# The models seeds/openai-compatible-gateway-videos.txt names: the six of its ``model``
# field, and the two its request examples use (mix for references, an off-peak variant).
DEFAULT_MODEL_IDS = (
    "viduq3p-540p", "viduq3p-720p", "viduq3p-1080p",
    "viduq3t-540p", "viduq3t-720p", "viduq3t-1080p",
    "viduq3p-1080p-offpeak", "viduq3p-mix-720p",
)

_VIDU_ID = re.compile(r"^(?P<family>vidu[a-z0-9]+?)(?P<mix>-mix)?-(?P<res>360p|540p|720p|1080p)(?P<offpeak>-offpeak)?$")

USD_PER_SECOND = {
    "viduq3p": {"360p": 0.04, "540p": 0.05, "720p": 0.09, "1080p": 0.15},
    "viduq3t": {"360p": 0.02, "540p": 0.03, "720p": 0.05, "1080p": 0.08},
}
# new-api / one-api codes for "no channel serves this model" (503, sometimes 404 or 400).
NO_CHANNEL_CODES = frozenset({"model_not_found", "model_not_available"})
MIX_FACTOR = 1.2
OFFPEAK_FACTOR = 0.5
MAX_REFERENCES = 7

STATUSES = {
    # The wrapped (new-api task) spelling.
    "not_start": State.QUEUED,
    "submitted": State.QUEUED,
    "queued": State.QUEUED,
    "in_progress": State.RUNNING,
    "success": State.SUCCEEDED,
    "failure": State.FAILED,
    # new-api's own "we do not know": keep polling until our deadline.
    "unknown": State.RUNNING,
    # OpenAI's video object.
    "completed": State.SUCCEEDED,
    "failed": State.FAILED,
    "cancelled": State.CANCELLED,
    "canceled": State.CANCELLED,
    "running": State.RUNNING,
    "processing": State.RUNNING,
}

T2V, I2V, FLF, R2V = "text-to-video", "image-to-video", "first-last-frame", "reference-to-video"

INPUTS = (
    InputSlot(role="first_frame", kind="image", label="First frame", required=True,
              operations=frozenset({I2V, FLF})),
    InputSlot(role="last_frame", kind="image", label="Last frame", required=True,
              operations=frozenset({FLF})),
    InputSlot(role="reference", kind="image", label="Reference images", required=True,
              max_count=MAX_REFERENCES, operations=frozenset({R2V})),
)

PARAMS = (
    Param("aspect_ratio", ParamType.ENUM, label="Aspect ratio", default="16:9",
          choices=("16:9", "9:16", "1:1", "4:3", "3:4"), operations=frozenset({T2V, R2V}),
          help="With a start frame the video follows the image's shape."),
    Param("duration", ParamType.INTEGER, label="Duration (seconds)", default=5, min=1, max=16),
    Param("audio", ParamType.BOOLEAN, label="Generate audio", default=False),
    Param("bgm", ParamType.BOOLEAN, label="Background music", default=False),
    Param("seed", ParamType.INTEGER, label="Seed", min=0, max=2_147_483_647,
          help="The same seed and prompt give the same video."),
)

EXTRA_BODY = ("audio", "bgm", "seed")


def usd_per_second(model_id: str) -> float:
    match = _VIDU_ID.match(model_id)
    if not match:
        return USD_PER_SECOND["viduq3p"]["720p"]
    family = USD_PER_SECOND.get(match["family"], USD_PER_SECOND["viduq3p"])
    rate = family[match["res"]]
    if match["mix"]:
        rate *= MIX_FACTOR
    if match["offpeak"]:
        rate *= OFFPEAK_FACTOR
    return rate


def _price_for(model_id: str):
    def price(params: Mapping[str, Any], operation: str) -> int:
        return usd_to_credits(usd_per_second(model_id) * (as_int(params.get("duration"), 5) or 5))
    return price


def model_spec(model_id: str) -> ModelSpec:
    """The schema of a gateway model id (Vidu naming understood; anything else generic)."""
    match = _VIDU_ID.match(model_id)
    is_mix = bool(match and match["mix"]) or "-mix" in model_id
    if match:
        family = {"viduq3p": "Vidu Q3 Pro", "viduq3t": "Vidu Q3 Turbo"}.get(match["family"], match["family"])
        label = f"{family}{' mix' if is_mix else ''} {match['res']}{' (off-peak)' if match['offpeak'] else ''}"
        known = True
    else:
        label = model_id
        known = False
    operations = (R2V,) if is_mix else (T2V, I2V, FLF)
    description = ("Reference images to video: name them @Image1, @Image2... in the prompt."
                   if is_mix else "Text, a start frame, or first and last frames to video.")
    if not known:
        description = f"A model of this gateway (generic Vidu-style form). {description}"
    return ModelSpec(
        id=model_id, provider="gateway", label=label, kind="video", operations=operations,
        params=PARAMS, inputs=INPUTS, price=_price_for(model_id), description=description,
        poll_interval=10.0, default_timeout=1200, prompt_required=True, prompt_max_length=2000,
    )


_DEFAULT_MODELS = tuple(model_spec(model_id) for model_id in DEFAULT_MODEL_IDS)


def video_model_ids(body: Any) -> tuple[list[str], int]:
    """(the video model ids, how many models in all) of a ``GET /v1/models`` answer.

    OpenAI's shape ``{"object": "list", "data": [{"id", "object": "model", "owned_by"}]}``;
    new-api adds ``supported_endpoint_types`` (``["openai-video"]`` for a video model,
    ``["openai"]`` for chat). A model is a video model when its types name video, or, when
    the gateway gives no types, when its id follows Vidu's naming. A gateway's chat and image
    models are left out. Raises ValueError when the body is not a model list."""
    data = body.get("data") if isinstance(body, dict) else body
    if not isinstance(data, list):
        raise ValueError("no model list in the answer")
    found: list[str] = []
    for entry in data:
        model_id, types = (entry, None) if isinstance(entry, str) else (
            (entry.get("id"), entry.get("supported_endpoint_types")) if isinstance(entry, dict) else (None, None))
        if not isinstance(model_id, str) or not model_id.strip():
            continue
        model_id = model_id.strip()
        if isinstance(types, list) and types:
            is_video = any(isinstance(t, str) and "video" in t.lower() for t in types)
        else:
            is_video = bool(_VIDU_ID.match(model_id))
        if is_video and model_id not in found:
            found.append(model_id)
    return found, len(data)


def _read_model_list(response: httpx.Response) -> tuple[str, list[str] | None]:
    ids, total = video_model_ids(keycheck.json_object(response))
    if not ids:
        return (f"Its model list names {total} model{'s' if total != 1 else ''}, none of them a video model Kiln "
                "knows: the studio keeps the models of the gateway's docs (list others on the key by hand)."), []
    shown = ", ".join(ids[:4]) + (f" and {len(ids) - 4} more" if len(ids) > 4 else "")
    return (f"Its model list names {total} model{'s' if total != 1 else ''}, {len(ids)} of them video: {shown}. "
            "The studio offers these."), ids


def _image_value(item: JobInput) -> str:
    return item.url or item.data_url()


class GatewayProvider(Provider):
    id = "gateway"
    name = "OpenAI-compatible gateway"
    default_base_url = ""
    supports_cancel = False
    cancel_help = ("An OpenAI-compatible gateway cannot cancel a job once it is sent (it has no cancel route): "
                   "the job will finish and be charged.")
    supports_webhooks = False
    accepts_inline_inputs = True

    def models(self, model_ids: list[str] | None = None) -> list[ModelSpec]:
        if not model_ids:
            return list(_DEFAULT_MODELS)
        defaults = {m.id: m for m in _DEFAULT_MODELS}
        return [defaults.get(model_id) or model_spec(model_id) for model_id in dict.fromkeys(model_ids)]

    def job_model(self, model_id: str, model_ids: list[str] | None = None) -> ModelSpec | None:
        found = super().job_model(model_id, model_ids)
        if found is None and _VIDU_ID.match(model_id):
            # Vidu's own ids are understood without the key's list, so a job made from a
            # list that has changed since can still be polled (but not submitted again).
            return model_spec(model_id)
        return found

    def base_url(self, credentials: Credentials) -> str:
        base = (credentials.base_url or "").rstrip("/")
        if not base:
            raise ProviderError("This gateway key has no base URL: set the gateway's address on the key.")
        # Operators often paste the OpenAI-style ".../v1": our paths carry it already.
        return base[:-3] if base.endswith("/v1") else base

    def submit(self, job: Job, credentials: Credentials) -> Submitted:
        codes: list[str] = []

        def words(response: httpx.Response, body: Any) -> str:
            # new-api's envelope puts the specific code beside a generic type ("new_api_error").
            error = body.get("error") if isinstance(body, dict) else None
            codes.append(str(error.get("code") or "") if isinstance(error, dict) else http.error_code(body))
            return http.default_error_message(response, body)

        url = f"{self.base_url(credentials)}/v1/video/generations"
        try:
            response = http.request("POST", url, credentials=credentials, json_body=self.request_body(job),
                                    error_message=words)
        except ProviderError as exc:
            if codes and codes[-1] in NO_CHANNEL_CODES:
                # The gateway answered (503, but not an outage): it has no channel for this
                # model, and sending the job again will not give it one.
                raise ProviderError(exc.message, retryable=False, status_code=exc.status_code,
                                    code=MODEL_UNAVAILABLE) from None
            if exc.status_code == 404:
                raise route_missing(exc, "the gateway", "POST", url, "its host, e.g. https://gateway.example") from None
            raise
        payload = http.json_of(response)
        data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
        job_id = payload.get("task_id") or payload.get("id") or data.get("task_id") or data.get("id")
        if not job_id:
            raise ProviderError(http.default_error_message(response, payload)
                                if payload.get("code") not in (None, "", "success")
                                else "The gateway accepted the job but sent no task id.",
                                status_code=response.status_code, code=http.error_code(payload))
        return Submitted(job_id=str(job_id))

    def check_key(self, credentials: Credentials) -> KeyCheck:
        """The gateway's own model list, ``GET /v1/models``: it needs the key and changes
        nothing. Its video models come back in ``KeyCheck.models`` (cached on the key)."""
        return keycheck.ask("The gateway", f"{self.base_url(credentials)}/v1/models", credentials,
                            read=_read_model_list, documented="its host, e.g. https://gateway.example")

    def request_body(self, job: Job) -> dict[str, Any]:
        params = job.params
        body: dict[str, Any] = {"model": job.model.id, "prompt": job.prompt}
        firsts, lasts = job.inputs_with_role("first_frame"), job.inputs_with_role("last_frame")
        references = job.inputs_with_role("reference")
        if lasts and not firsts:
            raise ProviderError("A last frame needs a first frame too: the gateway cannot take a last frame alone.")
        if job.operation in (I2V, FLF):
            if not firsts:
                raise ProviderError("This needs a first frame.")
            body["image"] = _image_value(firsts[0])
        if job.operation == FLF:
            if not lasts:
                raise ProviderError("First and last frame needs a last frame.")
            body["last_image"] = _image_value(lasts[0])
        if job.operation == R2V:
            if not references:
                raise ProviderError("Reference to video needs at least one reference image.")
            body["reference_image_urls"] = [_image_value(r) for r in references[:MAX_REFERENCES]]
        if job.operation in (T2V, R2V) and params.get("aspect_ratio"):
            body["aspect_ratio"] = params["aspect_ratio"]
        if params.get("duration") is not None:
            body["duration"] = int(params["duration"])
        extra = {name: params[name] for name in EXTRA_BODY if params.get(name) is not None}
        if extra:
            body["extra_body"] = extra
        return body

    def poll(self, job_id: str, credentials: Credentials, *, model: ModelSpec) -> Progress:
        base = self.base_url(credentials)
        forgotten = False  # the wrapped route's 404 names the task as unknown (some gateways answer so)
        try:
            response = http.request("GET", f"{base}/v1/video/generations/{job_id}", credentials=credentials,
                                    ok=(404,))
            if response.status_code == 404:
                forgotten = "task_not_exist" in response.text
                response = http.request("GET", f"{base}/v1/videos/{job_id}", credentials=credentials)
        except ProviderError as exc:
            if exc.code == "task_not_exist" or "task_not_exist" in exc.message:
                words = exc.message
            elif forgotten and exc.status_code == 404:  # and no /v1/videos answers instead
                words = "task_not_exist"
            else:
                raise
            return Progress(state=State.FAILED, provider_status="task_not_exist",
                            error=f"The gateway no longer knows this task ({words}).")
        return self.read_task(http.json_of(response))

    def read_task(self, payload: Mapping[str, Any]) -> Progress:
        data = payload.get("data")
        task = data if isinstance(data, dict) and ("status" in data or "task_id" in data) else payload
        status = str(task.get("status") or "").strip()
        state = self.normalize(status, STATUSES)
        progress = Progress(state=state, provider_status=status, raw=dict(payload))
        percent = as_int(task.get("progress"))
        if percent is not None:
            progress.percent = max(0, min(100, percent))
        if state is State.FAILED:
            progress.error = self.failure_message(task)
        elif state is State.SUCCEEDED:
            url = self.result_url(task)
            if not url:
                progress.state = State.FAILED
                progress.error = "The gateway reported the video as finished but sent no URL."
                return progress
            progress.outputs = [Output(url=url, kind="video")]
            progress.percent = 100
        return progress

    @staticmethod
    def result_url(task: Mapping[str, Any]) -> str:
        metadata = task.get("metadata") if isinstance(task.get("metadata"), dict) else {}
        inner = task.get("data") if isinstance(task.get("data"), dict) else {}
        for candidate in (task.get("result_url"), metadata.get("url"), task.get("video_url"), task.get("url"),
                          inner.get("video_url"), inner.get("url")):
            if isinstance(candidate, str) and candidate.strip().startswith(("http://", "https://")):
                return candidate.strip()
        return ""

    @staticmethod
    def failure_message(task: Mapping[str, Any]) -> str:
        reason = task.get("fail_reason")
        if isinstance(reason, str) and reason.strip():
            return reason.strip()
        error = task.get("error")
        if isinstance(error, dict):
            message, code = str(error.get("message") or "").strip(), str(error.get("code") or "").strip()
            if message:
                return f"{message} ({code})" if code and code not in message else message
            if code:
                return code
        if isinstance(error, str) and error.strip():
            return error.strip()
        return "The gateway reported the video as failed without giving a reason."

    def download_headers(self, url: str, credentials: Credentials) -> dict[str, str]:
        """Gateway results live on a CDN: never send the key there."""
        return {}
