"""The adapter contract every provider module implements.

An adapter declares its models (``ModelSpec``: kind, operations, a parameter
schema, input slots, a price rule) and speaks its provider's API through
``generations.providers.http`` only:

- ``submit(job, credentials) -> Submitted``: the provider's job id, or an
  immediate result (``Submitted.result``) for synchronous APIs;
- ``poll(job_id, credentials, model=...) -> Progress``: the normalized state;
- ``cancel(job_id, credentials, model=...) -> CancelOutcome``;
- ``download_headers(url, credentials) -> dict``: headers for fetching an
  output URL (the key only for the provider's own host, never for a CDN);
- ``check_key(credentials) -> KeyCheck``: "Test key" on the keys page, a harmless
  read call where the provider has one (``generations.providers.keycheck``).

A key's base URL may be the provider's host alone: ``base_url`` adds the documented
path where the API lives below the host (ShuttleAI's ``/v1/video/generations``).

Provider failures raise ``ProviderError``: retryable ones (429, 5xx,
timeouts) are retried with backoff; the others fail the job at once with the
provider's own message. Unknown status strings map to ``State.RUNNING`` and
are logged, so the poller never crashes on them.

Whatever ``submit``, ``poll``, ``cancel`` and ``check_key`` return or raise is redacted on its way
out (``Provider.__init_subclass__``, ``providers.redaction``): the job's key and
anything shaped like a credential are cut from every provider-supplied string before
Kiln stores or shows it, for every adapter and every caller.
"""

from __future__ import annotations

import enum
import functools
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

logger = logging.getLogger(__name__)


class State(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ProviderError(Exception):
    """A provider refused or failed a request.

    ``message`` is the provider's own words where it gave any. ``retryable``
    says whether trying again later may succeed (rate limits, 5xx, timeouts);
    ``retry_after`` is the provider's ``Retry-After`` in seconds, if it sent one.
    ``kind`` is ``INPUT`` or ``MODERATION`` when the adapter knows the request itself was
    refused (see ``request_problem``).
    """

    def __init__(self, message: str, *, retryable: bool = False, retry_after: float | None = None,
                 status_code: int | None = None, code: str = "", kind: str = ""):
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        self.status_code = status_code
        self.code = code
        self.kind = kind

    def __repr__(self):
        return f"ProviderError({self.message!r}, retryable={self.retryable}, status={self.status_code})"


# ``ProviderError.code`` when the provider answered that it cannot serve the model at all
# (a gateway with no channel for it): permanent, the job ends at once and is refunded.
MODEL_UNAVAILABLE = "model_unavailable"

# ``ProviderError.code`` when the request provably never reached the provider
# (connection refused, no DNS, the address guard): only then may a submit be re-sent.
NOT_SENT = "not_sent"

# ``ProviderError.code`` when nothing answers the documented route at the key's base URL
# (HTTP 404 to a submit): the base URL is wrong, the job was not taken.
ROUTE_MISSING = "route_missing"

# What a refusal or a failure says about the request itself (``generations.models.ErrorKind``):
# the same request would fail again, so it is edited, never re-sent as it is.
INPUT = "input"                  # an unknown template, a missing variable, a parameter refused
MODERATION = "moderation"        # the prompt or the result was refused by content moderation

# Words providers use for moderation, in their codes and messages (Sealink/DashScope's
# DataInspectionFailed, ShuttleAI's input_moderation, Shark's "safety system"...).
_MODERATION_WORDS = ("moderation", "datainspectionfailed", "inappropriate content", "safety system",
                     "content policy", "content_policy", "content filter")
# A submit refused with these is about the request (a 404 is only when it is not ROUTE_MISSING).
_REQUEST_STATUSES = frozenset({400, 404, 413, 415, 422})

# A 429 that says the account's quota or balance is spent, not that it asked too fast; or a
# 400 that says so (DashScope answers an account in arrears with 400 "Arrearage"), not that
# the request is wrong.
_QUOTA_WORDS = ("quota", "insufficient", "balance", "credit", "billing", "arrearage", "overdue",
                "good standing")


def refuses_key(exc: ProviderError) -> bool:
    """The provider refused the key itself, whatever the job: 401 (not accepted), 402
    (cannot pay), 403 (not allowed), or a 400 or 429 whose code or words say the quota or
    balance is spent."""
    if exc.status_code in (401, 402, 403):
        return True
    if exc.status_code in (400, 429):
        said = f"{exc.code} {exc.message}".lower()
        return any(word in said for word in _QUOTA_WORDS)
    return False


def key_problem(exc: ProviderError) -> str:
    """What a provider error says about the key, for its row on the keys page; "" when it is
    about the job or the member's request instead (an unknown template, a bad parameter,
    moderation, an outage). Key problems: refused or out of quota, its base URL
    unreachable, or no such route at its base URL."""
    if refuses_key(exc):
        if exc.status_code in (400, 429):
            return f"Quota exhausted (HTTP {exc.status_code}): {exc.message}"
        return f"HTTP {exc.status_code}: {exc.message}"
    if exc.code in (NOT_SENT, ROUTE_MISSING):
        return exc.message
    return ""


def moderation_in(*texts: str) -> bool:
    """Whether a provider's code or words say content moderation refused it."""
    said = " ".join(str(t or "") for t in texts).lower()
    return any(word in said for word in _MODERATION_WORDS)


def request_problem(exc: ProviderError) -> str:
    """``MODERATION`` or ``INPUT`` when a provider's refusal of a submit is about what was
    asked, so sending it again unchanged would be refused again; "" when it is about the key,
    the base URL, the model's availability, or may pass by waiting."""
    if exc.kind:
        return exc.kind
    if exc.retryable or refuses_key(exc) or exc.code in (NOT_SENT, ROUTE_MISSING, MODEL_UNAVAILABLE):
        return ""
    if moderation_in(exc.code, exc.message):
        return MODERATION
    return INPUT if exc.status_code in _REQUEST_STATUSES else ""


def route_missing(exc: ProviderError, name: str, method: str, url: str, documented: str) -> ProviderError:
    """A 404 to a documented route: the key's base URL does not lead to the API."""
    return ProviderError(
        f"Nothing answers {method} {url} ({name} said HTTP 404: {exc.message.rstrip('.')}). The key's base URL does not lead "
        f"to {name}'s API ({documented}); fix it on the provider keys page.",
        status_code=404, code=ROUTE_MISSING)


# ---------------------------------------------------------------------------
# The catalog: parameter schemas


class ParamType(enum.StrEnum):
    STRING = "string"      # one line of text
    TEXT = "text"          # several lines
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    ENUM = "enum"          # one of ``choices`` (values may be str or int)
    TAGS = "tags"          # a list of short strings (comma separated in forms)


_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Param:
    name: str
    type: ParamType
    label: str = ""
    default: Any = None
    required: bool = False
    choices: tuple = ()
    min: float | None = None
    max: float | None = None
    max_length: int | None = None
    help: str = ""
    # Only shown and sent for these operations (None: all of the model's).
    operations: frozenset[str] | None = None
    # Sent to the provider under this name (default: ``name``).
    api_name: str = ""

    @property
    def display_label(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    def applies_to(self, operation: str) -> bool:
        return self.operations is None or operation in self.operations

    def clean(self, raw: Any) -> Any:
        """The value, converted and checked; raises ``ValueError`` with a message for a person."""
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            if self.required:
                raise ValueError("This field is required.")
            return None
        match self.type:
            case ParamType.STRING | ParamType.TEXT:
                value = str(raw)
                if _CONTROL_CHARS.search(value):
                    raise ValueError("Control characters are not allowed.")
                value = value.strip()
                if self.max_length is not None and len(value) > self.max_length:
                    raise ValueError(f"At most {self.max_length} characters (this has {len(value)}).")
                return value
            case ParamType.INTEGER:
                if isinstance(raw, bool):
                    raise ValueError("Enter a whole number.")
                try:
                    value = int(str(raw).strip())
                except ValueError:
                    raise ValueError("Enter a whole number.") from None
                self._check_range(value)
                return value
            case ParamType.NUMBER:
                try:
                    value = float(str(raw).strip())
                except ValueError:
                    raise ValueError("Enter a number.") from None
                if not math.isfinite(value):
                    raise ValueError("Enter a number.")
                self._check_range(value)
                return value
            case ParamType.BOOLEAN:
                if isinstance(raw, bool):
                    return raw
                text = str(raw).strip().lower()
                if text in ("1", "true", "on", "yes"):
                    return True
                if text in ("0", "false", "off", "no"):
                    return False
                raise ValueError("Choose yes or no.")
            case ParamType.ENUM:
                for choice in self.choices:
                    if str(choice) == str(raw).strip():
                        return choice
                raise ValueError(f"Choose one of: {', '.join(str(c) for c in self.choices)}.")
            case ParamType.TAGS:
                items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
                tags = [str(t).strip() for t in items if str(t).strip()]
                for tag in tags:
                    if _CONTROL_CHARS.search(tag) or len(tag) > 50:
                        raise ValueError("Tags are short words (50 characters at most).")
                if self.max is not None and len(tags) > self.max:
                    raise ValueError(f"At most {int(self.max)} tags.")
                return tags
        raise ValueError("Unsupported value.")

    def _check_range(self, value: float) -> None:
        if self.min is not None and value < self.min:
            raise ValueError(f"Must be at least {_fmt(self.min)}.")
        if self.max is not None and value > self.max:
            raise ValueError(f"Must be at most {_fmt(self.max)}.")


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


@dataclass(frozen=True)
class InputSlot:
    """A file a model takes: a first frame, a last frame, reference images, a source video."""

    role: str              # generations.models.InputRole value
    kind: str              # "image" or "video"
    label: str = ""
    required: bool = False
    max_count: int = 1
    operations: frozenset[str] | None = None

    def applies_to(self, operation: str) -> bool:
        return self.operations is None or operation in self.operations


PriceRule = Callable[[Mapping[str, Any], str], int]
"""(validated params, operation) -> estimated credits."""


@dataclass(frozen=True)
class ModelSpec:
    id: str
    provider: str
    label: str
    kind: str                                  # "image" or "video"
    operations: tuple[str, ...]
    params: tuple[Param, ...] = ()
    inputs: tuple[InputSlot, ...] = ()
    price: PriceRule = field(default=lambda params, operation: 0)
    description: str = ""
    poll_interval: float = 5.0                 # seconds between polls while running
    default_timeout: int = 600                 # seconds the provider may take
    prompt_required: bool = True
    prompt_max_length: int = 4000
    negative_prompt: bool = False
    # Operations that need no prompt although the model's others do
    # (Sealink's template-to-video builds it from a template).
    prompt_optional_operations: frozenset[str] = frozenset()
    negative_prompt_max_length: int | None = None

    def prompt_required_for(self, operation: str) -> bool:
        return self.prompt_required and operation not in self.prompt_optional_operations

    @property
    def negative_prompt_limit(self) -> int:
        """The negative prompt's own limit, else the prompt's."""
        return self.negative_prompt_max_length or self.prompt_max_length

    def params_for(self, operation: str) -> list[Param]:
        return [p for p in self.params if p.applies_to(operation)]

    def inputs_for(self, operation: str) -> list[InputSlot]:
        return [s for s in self.inputs if s.applies_to(operation)]

    def clean_params(self, operation: str, raw: Mapping[str, Any]) -> tuple[dict, dict[str, str]]:
        """Validate raw values against the schema: (cleaned params, errors by name).

        Unknown names are dropped; defaults fill what is missing."""
        cleaned, errors = {}, {}
        for param in self.params_for(operation):
            try:
                value = param.clean(raw.get(param.name))
            except ValueError as exc:
                errors[param.name] = str(exc)
                continue
            if value is None:
                value = param.default
            if value is not None:
                cleaned[param.name] = value
        return cleaned, errors

    def estimate(self, params: Mapping[str, Any], operation: str) -> int:
        return max(0, int(self.price(params, operation)))


# ---------------------------------------------------------------------------
# What the engine hands an adapter, and what it gets back


@dataclass(frozen=True)
class Credentials:
    api_key: str
    base_url: str

    def __repr__(self):  # never print the key
        return f"Credentials(base_url={self.base_url!r}, api_key='…{self.api_key[-4:]}')"


@dataclass(frozen=True)
class JobInput:
    role: str
    mime_type: str
    content: bytes
    # A short-lived signed URL under KILN_PUBLIC_URL, when Kiln has one.
    url: str | None = None

    def data_url(self) -> str:
        import base64

        return f"data:{self.mime_type};base64,{base64.b64encode(self.content).decode()}"

    def __repr__(self):
        return f"JobInput(role={self.role!r}, mime_type={self.mime_type!r}, bytes={len(self.content)})"


@dataclass(frozen=True)
class Job:
    generation_id: str
    model: ModelSpec
    operation: str
    prompt: str
    negative_prompt: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    inputs: tuple[JobInput, ...] = ()
    webhook_url: str | None = None

    def inputs_with_role(self, role: str) -> list[JobInput]:
        return [i for i in self.inputs if i.role == role]


@dataclass(frozen=True)
class Output:
    url: str
    kind: str                       # "image" or "video"
    # Where to fetch it instead when ``url`` is missing, expired or refused
    # (ShuttleAI's content endpoint, which needs the key).
    fallback_url: str | None = None


@dataclass
class Progress:
    state: State
    provider_status: str = ""
    percent: int | None = None
    outputs: list[Output] = field(default_factory=list)
    cost: int | None = None          # credits, where the provider reports its charge
    error: str = ""                  # the provider's own words
    error_kind: str = ""             # INPUT or MODERATION when the failure is about what was asked
    raw: Any = None


@dataclass
class Submitted:
    job_id: str
    # Synchronous APIs answer with the result at once.
    result: Progress | None = None


class CancelResult(enum.StrEnum):
    CANCELLED = "cancelled"
    TOO_LATE = "too_late"            # the provider has started; it will finish
    NOT_SUPPORTED = "not_supported"


@dataclass
class CancelOutcome:
    result: CancelResult
    message: str = ""


class Verdict(enum.StrEnum):
    WORKS = "works"              # a read call that needs the key answered
    REFUSED = "refused"          # 401/402/403 or the quota is spent
    UNREACHABLE = "unreachable"  # nothing was reached at the base URL
    FAILED = "failed"            # reached, but not an answer from the API (wrong path, 5xx...)
    UNKNOWN = "unknown"          # no harmless read call: the key cannot be proved


@dataclass
class KeyCheck:
    """What "Test key" found: Kiln's verdict, and the provider's answer in its own words."""

    verdict: Verdict
    summary: str                     # Kiln's sentence
    call: str = ""                   # what was asked, e.g. "GET https://gw.example/v1/models"
    status_code: int | None = None
    answer: str = ""                 # the provider's own words (or the start of its answer)
    latency_ms: int | None = None
    problem: str = ""                # for the key's error column; "" when it is not a key problem
    models: list[str] | None = None  # a gateway's video models, when it listed them

    @property
    def label(self) -> str:
        return {Verdict.WORKS: "Works", Verdict.REFUSED: "Refused", Verdict.UNREACHABLE: "Unreachable",
                Verdict.FAILED: "Failed", Verdict.UNKNOWN: "Not testable"}[self.verdict]


def _credentials_in(args: tuple, kwargs: dict) -> Credentials | None:
    return next((a for a in (*args, *kwargs.values()) if isinstance(a, Credentials)), None)


def _redacted_progress(progress: Progress, api_key: str) -> Progress:
    from generations.providers.redaction import redact, redact_value

    progress.error = redact(progress.error, api_key)
    progress.provider_status = redact(progress.provider_status, api_key)
    progress.raw = redact_value(progress.raw, api_key)
    return progress


def _redacting(method: Callable) -> Callable:
    """``method`` (an adapter's submit, poll, cancel or check_key) with its answers redacted: this is
    where provider answers enter Kiln, so nothing downstream can store or show one unredacted."""
    from generations.providers.redaction import redact

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        credentials = _credentials_in(args, kwargs)
        api_key = credentials.api_key if credentials is not None else ""
        try:
            answer = method(self, *args, **kwargs)
        except ProviderError as exc:
            exc.message = redact(exc.message, api_key)
            exc.args = (exc.message,)
            raise
        if isinstance(answer, Progress):
            return _redacted_progress(answer, api_key)
        if isinstance(answer, Submitted) and answer.result is not None:
            answer.result = _redacted_progress(answer.result, api_key)
        elif isinstance(answer, CancelOutcome):
            answer.message = redact(answer.message, api_key)
        elif isinstance(answer, KeyCheck):
            answer.summary = redact(answer.summary, api_key)
            answer.answer = redact(answer.answer, api_key)
            answer.problem = redact(answer.problem, api_key)
        return answer

    wrapper.redacts = True
    return wrapper


class Provider:
    """Base class of every adapter. Subclasses set the class attributes and
    implement ``models``, ``submit``, ``poll`` and, where the API has one, ``cancel``."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Every adapter's own submit/poll/cancel/check_key, wrapped once, whoever defines or calls them.
        for name in ("submit", "poll", "cancel", "check_key"):
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "redacts", False):
                setattr(cls, name, _redacting(method))

    id: ClassVar[str]
    name: ClassVar[str]
    default_base_url: ClassVar[str] = ""
    supports_cancel: ClassVar[bool] = False
    cancel_help: ClassVar[str] = "This provider's API cannot cancel a job once it is sent."
    supports_webhooks: ClassVar[bool] = False
    # True when the provider accepts inputs inline (base64 / data URLs); else
    # they must be reachable URLs under KILN_PUBLIC_URL.
    accepts_inline_inputs: ClassVar[bool] = True
    # How long a job may wait beyond the provider's own timeout before we call it expired.
    deadline_margin: ClassVar[int] = 120

    def models(self, model_ids: list[str] | None = None) -> list[ModelSpec]:
        """The catalog. ``model_ids`` is a key's override (gateways serve different models)."""
        raise NotImplementedError

    def get_model(self, model_id: str, model_ids: list[str] | None = None) -> ModelSpec | None:
        """A model the catalog offers (to the key with ``model_ids``): only these can be submitted."""
        return next((m for m in self.models(model_ids) if m.id == model_id), None)

    def job_model(self, model_id: str, model_ids: list[str] | None = None) -> ModelSpec | None:
        """The schema of a job already sent: an offered model, or one this adapter still
        understands although it no longer offers it (so jobs in flight can be followed)."""
        return self.get_model(model_id, model_ids)

    def submit(self, job: Job, credentials: Credentials) -> Submitted:
        raise NotImplementedError

    def poll(self, job_id: str, credentials: Credentials, *, model: ModelSpec) -> Progress:
        raise NotImplementedError

    def cancel(self, job_id: str, credentials: Credentials, *, model: ModelSpec) -> CancelOutcome:
        return CancelOutcome(CancelResult.NOT_SUPPORTED, self.cancel_help)

    def download_headers(self, url: str, credentials: Credentials) -> dict[str, str]:
        """Headers for fetching an output URL. Default: none (CDN URLs are signed)."""
        return {}

    def check_key(self, credentials: Credentials) -> KeyCheck:
        """"Test key": ask the provider something harmless with this key (its model list, its
        task list) and report its answer. A provider without such a call says so
        (``Verdict.UNKNOWN``) rather than pretending; see ``generations.providers.keycheck``."""
        return KeyCheck(Verdict.UNKNOWN, f"{self.name} has no harmless read call to test a key with: "
                                         "the key is checked by the first job sent with it.")

    def base_url(self, credentials: Credentials) -> str:
        """Where this key's requests go: its base URL (or the provider's own), without a
        trailing slash. Adapters whose API lives below the host add the documented path."""
        return (credentials.base_url or self.default_base_url).rstrip("/")

    def timeout_seconds(self, model: ModelSpec, params: Mapping[str, Any]) -> int:
        """How long the provider itself may take for this job."""
        return int(params.get("timeout") or model.default_timeout)

    @staticmethod
    def normalize(status: str, mapping: Mapping[str, State]) -> State:
        """Map a provider status string; unknown ones are logged and kept running."""
        key = (status or "").strip()
        state = mapping.get(key) or mapping.get(key.lower())
        if state is None:
            logger.warning("unknown provider status %r: treating it as running", status)
            return State.RUNNING
        return state


def usd_to_credits(usd: float) -> int:
    from accounts.credits.models import CREDITS_PER_USD

    return round(usd * CREDITS_PER_USD)


def as_int(value: Any, default: int | None = None) -> int | None:
    """Providers send numbers as strings, floats, "30%"...: read them loosely."""
    if value is None or isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    try:
        return round(float(str(value).strip().rstrip("%")))
    except (ValueError, OverflowError):  # "abc", "nan"; "Infinity", 1e400
        return default
