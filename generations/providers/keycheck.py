""""Test key": one harmless request with a key, and what it proves.

Each adapter's ``check_key`` names its call and hands it to ``ask``:

- A **read call** (the gateway's model list ``GET /v1/models``, Sealink's task list
  ``GET /v1/tasks``) needs the key and changes nothing: a 2xx proves the key and the base
  URL (``Verdict.WORKS``).
- A **probe**, for a provider that documents no such call (Shark AI, ShuttleAI): Kiln asks
  for a job that does not exist. A 401/402/403 still proves the key is refused, and a
  connection error that the base URL is unreachable; any other answer proves nothing about
  the key, and the verdict says so (``Verdict.UNKNOWN``) with the provider's answer, which
  tells a right base URL ("not found" in the provider's words) from a wrong one ("no route",
  a web page).

Every request goes through ``http.request`` (the address guard, the key never logged) with
a short deadline: a person is waiting on the page. The answer is shown in the provider's
own words (redacted by ``Provider.check_key``'s wrapper), with the time it took.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx

from generations.providers import http
from generations.providers.base import (
    NOT_SENT,
    Credentials,
    KeyCheck,
    ProviderError,
    Verdict,
    refuses_key,
)

TIMEOUT = httpx.Timeout(15.0, connect=5.0)
ANSWER_CHARS = 240
PROBE_ID = "kiln-key-test"

# (summary, models) from a read call's 2xx; raises ValueError when the body is not the API's.
Reader = Callable[[httpx.Response], tuple[str, list[str] | None]]


def answer_text(response: httpx.Response) -> str:
    """The start of a response body, as the provider wrote it (JSON on one line; a web page
    is named, not copied)."""
    content_type = response.headers.get("Content-Type", "").lower()
    text = response.text.strip() if response.content else ""
    if not text:
        return f"HTTP {response.status_code} with an empty body"
    if "html" in content_type or text.startswith("<"):
        return f"HTTP {response.status_code} with a web page ({content_type or 'no content type'}), not an API answer"
    body = http.parse_json(response)
    if body is not None:
        text = json.dumps(body, ensure_ascii=False)
    return http.short(text, ANSWER_CHARS)


def json_object(response: httpx.Response) -> dict:
    body = http.parse_json(response)
    if not isinstance(body, dict):
        raise ValueError("the answer is not a JSON object")
    return body


def ask(name: str, url: str, credentials: Credentials, *, read: Reader | None = None,
        documented: str = "") -> KeyCheck:
    """GET ``url`` with the key. ``read`` given: a read call whose 2xx proves the key (it
    parses the body). None: a probe for a job that does not exist (see the module docstring)."""
    call = f"GET {url}"
    started = time.monotonic()
    try:
        response = http.request("GET", url, credentials=credentials, timeout=TIMEOUT)
    except ProviderError as exc:
        return _refusal(name, exc, call, _ms(started), probe=read is None, documented=documented)
    ms = _ms(started)
    words = answer_text(response)
    if read is None:
        return KeyCheck(Verdict.UNKNOWN, _probe_summary(name), call=call, status_code=response.status_code,
                        answer=words, latency_ms=ms)
    try:
        summary, models = read(response)
    except ValueError as exc:
        problem = (f"{call} answered HTTP {response.status_code} but not as {name}'s API does ({exc}): "
                   "check the base URL.")
        return KeyCheck(Verdict.FAILED, f"Something answered at this base URL, but not {name}'s API ({exc}). "
                                        f"Check the base URL{_documented(documented)}.",
                        call=call, status_code=response.status_code, answer=words, latency_ms=ms, problem=problem)
    return KeyCheck(Verdict.WORKS, f"{name} accepted the key. {summary}".strip(), call=call,
                    status_code=response.status_code, answer=words, latency_ms=ms, models=models)


def _refusal(name: str, exc: ProviderError, call: str, ms: int, *, probe: bool, documented: str) -> KeyCheck:
    status = exc.status_code
    if refuses_key(exc):
        quota = status == 429
        summary = (f"{name} says this key's quota is used up (HTTP 429)." if quota
                   else f"{name} refused this key (HTTP {status}).")
        problem = f"Quota exhausted (HTTP 429): {exc.message}" if quota else f"HTTP {status}: {exc.message}"
        return KeyCheck(Verdict.REFUSED, summary, call=call, status_code=status, answer=exc.message,
                        latency_ms=ms, problem=problem)
    if exc.code == NOT_SENT:
        return KeyCheck(Verdict.UNREACHABLE, f"Kiln could not reach this base URL: nothing was sent to {name}.",
                        call=call, answer=exc.message, latency_ms=ms, problem=exc.message)
    if status is None:
        return KeyCheck(Verdict.FAILED, f"The request went out but no answer came back in time from {name}.",
                        call=call, answer=exc.message, latency_ms=ms)
    if probe:
        return KeyCheck(Verdict.UNKNOWN, _probe_summary(name), call=call, status_code=status, answer=exc.message,
                        latency_ms=ms)
    if status == 404:
        return KeyCheck(Verdict.FAILED, f"Nothing answers this call at this base URL (HTTP 404): it does not lead to "
                                        f"{name}'s API{_documented(documented)}.",
                        call=call, status_code=status, answer=exc.message, latency_ms=ms,
                        problem=f"No route: {call} answered HTTP 404 ({exc.message}). Check the base URL.")
    if status >= 500:
        return KeyCheck(Verdict.FAILED, f"{name} had a problem of its own (HTTP {status}); the key may be fine: "
                                        "try again later.", call=call, status_code=status, answer=exc.message,
                        latency_ms=ms)
    return KeyCheck(Verdict.FAILED, f"{name} answered HTTP {status}.", call=call, status_code=status,
                    answer=exc.message, latency_ms=ms)


def _probe_summary(name: str) -> str:
    return (f"{name} has no harmless read call to test a key with, so whether this key works shows only when a "
            f"job is sent with it. Kiln asked for a job that does not exist: an answer in {name}'s words (“not "
            "found”) means the base URL reaches it; “no route” or a web page means it does not. A refused key "
            "(HTTP 401, 402 or 403) would show as Refused.")


def _documented(documented: str) -> str:
    return f" ({documented})" if documented else ""


def _ms(started: float) -> int:
    return max(0, round((time.monotonic() - started) * 1000))
