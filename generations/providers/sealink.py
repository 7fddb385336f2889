"""Sealink: Alibaba DashScope's Wan video models behind an OpenAI-shaped API
(``seeds/sealink-videos.txt``).

- ``POST /v1/video/generations``: ``wan2.6-t2v`` (text-to-video, or
  template-to-video: ``template_id`` + ``variables`` instead of a prompt; an
  unknown template answers 404), ``wan2.6-i2v`` and ``wan2.6-i2v-flash``
  (image-to-video: the first frame goes inline as a data URL in ``image``).
  ``n`` 1-4 outputs, ``size``, ``duration`` 1-60, ``fps`` 1-60,
  ``negative_prompt`` (1024 characters at most), ``seed``, ``tags`` and
  ``webhook_url`` (https only: sent when the engine gives the job one).
- ``POST /v1/video/edits``: ``happyhorse-1.0-video-edit`` with the source
  video inline in ``video`` and the edit instruction as the prompt.
- ``GET /v1/tasks/{id}``: ``status`` pending | running | completed | failed.
  The result is in ``data`` (shapes vary: ``video_url``, ``url``, ``urls``,
  ``videos[].url``, a bare list...) or in ``upstream_response``, DashScope's
  own task body (``output.task_status`` PENDING | RUNNING | SUCCEEDED |
  FAILED | CANCELED | UNKNOWN, ``output.video_url``, ``code``, ``message``,
  ``usage.duration`` / ``usage.size``). Both are read; when both name videos, ``data``'s are
  the result (the seed reads ``data or upstream_response``).
- ``DELETE /v1/tasks/{id}``: 200 cancelled; 409 or 400 the task has already
  started (DashScope cancels only PENDING tasks); 501 this route cannot
  cancel.
- ``GET /v1/tasks?limit=1``: the task list, "Test key"'s harmless read call (not in the seed:
  where it is not served, "Test key" probes ``GET /v1/tasks/{id}`` instead).
- Errors ``{"error": {"message", "type", "code"}}``; 429 carries
  ``Retry-After`` and ``X-RateLimit-*`` (read when ``Retry-After`` is absent).
  A 404 to a submit names an unknown template when the job has one (the member's
  mistake); otherwise the key's base URL leads nowhere (``ROUTE_MISSING``).

The base URL is the host (``https://test.sealink.io``); a trailing ``/v1`` is dropped.

Status decisions: Sealink's top-level ``status`` is the verdict (it settles
usage at terminal state); DashScope's ``task_status`` is only used when the
top-level one is missing or unknown. DashScope's ``UNKNOWN`` means the
upstream task can no longer be found (it expired or never existed): it fails
the generation only when Sealink's own status says ``failed`` too, with a
message that says so; otherwise the task stays running and Kiln's deadline
decides (the record then reads "expired", which is honest: nobody knows
whether it finished and was billed).

Price (plausible figures; Sealink publishes per-model prices on its model
pages, not in the seed): USD per second of each output, by frame size,
times ``n``:

=================  ========  =========  =========
model              480-class  720-class  1080-class
=================  ========  =========  =========
wan2.6-t2v / i2v   $0.05      $0.10      $0.15
wan2.6-i2v-flash   $0.025     $0.05      $0.075
happyhorse edit    $0.06      $0.12      $0.18
=================  ========  =========  =========

The actual cost follows the same rule from DashScope's ``usage``
(``duration``, ``size``) and the number of videos returned when Sealink sends
them; otherwise the estimate stands.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from generations.providers import http, keycheck
from generations.providers.base import (
    INPUT,
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
    Verdict,
    as_int,
    moderation_in,
    route_missing,
    usd_to_credits,
)

SIZES = ("1920x1080", "1280x720", "640x480", "1080x1920", "720x1280", "480x640")

# USD per second of one output, by the frame's class (its shorter side: 480, 720 or 1080).
RATES = {
    "wan2.6-t2v": {480: 0.05, 720: 0.10, 1080: 0.15},
    "wan2.6-i2v": {480: 0.05, 720: 0.10, 1080: 0.15},
    "wan2.6-i2v-flash": {480: 0.025, 720: 0.05, 1080: 0.075},
    "happyhorse-1.0-video-edit": {480: 0.06, 720: 0.12, 1080: 0.18},
}

STATUSES = {
    "pending": State.QUEUED,
    "queued": State.QUEUED,
    "running": State.RUNNING,
    "processing": State.RUNNING,
    "completed": State.SUCCEEDED,
    "succeeded": State.SUCCEEDED,
    "failed": State.FAILED,
    "cancelled": State.CANCELLED,
    "canceled": State.CANCELLED,
}

DASHSCOPE_STATUSES = {
    "PENDING": State.QUEUED,
    "RUNNING": State.RUNNING,
    "SUCCEEDED": State.SUCCEEDED,
    "FAILED": State.FAILED,
    "CANCELED": State.CANCELLED,
    "CANCELLED": State.CANCELLED,
    # The upstream task cannot be found: see the module docstring.
    "UNKNOWN": State.RUNNING,
}

TEMPLATE_OPERATION = "template-to-video"
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
MAX_VARIABLES = 50
MAX_VARIABLE_LENGTH = 1000


def size_tier(size: Any) -> int:
    """480, 720 or 1080 from "1280x720", "1280*720", "720P"...; 720 when unreadable."""
    numbers = [int(n) for n in re.findall(r"\d+", str(size or ""))]
    if not numbers:
        return 720
    short_side = min(numbers) if len(numbers) > 1 else numbers[0]
    if short_side >= 1000:
        return 1080
    if short_side >= 700:
        return 720
    return 480


def cost_credits(model_id: str, size: Any, seconds: Any, count: Any = 1) -> int | None:
    seconds_i, count_i = as_int(seconds), as_int(count, 1)
    if not seconds_i:
        return None
    rates = RATES.get(model_id, RATES["wan2.6-t2v"])
    return usd_to_credits(rates[size_tier(size)] * seconds_i * max(1, count_i or 1))


def _price_for(model_id: str):
    def price(params: Mapping[str, Any], operation: str) -> int:
        size = params.get("resolution") or params.get("size") or "1280x720"
        return cost_credits(model_id, size, params.get("duration", 5), params.get("n", 1)) or 0
    return price


def is_variable_name(name: str) -> bool:
    """A name Sealink takes for a template variable (letters, digits and _ . -, from a letter or _)."""
    return bool(_VARIABLE_NAME.match(name))


def parse_variables(raw: Any) -> dict[str, str]:
    """Template variables from JSON (an object) or ``key=value`` lines. Raises ValueError for a person."""
    if isinstance(raw, Mapping):
        items = list(raw.items())
    else:
        text = str(raw).strip()
        if not text:
            return {}
        if text.startswith(("{", "[")):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"This looks like JSON but is not valid ({exc.msg}, line {exc.lineno}).") from None
            if not isinstance(parsed, dict):
                raise ValueError("Give a JSON object of name: value pairs.")
            items = list(parsed.items())
        else:
            items = []
            for number, line in enumerate(text.splitlines(), start=1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                if "=" not in line:
                    raise ValueError(f"Line {number} is not name=value: {line.strip()[:40]!r}.")
                name, value = line.split("=", 1)
                items.append((name.strip(), value.strip()))
    variables: dict[str, str] = {}
    for name, value in items:
        name = str(name).strip()
        if not _VARIABLE_NAME.match(name):
            raise ValueError(f"{name[:40]!r} is not a variable name (letters, digits and _ . -, starting with a letter).")
        if name in variables:
            raise ValueError(f"The variable {name!r} is given twice.")
        if isinstance(value, dict | list) or value is None:
            raise ValueError(f"The value of {name!r} must be text or a number.")
        text_value = str(value).lower() if isinstance(value, bool) else str(value)
        if len(text_value) > MAX_VARIABLE_LENGTH:
            raise ValueError(f"The value of {name!r} is longer than {MAX_VARIABLE_LENGTH} characters.")
        variables[name] = text_value
    if len(variables) > MAX_VARIABLES:
        raise ValueError(f"At most {MAX_VARIABLES} variables.")
    return variables


def format_variables(variables: Mapping[str, str]) -> str:
    """The canonical text form: ``name=value`` lines, or compact JSON when a value spans lines."""
    if any("\n" in v or "\r" in v for v in variables.values()):
        return json.dumps(dict(variables), ensure_ascii=False, sort_keys=True)
    return "\n".join(f"{name}={value}" for name, value in variables.items())


@dataclass(frozen=True)
class VariablesParam(Param):
    """A TEXT field holding template variables; cleans to the canonical text form."""

    def clean(self, raw: Any) -> Any:
        value = super().clean(raw) if not isinstance(raw, Mapping) else raw
        if value is None:
            return None
        return format_variables(parse_variables(value))


def _common_params(size_name: str = "size", *, with_n: bool = True) -> tuple[Param, ...]:
    params = [
        Param(size_name, ParamType.ENUM, label="Size" if size_name == "size" else "Resolution",
              default="1280x720", choices=SIZES),
        Param("duration", ParamType.INTEGER, label="Duration (seconds)", default=5, min=1, max=60),
    ]
    if with_n:
        params += [
            Param("n", ParamType.INTEGER, label="Number of videos", default=1, min=1, max=4,
                  help="Each video is billed; all of them attach to this generation."),
            Param("fps", ParamType.INTEGER, label="Frames per second", min=1, max=60,
                  help="Empty for the model's default."),
        ]
    params.append(Param("seed", ParamType.INTEGER, label="Seed", min=0, max=2_147_483_647,
                        help="The same seed and prompt give the same video."))
    if with_n:
        params.append(Param("tags", ParamType.TAGS, label="Tags", max=20,
                            help="Comma separated; Sealink stores them with the task."))
    return tuple(params)


TEMPLATE_PARAMS = (
    Param("template_id", ParamType.STRING, label="Template id", required=True, max_length=100,
          operations=frozenset({TEMPLATE_OPERATION}),
          help="An existing Sealink prompt template, e.g. tpl_sunset."),
    VariablesParam("variables", ParamType.TEXT, label="Template variables", max_length=20_000,
                   operations=frozenset({TEMPLATE_OPERATION}),
                   help="One name=value per line, or a JSON object."),
)

FIRST_FRAME = InputSlot(role="first_frame", kind="image", label="First frame", required=True,
                        operations=frozenset({"image-to-video"}))
SOURCE_VIDEO = InputSlot(role="source_video", kind="video", label="Source video", required=True,
                         operations=frozenset({"video-edit"}))

_COMMON = {"provider": "sealink", "kind": "video", "poll_interval": 10.0, "default_timeout": 900}

MODELS = (
    ModelSpec(
        id="wan2.6-t2v", label="Wan 2.6 text to video", operations=("text-to-video", TEMPLATE_OPERATION),
        params=(*TEMPLATE_PARAMS, *_common_params()), price=_price_for("wan2.6-t2v"),
        description="Alibaba Wan 2.6 through Sealink. Also renders saved prompt templates.",
        prompt_optional_operations=frozenset({TEMPLATE_OPERATION}),
        negative_prompt=True, negative_prompt_max_length=1024, **_COMMON),
    ModelSpec(
        id="wan2.6-i2v", label="Wan 2.6 image to video", operations=("image-to-video",),
        params=_common_params(), inputs=(FIRST_FRAME,), price=_price_for("wan2.6-i2v"),
        description="Animates a start frame with Alibaba Wan 2.6.",
        negative_prompt=True, negative_prompt_max_length=1024, **_COMMON),
    ModelSpec(
        id="wan2.6-i2v-flash", label="Wan 2.6 image to video (flash)", operations=("image-to-video",),
        params=_common_params(), inputs=(FIRST_FRAME,), price=_price_for("wan2.6-i2v-flash"),
        description="The faster, cheaper Wan 2.6 image-to-video.",
        negative_prompt=True, negative_prompt_max_length=1024, **_COMMON),
    ModelSpec(
        id="happyhorse-1.0-video-edit", label="HappyHorse video edit", operations=("video-edit",),
        params=_common_params("resolution", with_n=False), inputs=(SOURCE_VIDEO,),
        price=_price_for("happyhorse-1.0-video-edit"),
        description="Edits a video by instruction: replace backgrounds, restyle, and more.",
        **_COMMON),
)


def retry_after_from_headers(headers: httpx.Headers) -> float | None:
    """``Retry-After`` (seconds or a date), else the ``X-RateLimit-Reset*`` headers
    (seconds, an epoch time, or OpenAI-style durations such as ``6m0s`` / ``20ms``)."""
    for name in ("Retry-After", "X-RateLimit-Reset-Requests", "X-RateLimit-Reset", "X-RateLimit-Reset-Tokens"):
        raw = (headers.get(name) or "").strip()
        if not raw:
            continue
        if name == "Retry-After":
            seconds = http.retry_after_seconds(httpx.Response(429, headers={"Retry-After": raw}))
            if seconds is not None:
                return seconds
            continue
        try:
            value = float(raw)
        except ValueError:
            parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", raw)
            if not parts:
                continue
            scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
            return sum(float(n) * scale[u] for n, u in parts)
        if value > 1_000_000_000:     # an epoch timestamp
            return max(0.0, value - time.time())
        return max(0.0, value)
    return None


def _call(method: str, url: str, credentials: Credentials, *, json_body: Any = None,
          ok: tuple[int, ...] = ()) -> httpx.Response:
    """``http.request``, reading Sealink's rate-limit headers on a 429."""
    response = http.request(method, url, credentials=credentials, json_body=json_body, ok=(*ok, 429))
    if response.status_code == 429 and 429 not in ok:
        body = http.parse_json(response)
        raise ProviderError(http.default_error_message(response, body), retryable=True,
                            retry_after=retry_after_from_headers(response.headers), status_code=429,
                            code=http.error_code(body))
    return response


def find_video_urls(value: Any, depth: int = 0) -> list[str]:
    """Video URLs from Sealink's loosely shaped ``data`` (a dict, a list, nested...), in order."""
    if depth > 5 or value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        return [text] if text.startswith(("http://", "https://")) else []
    if isinstance(value, list):
        return [url for item in value for url in find_video_urls(item, depth + 1)]
    if isinstance(value, dict):
        found = []
        for key in ("video_url", "url", "urls", "video_urls", "videos", "video", "results", "result",
                    "output", "data"):
            if key in value:
                found += find_video_urls(value[key], depth + 1)
        return _unique(found)
    return []


def _error_code(payload: Mapping[str, Any]) -> str:
    error = payload.get("error")
    return str(error.get("code") or "") if isinstance(error, dict) else ""


def _unique(urls: list[str]) -> list[str]:
    return list(dict.fromkeys(urls))


# Kiln's own start of an answer (``http.default_error_message``, ``keycheck.answer_text``): the
# status line before a plain-text body, or all there is of a web page or an empty body.
_KILNS_STATUS_LINE = re.compile(r"^HTTP \d{3}\b[^:]*(?::\s*|$)")
_PATH = re.compile(r"\S*/\S*")  # an echo of the URL asked ("/v1/tasks/kiln-key-test")
_NO_SUCH = ("not found", "not_found", "not exist", "not_exist", "no such", "unknown")


def _task_route_served(probe: KeyCheck) -> bool:
    """Whether Sealink's documented ``GET /v1/tasks/{id}`` answered the probe in words of its own:
    a 404 that speaks of the task as unknown ("Task ... not found", "task_not_exist", "No such
    task"), or any other answer below 500 (an id it does not take, a task state). Not Kiln's
    "HTTP 404 Not Found" status line, nor a path the answer echoes: a route that is not served
    says those too."""
    if probe.status_code is None or probe.status_code >= 500:
        return False
    words = _PATH.sub(" ", _KILNS_STATUS_LINE.sub("", probe.answer.strip())).lower().strip()
    if not words:
        return False
    if probe.status_code != 404:
        return True
    return "task" in words and any(said in words for said in _NO_SUCH)


def _read_task_list(response: httpx.Response) -> tuple[str, None]:
    body = keycheck.json_object(response)
    tasks = body.get("data")
    if not isinstance(tasks, list):
        raise ValueError("no task list in the answer")
    return f"Its task list answered ({len(tasks)} task{'s' if len(tasks) != 1 else ''} shown).", None


class SealinkProvider(Provider):
    id = "sealink"
    name = "Sealink"
    default_base_url = "https://test.sealink.io"
    supports_cancel = True
    cancel_help = "Sealink can cancel a task only before it starts."
    supports_webhooks = True
    accepts_inline_inputs = True

    def models(self, model_ids: list[str] | None = None) -> list[ModelSpec]:
        return list(MODELS)

    def base_url(self, credentials: Credentials) -> str:
        base = super().base_url(credentials)
        # Operators paste the OpenAI-style ".../v1": our paths carry it already.
        return base[:-3] if base.endswith("/v1") else base

    def check_key(self, credentials: Credentials) -> KeyCheck:
        """Sealink's task list, ``GET /v1/tasks``: it needs the key and changes nothing.

        The seed documents only ``/v1/tasks/{id}``: where the list is not served (HTTP 404), the
        documented route is probed for a task that does not exist. A refused key shows as
        refused; Sealink's own answer (a 404 that calls the task unknown, in whatever words, or
        any other answer of its own below 500) says the base URL reaches it (the key is then not
        proved either way); a bare 404 (a web page, "Not Found", "Invalid URL (GET ...)") keeps
        the list's verdict, no route here."""
        base, documented = self.base_url(credentials), f"its host, {self.default_base_url}"
        listed = keycheck.ask("Sealink", f"{base}/v1/tasks?limit=1", credentials, read=_read_task_list,
                              documented=documented)
        if listed.status_code != 404:
            return listed
        probe = keycheck.ask("Sealink", f"{base}/v1/tasks/{keycheck.PROBE_ID}", credentials)
        if probe.verdict == Verdict.REFUSED or _task_route_served(probe):
            return probe
        return listed

    # -- submit ---------------------------------------------------------------

    def submit(self, job: Job, credentials: Credentials) -> Submitted:
        base = self.base_url(credentials)
        body = self.request_body(job)
        template_id = body.get("template_id")
        path = "/v1/video/edits" if job.operation == "video-edit" else "/v1/video/generations"
        try:
            response = _call("POST", f"{base}{path}", credentials, json_body=body)
        except ProviderError as exc:
            if template_id and exc.status_code == 404:
                raise ProviderError(f"Sealink has no prompt template {template_id!r}: {exc.message}",
                                    status_code=404, code=exc.code or "template_not_found", kind=INPUT) from None
            if exc.status_code == 404:
                raise route_missing(exc, "Sealink", "POST", f"{base}{path}",
                                    f"its host, {self.default_base_url}") from None
            raise
        payload = http.json_of(response)
        data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
        job_id = payload.get("id") or payload.get("task_id") or data.get("task_id") or data.get("id")
        if not job_id:
            raise ProviderError("Sealink accepted the task but sent no task id.", status_code=response.status_code)
        return Submitted(job_id=str(job_id))

    def request_body(self, job: Job) -> dict[str, Any]:
        params = dict(job.params)
        body: dict[str, Any] = {"model": job.model.id}
        if job.operation == "video-edit":
            video = job.inputs_with_role("source_video")
            if not video:
                raise ProviderError("A video edit needs a source video.")
            body["video"] = video[0].data_url()
            body["prompt"] = job.prompt
            for name in ("resolution", "duration", "seed"):
                if params.get(name) is not None:
                    body[name] = params[name]
            return body

        if job.operation == TEMPLATE_OPERATION:
            body["template_id"] = params.get("template_id")
            try:
                body["variables"] = parse_variables(params.get("variables") or "")
            except ValueError as exc:
                raise ProviderError(f"Template variables: {exc}", kind=INPUT) from None
            if job.prompt:
                body["prompt"] = job.prompt
        else:
            body["prompt"] = job.prompt
        if job.operation == "image-to-video":
            frames = job.inputs_with_role("first_frame")
            if not frames:
                raise ProviderError("Image to video needs a first frame.")
            body["image"] = frames[0].data_url()
        negative = (job.negative_prompt or "").strip()
        if negative:
            if len(negative) > 1024:
                raise ProviderError(f"Sealink takes a negative prompt of 1024 characters at most (this has {len(negative)}).")
            body["negative_prompt"] = negative
        for name in ("n", "size", "duration", "fps", "seed"):
            if params.get(name) is not None:
                body[name] = params[name]
        if params.get("tags"):
            body["tags"] = list(params["tags"])
        if job.webhook_url and job.webhook_url.startswith("https://"):
            body["webhook_url"] = job.webhook_url
        return body

    # -- poll -----------------------------------------------------------------

    def poll(self, job_id: str, credentials: Credentials, *, model: ModelSpec) -> Progress:
        response = _call("GET", f"{self.base_url(credentials)}/v1/tasks/{job_id}", credentials)
        payload = http.json_of(response)
        return self.read_task(payload, model)

    def read_task(self, payload: Mapping[str, Any], model: ModelSpec) -> Progress:
        status = str(payload.get("status") or "").strip()
        upstream = payload.get("upstream_response")
        upstream = upstream if isinstance(upstream, dict) else {}
        output = upstream.get("output") if isinstance(upstream.get("output"), dict) else {}
        task_status = str(output.get("task_status") or "").strip().upper()

        if status.lower() in STATUSES:
            state = STATUSES[status.lower()]
        elif task_status:
            # Sealink's word is missing or new to us: DashScope's decides.
            state = self.normalize(task_status, DASHSCOPE_STATUSES)
        else:
            state = self.normalize(status, STATUSES)
        provider_status = status or task_status
        if state is State.FAILED and (task_status in ("CANCELED", "CANCELLED") or _error_code(payload) == "task_cancelled"):
            # Sealink's four statuses have no "cancelled": a cancelled task reads failed + CANCELED.
            state = State.CANCELLED
        if task_status and task_status != provider_status:
            provider_status = f"{provider_status} ({task_status})" if provider_status else task_status

        progress = Progress(state=state, provider_status=provider_status[:60], raw=dict(payload))
        percent = as_int(payload.get("progress"))
        if percent is not None:
            progress.percent = max(0, min(100, percent))

        if state is State.FAILED:
            progress.error = self.failure_message(payload, output, task_status)
            # DashScope's DataInspectionFailed: its moderation refused the prompt or the video.
            if moderation_in(str(output.get("code") or ""), _error_code(payload), progress.error):
                progress.error_kind = MODERATION
        elif state is State.SUCCEEDED:
            # ``data`` first, DashScope's output only without it (the seed: ``data or upstream_response``):
            # both may name the same videos at different URLs (Sealink's copy, DashScope's original).
            urls = _unique(find_video_urls(payload.get("data"))) or _unique(
                find_video_urls(output.get("video_url")) + find_video_urls(output.get("results")))
            if not urls:
                progress.state = State.FAILED
                progress.error = "Sealink reported the task as completed but sent no video URL."
                return progress
            progress.outputs = [Output(url=url, kind="video") for url in urls]
            progress.percent = 100
            usage = upstream.get("usage") if isinstance(upstream.get("usage"), dict) else {}
            if usage.get("duration") is not None:
                count = as_int(usage.get("video_count")) or len(urls)
                progress.cost = cost_credits(model.id, usage.get("size") or usage.get("resolution"),
                                             usage.get("duration"), count)
        return progress

    @staticmethod
    def failure_message(payload: Mapping[str, Any], output: Mapping[str, Any], task_status: str) -> str:
        error = payload.get("error")
        message = ""
        if isinstance(error, dict):
            message = str(error.get("message") or error.get("code") or "")
        elif isinstance(error, str):
            message = error
        upstream_message = str(output.get("message") or "").strip()
        upstream_code = str(output.get("code") or "").strip()
        if not message and upstream_message:
            message = f"{upstream_message} ({upstream_code})" if upstream_code else upstream_message
        if not message and upstream_code:
            message = upstream_code
        if task_status == "UNKNOWN":
            prefix = "DashScope no longer knows this task (UNKNOWN): it expired or never started."
            return f"{prefix} {message}".strip() if message else prefix
        return message or "Sealink reported the task as failed without giving a reason."

    # -- cancel ---------------------------------------------------------------

    def cancel(self, job_id: str, credentials: Credentials, *, model: ModelSpec) -> CancelOutcome:
        response = _call("DELETE", f"{self.base_url(credentials)}/v1/tasks/{job_id}", credentials,
                         ok=(400, 409, 501))
        status = response.status_code
        if response.is_success:
            return CancelOutcome(CancelResult.CANCELLED, "Cancelled.")
        words = http.default_error_message(response, http.parse_json(response))
        if status == 501:
            return CancelOutcome(CancelResult.NOT_SUPPORTED,
                                 f"Sealink cannot cancel tasks of this model ({words}).")
        return CancelOutcome(CancelResult.TOO_LATE,
                             f"Sealink says the task has already started ({words}); it will finish and be charged.")
