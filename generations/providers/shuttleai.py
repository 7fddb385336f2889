"""ShuttleAI: a cut-down Azure OpenAI Sora job API (``seeds/shuttleai-videos.txt``).

- ``POST {base}/jobs`` with ``prompt``, ``model: "sora"``, ``width``,
  ``height`` (each one of 480, 720, 854, 1080, 1280, 1920) and ``n_seconds``
  (1-20) answers ``{id, status: "queued", created_at}``.
- ``GET {base}/jobs/{id}`` moves through ``queued``, ``preprocessing``,
  ``running``, ``processing`` to ``succeeded``, ``failed`` (with
  ``failure_reason``: input_moderation, output_moderation, internal_error)
  or ``cancelled``. A finished job lists ``generations[]``, each with an
  ``id`` (``gen_…``) and ``output.video_url`` (a CDN URL).
- Every generation can also be fetched from
  ``GET {base}/{gen_id}/content/video``, which needs the key: that is the
  ``fallback_url`` of each output, and ``download_headers`` sends the key
  there and to nothing else (never to the CDN).
- There is no cancel endpoint, and no harmless read call documented: "Test key" asks
  for a job that does not exist (``keycheck``), which proves a refused key or a wrong
  base URL, never a working key.
- The base URL: the seed's is ``https://api.shuttleai.com/v1/video/generations``.
  A key may give the host alone (or the host and ``/v1``): ``base_url`` adds the
  documented path, so a host does not fail every job with "No route for POST /jobs".
- Errors: ``{"error": {"message", "type", "code"}}`` with 400, 401, 402,
  403, 423, 429, 500, 503.

Price: the seed's per-second table is keyed by resolution names
("480p / 854p", "720p / 1280p", "1080p / 1920p"), i.e. by the frame's
dimensions. We take the tier of the LARGER side, ``max(width, height)``:
480 or 854 → $0.07/s, 720 or 1280 → $0.12/s, 1080 or 1920 → $0.20/s. A
mixed frame such as 480x1920 is billed at the 1920 tier, so an estimate
never undershoots what ShuttleAI may charge. ShuttleAI reports no charge of
its own, so the actual cost follows the same rule, read from the width,
height and n_seconds the job object echoes back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from generations.providers import http, keycheck
from generations.providers.base import (
    Credentials,
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
    route_missing,
    usd_to_credits,
)

DIMENSIONS = (480, 720, 854, 1080, 1280, 1920)
API_PATH = "/v1/video/generations"

# USD per second of video, by the larger side of the frame.
USD_PER_SECOND = {480: 0.07, 854: 0.07, 720: 0.12, 1280: 0.12, 1080: 0.20, 1920: 0.20}

STATUSES = {
    "queued": State.QUEUED,
    "preprocessing": State.RUNNING,
    "running": State.RUNNING,
    "processing": State.RUNNING,
    "succeeded": State.SUCCEEDED,
    "failed": State.FAILED,
    "cancelled": State.CANCELLED,
    "canceled": State.CANCELLED,
}

FAILURE_REASONS = {
    "input_moderation": "The prompt was blocked by ShuttleAI's moderation.",
    "output_moderation": "The generated video was blocked by ShuttleAI's moderation.",
    "internal_error": "ShuttleAI had an internal error while generating the video.",
}


def usd_per_second(width: int, height: int) -> float:
    """The seed's per-second rate for a frame, by its larger side (see the module docstring)."""
    side = max(int(width), int(height))
    if side in USD_PER_SECOND:
        return USD_PER_SECOND[side]
    # Not an allowed value (the schema refuses these): round up to the next tier.
    for tier in sorted(USD_PER_SECOND):
        if side <= tier:
            return USD_PER_SECOND[tier]
    return USD_PER_SECOND[1920]


def cost_credits(width: Any, height: Any, n_seconds: Any) -> int | None:
    w, h, s = as_int(width), as_int(height), as_int(n_seconds)
    if not (w and h and s):
        return None
    return usd_to_credits(usd_per_second(w, h) * s)


def _price(params: Mapping[str, Any], operation: str) -> int:
    return cost_credits(params.get("width", 854), params.get("height", 480), params.get("n_seconds", 5)) or 0


SORA = ModelSpec(
    id="sora",
    provider="shuttleai",
    label="Sora (ShuttleAI)",
    kind="video",
    operations=("text-to-video",),
    params=(
        Param("width", ParamType.ENUM, label="Width (px)", default=854, required=True, choices=DIMENSIONS,
              help="ShuttleAI accepts 480, 720, 854, 1080, 1280 or 1920."),
        Param("height", ParamType.ENUM, label="Height (px)", default=480, required=True, choices=DIMENSIONS,
              help="ShuttleAI accepts 480, 720, 854, 1080, 1280 or 1920."),
        Param("n_seconds", ParamType.INTEGER, label="Duration (seconds)", default=5, required=True, min=1, max=20),
    ),
    price=_price,
    description="OpenAI Sora through ShuttleAI's job API. $0.07-$0.20 per second by resolution.",
    poll_interval=5.0,          # ShuttleAI's docs poll every few seconds
    default_timeout=900,
    prompt_required=True,
)


class ShuttleAIProvider(Provider):
    id = "shuttleai"
    name = "ShuttleAI"
    default_base_url = "https://api.shuttleai.com/v1/video/generations"
    supports_cancel = False
    cancel_help = "ShuttleAI cannot cancel a job once it is sent: it will run to the end and be charged."
    supports_webhooks = False
    accepts_inline_inputs = True

    def models(self, model_ids: list[str] | None = None) -> list[ModelSpec]:
        return [SORA]

    def base_url(self, credentials: Credentials) -> str:
        """The key's base URL with the documented ``/v1/video/generations`` added when it is
        missing: ``https://api.shuttleai.com`` and ``https://api.shuttleai.com/v1`` both work."""
        base = super().base_url(credentials)
        path = urlsplit(base).path.rstrip("/")
        if path.endswith(API_PATH):
            return base
        if path.endswith("/v1"):
            return base + API_PATH[3:]
        return base + API_PATH

    def check_key(self, credentials: Credentials) -> KeyCheck:
        return keycheck.ask("ShuttleAI", f"{self.base_url(credentials)}/jobs/{keycheck.PROBE_ID}", credentials)

    def submit(self, job: Job, credentials: Credentials) -> Submitted:
        params = job.params
        body = {
            "prompt": job.prompt,
            "model": job.model.id,
            "width": int(params.get("width", 854)),
            "height": int(params.get("height", 480)),
            "n_seconds": int(params.get("n_seconds", 5)),
        }
        url = f"{self.base_url(credentials)}/jobs"
        try:
            response = http.request("POST", url, credentials=credentials, json_body=body)
        except ProviderError as exc:
            if exc.status_code == 404:
                raise route_missing(exc, "ShuttleAI", "POST", url, f"{self.default_base_url}, or its host") from None
            raise
        payload = http.json_of(response)
        job_id = payload.get("id") or payload.get("job_id")
        if not job_id:
            raise ProviderError("ShuttleAI accepted the job but sent no job id.", status_code=response.status_code)
        return Submitted(job_id=str(job_id))

    def poll(self, job_id: str, credentials: Credentials, *, model: ModelSpec) -> Progress:
        base = self.base_url(credentials)
        response = http.request("GET", f"{base}/jobs/{job_id}", credentials=credentials)
        payload = http.json_of(response)
        status = str(payload.get("status") or "")
        state = self.normalize(status, STATUSES)
        progress = Progress(state=state, provider_status=status, raw=payload)
        percent = as_int(payload.get("progress"))
        if percent is not None:
            progress.percent = max(0, min(100, percent))
        if state is State.FAILED:
            progress.error = self.failure_message(payload)
        elif state is State.SUCCEEDED:
            progress.outputs = self.outputs(payload, base)
            if not progress.outputs:
                progress.state = State.FAILED
                progress.error = "ShuttleAI reported the job as succeeded but listed no video."
            else:
                progress.percent = 100
                progress.cost = cost_credits(payload.get("width"), payload.get("height"), payload.get("n_seconds"))
        return progress

    @staticmethod
    def failure_message(payload: Mapping[str, Any]) -> str:
        reason = str(payload.get("failure_reason") or "").strip()
        if reason in FAILURE_REASONS:
            return FAILURE_REASONS[reason]
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str) and error:
            return error
        if reason:
            return f"ShuttleAI failed the job ({reason.replace('_', ' ')})."
        return "ShuttleAI failed the job without giving a reason."

    @staticmethod
    def outputs(payload: Mapping[str, Any], base: str) -> list[Output]:
        found = []
        generations = payload.get("generations")
        for generation in generations if isinstance(generations, list) else []:
            if not isinstance(generation, dict):
                continue
            gen_id = str(generation.get("id") or "").strip()
            fallback = f"{base}/{gen_id}/content/video" if gen_id else None
            output = generation.get("output")
            url = output.get("video_url") if isinstance(output, dict) else None
            url = str(url).strip() if isinstance(url, str) and url.strip() else None
            if url:
                found.append(Output(url=url, kind="video", fallback_url=fallback))
            elif fallback:
                # No CDN link: the content endpoint (with the key) is the only way.
                found.append(Output(url=fallback, kind="video"))
        return found

    def download_headers(self, url: str, credentials: Credentials) -> dict[str, str]:
        """The key for ShuttleAI's own content endpoint only; a CDN URL gets nothing."""
        if http.same_host(url, self.base_url(credentials)):
            return {"Authorization": f"Bearer {credentials.api_key}"}
        return {}
