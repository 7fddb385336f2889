"""Small fixed-window rate limits on Django's cache.

    decision = ratelimit.hit("webhook-ip", request.META["REMOTE_ADDR"], limit=120, window=60)
    if not decision.allowed:
        return HttpResponse(status=429, headers={"Retry-After": str(decision.retry_after)})

or as a view decorator (the key function gets the request; None skips the limit):

    @rate_limit("generate-attempts", limit=lambda: settings.KILN_GENERATE_ATTEMPTS_PER_MINUTE,
                key=lambda request: str(request.user.pk))

A window is ``window`` seconds long and starts on a multiple of it; each
(scope, who, window) is one cache counter (``add`` then ``incr``, atomic on
Redis and per process on the local-memory cache). With several web processes
set ``KILN_CACHE_URL`` (or ``REDIS_URL``) so they share the counters; without
it each process counts on its own, which is still a bound. A fixed window lets
a client send up to twice the limit across a window boundary; these limits are
a brake against floods, not billing.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from project.client_ip import client_ip

# The clock windows are counted on; tests give each test a window of its own.
clock: Callable[[], float] = time.time


@dataclass(frozen=True)
class Decision:
    allowed: bool
    count: int
    limit: int
    retry_after: int  # seconds until the window resets


def _cache_key(scope: str, who: str, bucket: int) -> str:
    # Hash ``who`` so any string (an address, an e-mail) makes a short, safe cache key.
    digest = hashlib.sha256(who.encode()).hexdigest()[:32]
    return f"kiln:rl:{scope}:{digest}:{bucket}"


def hit(scope: str, who: str, *, limit: int, window: int = 60, now: float | None = None) -> Decision:
    """Count one event for ``who`` in ``scope``; allowed while the count is at most ``limit``."""
    now = clock() if now is None else now
    bucket = int(now // window)
    key = _cache_key(scope, who, bucket)
    cache.add(key, 0, timeout=window + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr: this is the first of a new window
        cache.set(key, 1, timeout=window + 1)
        count = 1
    retry_after = max(1, int((bucket + 1) * window - now))
    return Decision(allowed=count <= limit, count=count, limit=limit, retry_after=retry_after)


def reset(scope: str, who: str, *, window: int = 60, now: float | None = None) -> None:
    now = clock() if now is None else now
    cache.delete(_cache_key(scope, who, int(now // window)))


def too_many(decision: Decision, message: str) -> HttpResponse:
    response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(decision.retry_after)
    return response


def rate_limit(scope: str, *, limit: int | Callable[[], int], key: Callable[[HttpRequest], str | None],
               window: int = 60, message: str = "Too many requests; try again in a minute."):
    """Refuse a view with 429 (and Retry-After) once ``key(request)`` went over ``limit`` in the window."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs):
            who = key(request)
            if who is not None:
                decision = hit(scope, who, limit=limit() if callable(limit) else limit, window=window)
                if not decision.allowed:
                    return too_many(decision, message)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def client_address(request: HttpRequest) -> str:
    """The address the limit counts: REMOTE_ADDR, or behind trusted proxies the one they saw."""
    return client_ip(request) or "unknown"
