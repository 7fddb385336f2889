"""The job engine: submit, poll, download — a state machine over ``Generation.status``.

Every transition is a compare-and-swap, ``Generation.objects.filter(pk=…,
status=expected).update(...)``: of two workers racing, exactly one moves the
row and the other sees 0 rows and stops. The database is the source of truth;
Celery messages are only wake-ups, and ``requeue_stuck`` finds any row whose
wake-up was lost.

    queued ──submit──▶ submitted ──poll──▶ running ──poll──▶ downloading ──▶ succeeded
       │                   │                  │                  │
       └── failed / cancelled / expired ◀─────┴──────────────────┘

Money (accounts.credits): a provider's "failed" or "cancelled", and a request
the provider refused, release the reservation; success captures the actual
cost (the provider's figure, else the price rule). Whenever the provider may
have billed without telling us (a lost submit, our deadline passing, a
status we cannot read) the row gets ``needs_review`` and the reservation is
kept for an admin to settle.

The submit rule (never send a job twice)
----------------------------------------
``submit`` claims a queued row by setting ``claimed_at`` (CAS on ``status =
queued AND claimed_at IS NULL``), sends it OUTSIDE any transaction, then saves
the provider's job id with ``status = submitted`` in one UPDATE. From the
claim on, the request may have reached the provider, so the row is never
claimed again, with one exception: when we *know* the provider did not take
the request (the connection was refused or never opened — ``ProviderError.code
== http.NOT_SENT`` — or the provider answered with an HTTP error status), the
claim is cleared and the submit retried with backoff, up to
``MAX_SUBMIT_ATTEMPTS``. An ambiguous failure (a timeout after the request
went out, a 2xx we could not read, an adapter crash) and a worker that dies
between claim and save (found by ``requeue_stuck`` once ``claimed_at`` is
older than ``KILN_SUBMIT_LEASE_SECONDS``) end the row ``expired`` with
``needs_review`` and the reservation held: "Kiln lost track of this job while
sending it; it was not re-sent so you are not charged twice". If the slow
worker does come back with a job id after that, the row is resumed.

Polling many jobs cheaply
-------------------------
One beat tick (``poll_due``) claims up to ``KILN_POLL_BATCH`` due rows with
``SELECT … FOR UPDATE SKIP LOCKED`` (PostgreSQL), pushes their
``next_poll_at`` forward by ``POLL_LEASE`` in the same transaction (so a
concurrent tick skips them, and a crash mid-poll only delays them), then
polls them over HTTP in a pool of ``KILN_POLL_CONCURRENCY`` threads. The
threads do HTTP only; the calling thread writes the results, one UPDATE per
job, as they come back.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile, File
from django.db import (
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.db.models import F, Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from accounts import credits
from generations import mediafiles
from generations.crypto import DecryptionError
from generations.mediafiles import MediaRejected
from generations.models import IN_FLIGHT, Generation, InputMedia, Media, ProviderKey, Status
from generations.providers import http
from generations.providers.base import (
    MODEL_UNAVAILABLE,
    Credentials,
    Job,
    JobInput,
    ModelSpec,
    Progress,
    Provider,
    ProviderError,
    State,
)
from generations.providers.registry import PROVIDER_NAMES, get_provider

logger = logging.getLogger(__name__)

MAX_SUBMIT_ATTEMPTS = 5          # sends that provably did not reach the provider
MAX_POLL_CRASHES = 8             # unexpected adapter errors before a job is given up
MAX_DOWNLOAD_ATTEMPTS = 5        # retryable download failures (resets, deadlines, 5xx)
BACKOFF_CAP = 120.0              # seconds
RETRY_AFTER_CAP = 900.0          # we honour Retry-After, up to this
POLL_LEASE = timedelta(seconds=45)
RECORD_GROUP_SECONDS = 0.25      # polls answered within this are written in one transaction
DOWNLOAD_LEASE = timedelta(seconds=90)
DOWNLOAD_LEASE_RENEW = 30.0      # seconds between lease renewals while bytes flow
STUCK_QUEUED = timedelta(seconds=60)
INPUT_URL_MAX_AGE = 6 * 3600     # signed input URLs, for providers that fetch inputs
EXPIRED_URL_STATUSES = (401, 403, 404, 410)


class EngineError(Exception):
    """Kiln cannot run this job (its key is gone or unreadable, its model left the catalog)."""


# ---------------------------------------------------------------------------
# Helpers


def provider_name(provider_id: str) -> str:
    return PROVIDER_NAMES.get(provider_id, provider_id)


def submit_lease() -> timedelta:
    return timedelta(seconds=settings.KILN_SUBMIT_LEASE_SECONDS)


def credentials_for(generation: Generation) -> Credentials:
    key: ProviderKey | None = generation.provider_key
    if key is None:
        raise EngineError(f"The {provider_name(generation.provider)} key this job used has been deleted.")
    try:
        return Credentials(api_key=key.get_api_key(), base_url=key.base_url)
    except DecryptionError as exc:
        raise EngineError(str(exc)) from None


def model_for(generation: Generation) -> ModelSpec:
    provider = get_provider(generation.provider)
    key = generation.provider_key
    model = provider.job_model(generation.model, (key.model_ids or None) if key else None)
    if model is None:
        model = provider.job_model(generation.model)
    if model is None:
        raise EngineError(f"{provider_name(generation.provider)} no longer lists the model “{generation.model}”.")
    return model


def _jitter(seconds: float, spread: float = 0.1) -> float:
    return seconds * random.uniform(1 - spread, 1 + spread)


def backoff_seconds(interval: float, attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter (interval x 2^attempt, capped), never sooner than Retry-After."""
    delay = _jitter(min(BACKOFF_CAP, interval * (2 ** max(0, attempt))), 0.2)
    if retry_after is not None:
        delay = max(delay, min(float(retry_after), RETRY_AFTER_CAP))
    return delay


def _json_safe(raw: Any) -> Any:
    if raw is None:
        return None
    try:
        text = json.dumps(raw)
    except (TypeError, ValueError):
        return {"unserializable": str(raw)[:2000]}
    if len(text) > 100_000:
        return {"truncated": text[:2000]}
    return raw


def _db_retry[T](fn: Callable[[], T], attempts: int = 4) -> T:
    """Run a short write, retrying if the database connection dropped (it is reopened)."""
    for attempt in range(attempts):
        try:
            return fn()
        except (OperationalError, InterfaceError):
            if attempt == attempts - 1 or connection.in_atomic_block:
                raise
            logger.warning("database connection lost; retrying a write", exc_info=True)
            connection.close()
            time.sleep(0.2 * (2 ** attempt))
    raise AssertionError("unreachable")


def _on_commit(fn: Callable[[], Any]) -> None:
    # A wake-up the broker refuses is logged, not raised: the row's state is committed
    # and requeue_stuck finds it.
    transaction.on_commit(fn, robust=True)


def _enqueue_download(pk: int, countdown: float | None = None) -> None:
    from generations.tasks import download_generation

    if countdown:
        _on_commit(lambda: download_generation.apply_async((pk,), countdown=countdown))
    else:
        _on_commit(lambda: download_generation.delay(pk))


def _touch_key(key_id: int | None, error: str = "") -> None:
    if key_id is None:
        return
    changes: dict[str, Any] = {"last_used": timezone.now()}
    changes["last_error"] = error[:1000]
    try:
        # Bookkeeping only: a dropped connection here must not lose a job id we hold.
        _db_retry(lambda: ProviderKey.objects.filter(pk=key_id).update(**changes))
    except (OperationalError, InterfaceError):
        logger.warning("could not record the use of provider key %s", key_id, exc_info=True)


def _settle_release(generation: Generation, reason: str) -> None:
    credits.release(generation, reason=reason[:300])


# ---------------------------------------------------------------------------
# Inputs and webhooks for the Job


def input_token(item: InputMedia) -> str:
    return signing.dumps({"i": item.pk, "g": str(item.generation.public_id)}, salt="kiln.input", compress=True)


def input_from_token(token: str) -> InputMedia | None:
    """The InputMedia a signed input URL names, or None if the token is bad or older than INPUT_URL_MAX_AGE.
    (For a view serving inputs to providers that fetch them by URL.)"""
    try:
        data = signing.loads(token, salt="kiln.input", max_age=INPUT_URL_MAX_AGE)
    except signing.BadSignature:
        return None
    return InputMedia.objects.filter(pk=data.get("i"), generation__public_id=data.get("g")).first()


def _input_url(item: InputMedia) -> str | None:
    base = settings.KILN_PUBLIC_URL
    if not base.startswith("https://"):
        return None
    try:
        return base + reverse("generations:input_file", args=[input_token(item)])
    except NoReverseMatch:
        return None


def _webhook_url(generation: Generation) -> str | None:
    if not generation.webhook_token or not settings.KILN_PUBLIC_URL.startswith("https://"):
        return None
    for args in ((generation.provider, generation.webhook_token),):
        try:
            return settings.KILN_PUBLIC_URL + reverse("generations:webhook", args=args)
        except NoReverseMatch:
            continue
    return None


def build_job(generation: Generation, provider: Provider, model: ModelSpec) -> Job:
    inputs = []
    for item in generation.inputs.all():
        with item.file.open("rb") as fh:
            content = fh.read()
        url = None if provider.accepts_inline_inputs else _input_url(item)
        if not provider.accepts_inline_inputs and url is None:
            raise EngineError(f"{provider_name(provider.id)} fetches input files from a public URL and this Kiln has "
                              "none (KILN_PUBLIC_URL).")
        inputs.append(JobInput(role=item.role, mime_type=item.mime_type, content=content, url=url))
    return Job(generation_id=str(generation.public_id), model=model, operation=generation.operation,
               prompt=generation.prompt.text, negative_prompt=generation.prompt.negative_prompt,
               params=dict(generation.params), inputs=tuple(inputs), webhook_url=_webhook_url(generation))


# ---------------------------------------------------------------------------
# Submit


def lost_message(provider_id: str) -> str:
    return (f"Kiln lost track of this job while sending it to {provider_name(provider_id)}; it was not re-sent so "
            "you are not charged twice. The reserved credits are held until an admin reviews it.")


def _known_not_sent(exc: ProviderError) -> bool:
    """True only when the provider certainly did not accept the request."""
    if exc.code == http.NOT_SENT:
        return True
    return exc.status_code is not None and not (200 <= exc.status_code < 300)


def mark_lost(pk: int, claimed_at: datetime, why: str = "") -> bool:
    """A claimed submit whose outcome is unknown: expired, held for review, never re-sent."""
    generation = Generation.objects.filter(pk=pk).only("provider").first()
    if generation is None:
        return False
    message = lost_message(generation.provider)
    moved = _db_retry(lambda: Generation.objects.filter(
        pk=pk, status=Status.QUEUED, claimed_at=claimed_at, provider_job_id="").update(
        status=Status.EXPIRED, needs_review=True, finished_at=timezone.now(), next_poll_at=None, error=message,
        progress=None))
    if moved:
        logger.warning("generation %s: submit outcome unknown (%s); expired for review", pk, why or "worker lost")
    return bool(moved)


def _fail(pk: int, expected: Status | frozenset | list, message: str, *, release: bool = True,
          needs_review: bool = False, **extra: Any) -> bool:
    statuses = [expected] if isinstance(expected, str) else list(expected)

    def write() -> bool:
        with transaction.atomic():
            moved = Generation.objects.filter(pk=pk, status__in=statuses).update(
                status=Status.FAILED, error=message[:5000], finished_at=timezone.now(), next_poll_at=None,
                progress=None, needs_review=needs_review, **extra)
            if moved and release:
                _settle_release(Generation.objects.get(pk=pk), f"Failed: {message}")
            return bool(moved)

    return _db_retry(write)


def claim_for_submit(pk: int, now: datetime | None = None) -> datetime | None:
    """Claim a queued row for sending; returns the claim time, or None if another worker has it
    (or it is not queued, or its retry is not due yet)."""
    now = now or timezone.now()
    moved = Generation.objects.filter(pk=pk, status=Status.QUEUED, claimed_at__isnull=True).filter(
        Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now)).update(claimed_at=now)
    return now if moved else None


def submit(pk: int) -> str:
    """Send a queued generation to its provider (see the module docstring for the rule). Returns what happened."""
    claimed_at = claim_for_submit(pk)
    if claimed_at is None:
        return "not claimed"
    try:
        generation = Generation.objects.select_related("provider_key", "prompt", "team").get(pk=pk)
        provider = get_provider(generation.provider)
        model = model_for(generation)
        creds = credentials_for(generation)
        job = build_job(generation, provider, model)
    except (OperationalError, InterfaceError):
        # The database went away before anything was sent: give the claim back so
        # the retried task can take it (else the row would wait out the submit lease).
        _db_retry(lambda: Generation.objects.filter(pk=pk, status=Status.QUEUED, claimed_at=claimed_at).update(
            claimed_at=None))
        raise
    except (EngineError, OSError) as exc:
        # Nothing was sent: an honest failure, credits back.
        _fail(pk, Status.QUEUED, f"Kiln could not send this job: {exc}")
        return "failed before sending"

    try:
        submitted = provider.submit(job, creds)
    except ProviderError as exc:
        return _submit_error(generation, exc, claimed_at, model)
    except Exception:
        logger.exception("generation %s: the %s adapter crashed while submitting", pk, generation.provider)
        mark_lost(pk, claimed_at, "adapter crashed during submit")
        return "lost"
    _touch_key(generation.provider_key_id)

    now = timezone.now()
    deadline = now + timedelta(seconds=provider.timeout_seconds(model, generation.params) + provider.deadline_margin)
    fields = {"status": Status.SUBMITTED, "provider_job_id": str(submitted.job_id or "")[:200], "submitted_at": now,
                  "next_poll_at": now + timedelta(seconds=_jitter(model.poll_interval)), "deadline": deadline,
                  "error_count": 0, "error": ""}

    def save() -> int:
        moved = Generation.objects.filter(pk=pk, status=Status.QUEUED, claimed_at=claimed_at).update(**fields)
        if not moved:
            # requeue_stuck gave up on us while the provider was slow: we do know the job now.
            moved = Generation.objects.filter(pk=pk, status=Status.EXPIRED, provider_job_id="",
                                              claimed_at=claimed_at).update(needs_review=False, finished_at=None,
                                                                            **fields)
        return moved

    if not _db_retry(save):
        logger.error("generation %s: submitted as %s but the row had moved on", pk, submitted.job_id)
        return "row moved"
    if submitted.result is not None:
        generation.refresh_from_db()
        _apply_progress(generation, submitted.result, model)
    return "submitted"


def refusal_message(name: str, exc: ProviderError) -> str:
    """The provider's own words, and when it refused the team's key, what a person can do."""
    words = exc.message or f"{name} refused the job."
    if exc.status_code == 401:
        return (f"{name} did not accept this team's API key: {words} "
                "A team admin can replace the key under Team → Provider keys.")
    if exc.status_code == 402:
        return f"{name} says the account behind this team's API key cannot pay for this: {words}"
    if exc.status_code == 403:
        return f"{name} does not allow this team's API key to do this: {words}"
    if exc.code == MODEL_UNAVAILABLE:
        return (f"{words} ({name} cannot serve this model now: nothing was charged. Choose another model, or ask "
                "the gateway's operator to enable this one.)")
    return words


def _submit_error(generation: Generation, exc: ProviderError, claimed_at: datetime, model: ModelSpec) -> str:
    pk = generation.pk
    name = provider_name(generation.provider)
    _touch_key(generation.provider_key_id, exc.message)
    if not exc.retryable:
        if exc.code == MODEL_UNAVAILABLE:
            logger.warning("generation %s: %s refused the model %s (HTTP %s): %s; failed and refunded",
                           pk, name, generation.model, exc.status_code, exc.message)
        else:
            logger.info("generation %s: %s refused the job (HTTP %s): %s; failed and refunded",
                        pk, name, exc.status_code, exc.message)
        _fail(pk, Status.QUEUED, refusal_message(name, exc))
        return "refused"
    if not _known_not_sent(exc):
        mark_lost(pk, claimed_at, f"ambiguous submit error: {exc.message}")
        return "lost"
    attempts = generation.error_count + 1
    if attempts >= MAX_SUBMIT_ATTEMPTS:
        _fail(pk, Status.QUEUED, f"{name} did not accept the job after {attempts} attempts: {exc.message}")
        return "gave up"
    delay = backoff_seconds(max(2.0, model.poll_interval), attempts - 1, exc.retry_after)

    def reschedule() -> int:
        with transaction.atomic():
            moved = Generation.objects.filter(pk=pk, status=Status.QUEUED, claimed_at=claimed_at).update(
                claimed_at=None, error_count=F("error_count") + 1,
                next_poll_at=timezone.now() + timedelta(seconds=delay))
            if moved:
                from generations.tasks import submit_generation

                _on_commit(lambda: submit_generation.apply_async((pk,), countdown=delay))
            return moved

    _db_retry(reschedule)
    logger.info("generation %s: %s not reached (%s); retrying in %.1fs", pk, name, exc.message, delay)
    return "retrying"


# ---------------------------------------------------------------------------
# Poll

_executor: ThreadPoolExecutor | None = None
_executor_pid: int | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """One thread pool per process (created lazily: Celery's prefork children must not share the parent's)."""
    global _executor, _executor_pid
    with _executor_lock:
        if _executor is None or _executor_pid != os.getpid():
            _executor = ThreadPoolExecutor(max_workers=settings.KILN_POLL_CONCURRENCY, thread_name_prefix="kiln-poll")
            _executor_pid = os.getpid()
        return _executor


def _claim_due(now: datetime, limit: int) -> list[Generation]:
    with transaction.atomic():
        qs = Generation.objects.filter(status__in=IN_FLIGHT, next_poll_at__lte=now).order_by("next_poll_at")
        if connection.vendor == "postgresql":
            qs = qs.select_for_update(skip_locked=True, of=("self",))
        rows = list(qs.select_related("provider_key")[:limit])
        if rows:
            Generation.objects.filter(pk__in=[r.pk for r in rows]).update(next_poll_at=now + POLL_LEASE)
    return rows


def _fetch(provider: Provider, job_id: str, creds: Credentials, model: ModelSpec) -> Progress:
    """The HTTP part of a poll (runs in a pool thread; touches no database)."""
    return provider.poll(job_id, creds, model=model)


def poll_due(limit: int | None = None, budget_seconds: float | None = None, linger_seconds: float = 0.0) -> int:
    """Claim due in-flight rows a batch at a time and poll each batch concurrently, until
    none are due or ``budget_seconds`` (default: 5 ticks) are spent; returns how many were polled.

    Looping keeps the throughput independent of the beat's tick: a backlog is
    worked off by the tick that finds it, and concurrent ticks (other worker
    processes) take other rows (SKIP LOCKED + the lease).

    ``linger_seconds`` (the beat's task passes most of a tick): once nothing is due,
    wait for the rows that fall due before then and poll them on time, instead of
    leaving them to the next tick. A job is then polled within ``LINGER_STEP`` of
    its interval rather than up to a whole tick late; the number of polls is the same."""
    limit = limit or settings.KILN_POLL_BATCH
    budget = budget_seconds if budget_seconds is not None else 5 * settings.KILN_POLL_TICK_SECONDS
    started = time.monotonic()
    stop, linger_until = started + budget, started + linger_seconds
    total = 0
    while True:
        polled = _poll_batch(limit)
        total += polled
        now = time.monotonic()
        if now >= stop:
            return total
        if polled == limit:
            continue  # a backlog: keep working it off
        wait_for = _seconds_until_due(linger_until - now)
        if wait_for is None:
            return total
        time.sleep(max(wait_for, LINGER_STEP))


LINGER_STEP = 0.1  # while lingering, rows due within this long are polled together


def _seconds_until_due(within: float) -> float | None:
    """Seconds until the next in-flight row falls due, if that is within ``within`` seconds."""
    if within <= 0:
        return None
    now = timezone.now()
    first = (Generation.objects.filter(status__in=IN_FLIGHT, next_poll_at__lte=now + timedelta(seconds=within))
             .order_by("next_poll_at").values_list("next_poll_at", flat=True).first())
    if first is None:
        return None
    return max((first - now).total_seconds(), 0.0)


def _poll_batch(limit: int) -> int:
    now = timezone.now()
    rows = _claim_due(now, limit)
    if not rows:
        return 0
    futures: dict[Future, tuple[Generation, ModelSpec | None]] = {}
    creds_cache: dict[int, Credentials] = {}
    pool = _pool()
    http.client()  # create the shared client before the threads race to
    for generation in rows:
        try:
            provider = get_provider(generation.provider)
            model = model_for(generation)
            key_id = generation.provider_key_id
            if key_id not in creds_cache:
                creds_cache[key_id] = credentials_for(generation)
            future = pool.submit(_fetch, provider, generation.provider_job_id, creds_cache[key_id], model)
        except EngineError as exc:
            _poll_broken(generation, str(exc))
            continue
        futures[future] = (generation, model)
    remaining = set(futures)
    while remaining:
        done, remaining = wait(remaining, timeout=RECORD_GROUP_SECONDS)
        if done:
            _record_group([(future, *futures[future]) for future in done])
    return len(rows)


def _record_group(items: list[tuple[Future, Generation, ModelSpec]]) -> None:
    """Write the polls that came back together in ONE transaction: one commit (one WAL flush)
    for the group instead of one per job, which was the cap on polls per second per process
    (docs/performance.md). If anything in the group fails, the group is rolled back and its
    polls are written one by one as before, each on its own."""
    try:
        with transaction.atomic():
            for future, generation, model in items:
                _record_poll(generation, model, future, touch_key=False)
    except Exception:
        logger.warning("recording %d polls together failed; recording them one by one", len(items), exc_info=True)
        for future, generation, model in items:
            try:
                _record_poll(generation, model, future)
            except Exception:
                # One bad row never stops the others; its lease brings it back later.
                logger.exception("generation %s: recording its poll failed", generation.pk)
        return
    # Key bookkeeping after the commit, once per key: a key row locked inside the group's
    # transaction would make the worker processes wait on each other.
    for key_id in {g.provider_key_id for f, g, _ in items if f.exception() is None and g.poll_count % 20 == 0}:
        _touch_key(key_id)


def poll_one(pk: int) -> str:
    """Poll one in-flight generation now (a webhook's nudge, or a test). Returns its status after."""
    now = timezone.now()
    moved = Generation.objects.filter(pk=pk, status__in=IN_FLIGHT).update(next_poll_at=now + POLL_LEASE)
    generation = Generation.objects.select_related("provider_key").get(pk=pk)
    if not moved:
        return generation.status
    try:
        model = model_for(generation)
        creds = credentials_for(generation)
    except EngineError as exc:
        _poll_broken(generation, str(exc))
        return Generation.objects.values_list("status", flat=True).get(pk=pk)
    future: Future = Future()
    try:
        future.set_result(_fetch(get_provider(generation.provider), generation.provider_job_id, creds, model))
    except Exception as exc:
        future.set_exception(exc)
    _record_poll(generation, model, future)
    return Generation.objects.values_list("status", flat=True).get(pk=pk)


def _record_poll(generation: Generation, model: ModelSpec, future: Future, *, touch_key: bool = True) -> None:
    exc = future.exception()
    if exc is None:
        if touch_key and generation.poll_count % 20 == 0:
            _touch_key(generation.provider_key_id)
        _apply_progress(generation, future.result(), model)
    elif isinstance(exc, ProviderError):
        _poll_provider_error(generation, model, exc)
    else:
        logger.error("generation %s: the %s adapter crashed while polling", generation.pk, generation.provider,
                     exc_info=exc)
        _poll_crash(generation, model, exc)


def expired_message(generation: Generation, now: datetime, last_error: str = "") -> str:
    since = generation.submitted_at or generation.created
    minutes = max(1, round((now - since).total_seconds() / 60))
    message = (f"No result from {provider_name(generation.provider)} after {minutes} minute{'s' if minutes != 1 else ''}; "
               "the provider may still finish and bill, so the reserved credits are held for review.")
    if last_error:
        message += f" Last error: {last_error}"
    return message


def _expire(generation: Generation, now: datetime, last_error: str = "") -> bool:
    moved = Generation.objects.filter(pk=generation.pk, status__in=IN_FLIGHT).update(
        status=Status.EXPIRED, needs_review=True, finished_at=now, next_poll_at=None, progress=None,
        error=expired_message(generation, now, last_error))
    return bool(moved)


def _past_deadline(generation: Generation, now: datetime) -> bool:
    return generation.deadline is not None and now >= generation.deadline


def _apply_progress(generation: Generation, progress: Progress, model: ModelSpec) -> None:
    """Record what the provider said about a job (a poll, a synchronous submit)."""
    now = timezone.now()
    pk = generation.pk
    name = provider_name(generation.provider)
    common = {"provider_status": str(progress.provider_status or "")[:60], "raw_payload": _json_safe(progress.raw),
                  "poll_count": F("poll_count") + 1, "error_count": 0}
    in_flight = Generation.objects.filter(pk=pk, status__in=IN_FLIGHT)
    match progress.state:
        case State.SUCCEEDED:
            outputs = [dataclasses.asdict(o) for o in progress.outputs if o.url or o.fallback_url]
            if not outputs:
                _db_retry(lambda: in_flight.update(
                    **common, status=Status.FAILED, needs_review=True, finished_at=now, next_poll_at=None,
                    progress=None, actual_cost=progress.cost,
                    error=f"{name} reported success but sent no results. The reserved credits are held for review."))
                return

            def to_download() -> None:
                with transaction.atomic():
                    moved = in_flight.update(**common, status=Status.DOWNLOADING, output_urls=outputs,
                                             actual_cost=progress.cost, progress=100, next_poll_at=now,
                                             started_at=generation.started_at or now)
                    if moved:
                        _enqueue_download(pk)

            _db_retry(to_download)
        case State.FAILED | State.CANCELLED:
            cancelled = progress.state == State.CANCELLED
            message = progress.error or (f"{name} cancelled the job." if cancelled else f"{name} reported that the job failed.")

            def finish() -> None:
                with transaction.atomic():
                    # A job that ended without a result has no progress (the provider may say
                    # "100%" with its failure, or nothing): no bar, no stale 30 %.
                    moved = in_flight.update(**common, status=Status.CANCELLED if cancelled else Status.FAILED,
                                             error=message[:5000], finished_at=now, next_poll_at=None,
                                             progress=None)
                    if moved:
                        _settle_release(generation, f"{'Cancelled' if cancelled else 'Failed'}: {message}")

            _db_retry(finish)
        case _:
            if _past_deadline(generation, now):
                _expire(generation, now)
                return
            running = progress.state == State.RUNNING or generation.status == Status.RUNNING
            percent = progress.percent
            if percent is not None:
                percent = max(0, min(100, int(percent)))
            changes = dict(**common, status=Status.RUNNING if running else Status.SUBMITTED,
                           next_poll_at=now + timedelta(seconds=_jitter(model.poll_interval)))
            if percent is not None:
                changes["progress"] = percent
            if running and generation.started_at is None:
                changes["started_at"] = now
            _db_retry(lambda: in_flight.update(**changes))


def _poll_provider_error(generation: Generation, model: ModelSpec, exc: ProviderError) -> None:
    now = timezone.now()
    status = exc.status_code
    # A key refused (401/402/403) says nothing about the job: keep trying until the deadline.
    keep_trying = exc.retryable or status in (401, 402, 403)
    if not keep_trying:
        _touch_key(generation.provider_key_id, exc.message)
        _fail(generation.pk, IN_FLIGHT, exc.message or f"{provider_name(generation.provider)} reported an error.")
        return
    if status in (401, 402, 403):
        _touch_key(generation.provider_key_id, exc.message)
    if _past_deadline(generation, now):
        _expire(generation, now, exc.message)
        return
    delay = backoff_seconds(model.poll_interval, generation.error_count, exc.retry_after)
    logger.info("generation %s: poll error (%s); next poll in %.1fs", generation.pk, exc.message, delay)
    Generation.objects.filter(pk=generation.pk, status__in=IN_FLIGHT).update(
        error_count=F("error_count") + 1, poll_count=F("poll_count") + 1,
        next_poll_at=now + timedelta(seconds=delay))


def _poll_crash(generation: Generation, model: ModelSpec, exc: BaseException) -> None:
    now = timezone.now()
    attempts = generation.error_count + 1
    name = provider_name(generation.provider)
    if attempts >= MAX_POLL_CRASHES:
        _fail(generation.pk, IN_FLIGHT,
              f"Kiln could not read this job's status from {name} after {attempts} attempts "
              f"({type(exc).__name__}). The provider may still finish and bill, so the reserved credits are held "
              "for review.", release=False, needs_review=True)
        return
    if _past_deadline(generation, now):
        _expire(generation, now, f"Kiln could not read the status ({type(exc).__name__}).")
        return
    Generation.objects.filter(pk=generation.pk, status__in=IN_FLIGHT).update(
        error_count=F("error_count") + 1, poll_count=F("poll_count") + 1,
        next_poll_at=now + timedelta(seconds=backoff_seconds(model.poll_interval, attempts - 1)))


def _poll_broken(generation: Generation, why: str) -> None:
    """The job cannot be polled at all (key deleted or unreadable, model gone): held for review."""
    _fail(generation.pk, IN_FLIGHT,
          f"Kiln can no longer follow this job: {why} The provider may still finish and bill, so the reserved "
          "credits are held for review.", release=False, needs_review=True)


# ---------------------------------------------------------------------------
# Download


class _LeaseWriter:
    """A file wrapper that renews the download lease while bytes keep arriving."""

    def __init__(self, fh, pk: int):
        self.fh, self.pk = fh, pk
        self.renewed = time.monotonic()

    def write(self, data: bytes) -> int:
        now = time.monotonic()
        if now - self.renewed > DOWNLOAD_LEASE_RENEW:
            self.renewed = now
            Generation.objects.filter(pk=self.pk, status=Status.DOWNLOADING).update(
                next_poll_at=timezone.now() + DOWNLOAD_LEASE)
        return self.fh.write(data)


class _SaveFailed(Exception):
    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.message, self.retryable = message, retryable


def _max_bytes(kind: str) -> int:
    return settings.KILN_MAX_VIDEO_BYTES if kind == "video" else settings.KILN_MAX_IMAGE_BYTES


def _media_dir(generation: Generation) -> str:
    return f"media/{generation.team.public_id}/{generation.public_id}"


def _media_complete(generation: Generation, position: int) -> bool:
    media = Media.objects.filter(generation=generation, position=position).first()
    if media is None or not media.file:
        return False
    try:
        return media.file.storage.size(media.file.name) == media.bytes
    except OSError:
        return False


def _store(generation: Generation, position: int, path: Path, got: http.Downloaded,
           sniffed: mediafiles.Sniffed, processed: mediafiles.Processed) -> Media:
    """Save a checked download under a server-chosen name; a re-run replaces, never duplicates."""
    storage = Media._meta.get_field("file").storage
    name = f"{_media_dir(generation)}/{position}.{sniffed.ext}"
    thumb_name = f"{_media_dir(generation)}/{position}.thumb.webp"
    for stale in (name, thumb_name):
        if storage.exists(stale):
            storage.delete(stale)
    with open(path, "rb") as fh:
        saved = storage.save(name, File(fh, name=name))
    saved_thumb = storage.save(thumb_name, ContentFile(processed.thumbnail)) if processed.thumbnail else ""
    media, _ = Media.objects.update_or_create(
        generation=generation, position=position,
        defaults={"file": saved, "thumbnail": saved_thumb, "kind": sniffed.kind, "mime_type": sniffed.mime_type,
                      "bytes": got.bytes, "sha256": got.sha256, "width": processed.width, "height": processed.height,
                      "duration": processed.duration})
    return media


def _download_to(url: str, path: Path, generation: Generation, provider: Provider, creds: Credentials,
                 kind: str) -> http.Downloaded:
    headers = {}
    if http.same_host(url, provider.base_url(creds)):
        headers = provider.download_headers(url, creds)
    with open(path, "wb") as fh:
        return http.download(url, _LeaseWriter(fh, generation.pk), max_bytes=_max_bytes(kind), headers=headers)


def _fresh_urls(generation: Generation, provider: Provider, creds: Credentials, model: ModelSpec) -> list[dict] | None:
    """Re-poll a finished job for new signed URLs (the old ones expired)."""
    try:
        progress = provider.poll(generation.provider_job_id, creds, model=model)
    except ProviderError as exc:
        logger.info("generation %s: re-poll for fresh URLs failed: %s", generation.pk, exc.message)
        return None
    if progress.state != State.SUCCEEDED or not progress.outputs:
        return None
    outputs = [dataclasses.asdict(o) for o in progress.outputs]
    Generation.objects.filter(pk=generation.pk, status=Status.DOWNLOADING).update(output_urls=outputs)
    return outputs


def _candidates(output: dict, position: int, refresh: Callable[[], list[dict] | None]):
    """Where to fetch an output from, in order: its URL; a fresh one from a re-poll (asked only if
    the first was refused or expired); the provider's fallback URL."""
    if output.get("url"):
        yield output["url"]
    fresh = refresh()
    if fresh and position < len(fresh) and fresh[position].get("url"):
        yield fresh[position]["url"]
    if output.get("fallback_url"):
        yield output["fallback_url"]


# Downloads are I/O: a worker may run them in many threads (``--pool threads``); the
# CPU-heavy part (checking the file, poster frame, thumbnails) is bounded per process.
_media_work = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))


def _save_output(generation: Generation, position: int, output: dict, refresh: Callable[[], list[dict] | None],
                 provider: Provider, creds: Credentials, workdir: Path) -> None:
    kind = output.get("kind") or generation.kind
    path = workdir / f"{position}.download"
    last: http.DownloadError | None = None
    for url in _candidates(output, position, refresh):
        try:
            got = _download_to(url, path, generation, provider, creds, kind)
            break
        except http.DownloadError as exc:
            last = exc
            if exc.status_code in EXPIRED_URL_STATUSES:
                continue  # expired or refused: a fresh URL, then the fallback
            raise _SaveFailed(exc.message, retryable=exc.retryable) from None
    else:
        if last is not None and last.status_code in EXPIRED_URL_STATUSES:
            name = provider_name(generation.provider)
            raise _SaveFailed(f"its download link had expired (HTTP {last.status_code}) and asking {name} again "
                              "gave no working one")
        raise _SaveFailed(f"the file could not be fetched ({last.message if last else 'no URL was given'})")

    sniffed = mediafiles.sniff(got.head)
    if sniffed is None:
        raise _SaveFailed(f"it sent {mediafiles.describe_head(got.head)} instead of an image or video")
    try:
        with _media_work:  # decoding and thumbnails are CPU work: at most one per core
            processed = mediafiles.process(path, sniffed)
    except MediaRejected as exc:
        raise _SaveFailed(str(exc)) from None
    _store(generation, position, path, got, sniffed, processed)


def claim_download(pk: int, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return bool(Generation.objects.filter(pk=pk, status=Status.DOWNLOADING).filter(
        Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now)).update(next_poll_at=now + DOWNLOAD_LEASE))


def download(pk: int) -> str:
    """Fetch, check and store every output of a finished job, then mark it succeeded and capture its cost."""
    if not claim_download(pk):
        return "not claimed"
    generation = Generation.objects.select_related("provider_key", "team").get(pk=pk)
    name = provider_name(generation.provider)
    try:
        provider = get_provider(generation.provider)
        model = model_for(generation)
        creds = credentials_for(generation)
    except EngineError as exc:
        return _download_failed(generation, str(exc), model=None)

    refreshed: list[list[dict] | None] = []

    def refresh() -> list[dict] | None:
        if not refreshed:
            refreshed.append(_fresh_urls(generation, provider, creds, model))
        return refreshed[0]

    # Downloads may be gigabytes: FILE_UPLOAD_TEMP_DIR (a disk, not a tmpfs) when it is set.
    with tempfile.TemporaryDirectory(prefix="kiln-dl-", dir=settings.FILE_UPLOAD_TEMP_DIR) as tmp:
        for position, output in enumerate(generation.output_urls or []):
            if _media_complete(generation, position):
                continue
            try:
                _save_output(generation, position, output, refresh, provider, creds, Path(tmp))
            except _SaveFailed as exc:
                if exc.retryable:
                    return _download_retry(generation, model, exc.message)
                return _download_failed(generation, exc.message, model=model)

    actual = generation.actual_cost
    if actual is None:
        actual = model.estimate(generation.params, generation.operation)

    def succeed() -> bool:
        with transaction.atomic():
            moved = Generation.objects.filter(pk=pk, status=Status.DOWNLOADING).update(
                status=Status.SUCCEEDED, finished_at=timezone.now(), actual_cost=actual, next_poll_at=None,
                progress=100, error="")
            if moved:
                credits.capture(generation, actual, reason=f"{name}: cost {actual:,}.")
            return bool(moved)

    return "succeeded" if _db_retry(succeed) else "row moved"


def _download_retry(generation: Generation, model: ModelSpec, message: str) -> str:
    attempts = generation.error_count + 1
    if attempts >= MAX_DOWNLOAD_ATTEMPTS:
        return _download_failed(generation, f"{message} (after {attempts} attempts)", model=model)
    delay = backoff_seconds(5.0, attempts - 1)

    def reschedule() -> None:
        with transaction.atomic():
            moved = Generation.objects.filter(pk=generation.pk, status=Status.DOWNLOADING).update(
                error_count=F("error_count") + 1, next_poll_at=timezone.now() + timedelta(seconds=delay))
            if moved:
                _enqueue_download(generation.pk, countdown=delay)

    _db_retry(reschedule)
    logger.info("generation %s: download failed (%s); retrying in %.1fs", generation.pk, message, delay)
    return "retrying"


def _download_failed(generation: Generation, reason: str, *, model: ModelSpec | None) -> str:
    """The provider finished (and may have billed) but we could not keep the result.

    The member got nothing and the provider may have charged: neither capturing nor
    releasing is right by itself, so the reservation is held and the row flagged for
    review. A team owner or admin settles it (refunded or charged) from the result's
    page, the credits page or the Django admin (``credits.resolve_review``). The
    provider's reported charge, if it gave one, stays in ``actual_cost`` for that decision."""
    name = provider_name(generation.provider)
    held = generation.estimated_cost
    # What happened first (a card shows the first lines), then the money and who decides.
    message = (f"Kiln could not save the results of this job: {reason}. {name} had finished it and may have charged "
               f"for it, so the {held:,} reserved credits are held until a team owner or admin settles it: "
               f"refunded if {name} did not charge for it, charged if it did.")

    def write() -> bool:
        return bool(Generation.objects.filter(pk=generation.pk, status=Status.DOWNLOADING).update(
            status=Status.FAILED, error=message[:5000], finished_at=timezone.now(), next_poll_at=None,
            progress=None, needs_review=True))

    if _db_retry(write):
        logger.warning("generation %s: results not saved (%s); credits held for review", generation.pk, reason)
    return "failed"


# ---------------------------------------------------------------------------
# Recovery


def requeue_stuck(now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Find rows whose wake-up was lost or whose worker died, and move them on (pretix style)."""
    from generations.tasks import download_generation, submit_generation

    now = now or timezone.now()
    counts = {"submit": 0, "lost": 0, "download": 0, "poll": 0}
    unclaimed = (Generation.objects.filter(status=Status.QUEUED, claimed_at__isnull=True, created__lt=now - STUCK_QUEUED)
                 .filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now)).values_list("pk", flat=True)[:limit])
    for pk in unclaimed:
        submit_generation.delay(pk)
        counts["submit"] += 1
    abandoned = Generation.objects.filter(status=Status.QUEUED, claimed_at__lt=now - submit_lease(),
                                          provider_job_id="").values_list("pk", "claimed_at")[:limit]
    for pk, claimed_at in abandoned:
        counts["lost"] += mark_lost(pk, claimed_at, "no job id saved within the submit lease")
    stalled = (Generation.objects.filter(status=Status.DOWNLOADING)
               .filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lt=now - STUCK_QUEUED))
               .values_list("pk", flat=True)[:limit])
    for pk in stalled:
        download_generation.delay(pk)
        counts["download"] += 1
    counts["poll"] = Generation.objects.filter(status__in=IN_FLIGHT, next_poll_at__isnull=True).update(next_poll_at=now)
    return counts
