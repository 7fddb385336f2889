"""Poll: ask the providers about in-flight jobs (submitted, running) and record the answers.

Polling many jobs cheaply
-------------------------
One beat tick (``poll_due``) claims up to ``KILN_POLL_BATCH`` due rows with
``SELECT … FOR UPDATE SKIP LOCKED`` (PostgreSQL), pushes their
``next_poll_at`` forward by ``POLL_LEASE`` in the same transaction (so a
concurrent tick skips them, and a crash mid-poll only delays them), then
polls them over HTTP in a pool of ``KILN_POLL_CONCURRENCY`` threads. The
threads do HTTP only; the calling thread writes the results, one UPDATE per
job, as they come back.

An answer moves the row on (``apply_progress``, which a synchronous submit
uses too): still working, ``submitted`` or ``running`` with the next poll
due; done, ``downloading`` with a wake-up for the download worker; failed or
cancelled by the provider, the reservation released; past its deadline,
``expired`` and held for review.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from generations.engine import wakeups
from generations.engine.common import (
    EngineError,
    backoff_seconds,
    credentials_for,
    db_retry,
    end,
    fail,
    jitter,
    model_for,
    provider_name,
    record_key_use,
    settle_release,
)
from generations.models import IN_FLIGHT, Generation, Status
from generations.providers import http
from generations.providers.base import (
    MODERATION,
    Credentials,
    ModelSpec,
    Progress,
    Provider,
    ProviderError,
    State,
    key_problem,
    moderation_in,
)
from generations.providers.registry import get_provider

logger = logging.getLogger(__name__)

MAX_POLL_CRASHES = 8             # unexpected adapter errors before a job is given up
POLL_LEASE = timedelta(seconds=45)
RECORD_GROUP_SECONDS = 0.25      # polls answered within this are written in one transaction


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


def poll_due(limit: int | None = None, budget_seconds: float | None = None, linger_seconds: float = 0.0,
             on_backlog: Callable[[], None] | None = None) -> int:
    """Claim due in-flight rows a batch at a time and poll each batch concurrently, until
    none are due or ``budget_seconds`` (default: 5 ticks) are spent; returns how many were polled.

    Looping keeps the throughput independent of the beat's tick: a backlog is
    worked off by the tick that finds it, and concurrent ticks (other worker
    processes) take other rows (SKIP LOCKED + the lease).

    ``on_backlog`` (the beat's task passes one that queues another tick) is called once,
    as soon as a claim comes back full: more is due than one batch, so another worker
    process, on this host or another, should start on the rest now. Without it the only
    other ticks are the beat's, one a second: however many worker processes there were,
    no more than budget / tick of them (5) ever polled at once, and each one that finished
    its budget sat idle until the next tick reached it.

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
        polled = _poll_batch(limit, on_full=on_backlog)
        if polled == limit:
            on_backlog = None   # once: the tick it queued does the same if the backlog holds
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


def _poll_batch(limit: int, on_full: Callable[[], None] | None = None) -> int:
    now = timezone.now()
    rows = _claim_due(now, limit)
    if not rows:
        return 0
    if on_full and len(rows) == limit:
        on_full()  # before polling this batch: whoever takes the rest starts now
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
        record_key_use(key_id, "")


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
            record_key_use(generation.provider_key_id, "")
        apply_progress(generation, future.result(), model)
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
    return db_retry(lambda: end(
        generation.pk, Generation.objects.filter(pk=generation.pk, status__in=IN_FLIGHT),
        status=Status.EXPIRED, needs_review=True, finished_at=now, next_poll_at=None, progress=None,
        error=expired_message(generation, now, last_error)))


def _past_deadline(generation: Generation, now: datetime) -> bool:
    return generation.deadline is not None and now >= generation.deadline


def apply_progress(generation: Generation, progress: Progress, model: ModelSpec) -> None:
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
                db_retry(lambda: end(
                    pk, in_flight, **common, status=Status.FAILED, needs_review=True, finished_at=now, next_poll_at=None,
                    progress=None, actual_cost=progress.cost,
                    error=f"{name} reported success but sent no results. The reserved credits are held for review."))
                return

            def to_download() -> None:
                with transaction.atomic():
                    moved = in_flight.update(**common, status=Status.DOWNLOADING, output_urls=outputs,
                                             actual_cost=progress.cost, progress=100, next_poll_at=now,
                                             started_at=generation.started_at or now)
                    if moved:
                        wakeups.send_on_commit(wakeups.DOWNLOAD, pk)

            db_retry(to_download)
        case State.FAILED | State.CANCELLED:
            cancelled = progress.state == State.CANCELLED
            message = progress.error or (f"{name} cancelled the job." if cancelled else f"{name} reported that the job failed.")
            # Moderation refused the prompt or the result: the job is edited, not re-sent as it was.
            kind = "" if cancelled else progress.error_kind or (MODERATION if moderation_in(progress.error) else "")

            def finish() -> None:
                with transaction.atomic():
                    # A job that ended without a result has no progress (the provider may say
                    # "100%" with its failure, or nothing): no bar, no stale 30 %.
                    moved = end(pk, in_flight, **common, status=Status.CANCELLED if cancelled else Status.FAILED,
                                error=message[:5000], error_kind=kind, finished_at=now,
                                next_poll_at=None, progress=None)
                    if moved:
                        settle_release(generation, f"{'Cancelled' if cancelled else 'Failed'}: {message}")

            db_retry(finish)
        case _:
            if _past_deadline(generation, now):
                _expire(generation, now)
                return
            running = progress.state == State.RUNNING or generation.status == Status.RUNNING
            percent = progress.percent
            if percent is not None:
                percent = max(0, min(100, int(percent)))
            changes = dict(**common, status=Status.RUNNING if running else Status.SUBMITTED,
                           next_poll_at=now + timedelta(seconds=jitter(model.poll_interval)))
            if percent is not None:
                changes["progress"] = percent
            if running and generation.started_at is None:
                changes["started_at"] = now
            db_retry(lambda: in_flight.update(**changes))


def _poll_provider_error(generation: Generation, model: ModelSpec, exc: ProviderError) -> None:
    now = timezone.now()
    status = exc.status_code
    # A key refused (401/402/403) says nothing about the job: keep trying until the deadline.
    keep_trying = exc.retryable or status in (401, 402, 403)
    if not keep_trying:
        # A job the provider forgot, a 400: about the job, not the key (unless it is a key problem).
        record_key_use(generation.provider_key_id, key_problem(exc) or None)
        fail(generation.pk, IN_FLIGHT, exc.message or f"{provider_name(generation.provider)} reported an error.")
        return
    if status in (401, 402, 403):
        record_key_use(generation.provider_key_id, key_problem(exc))
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
        fail(generation.pk, IN_FLIGHT,
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
    fail(generation.pk, IN_FLIGHT,
         f"Kiln can no longer follow this job: {why} The provider may still finish and bill, so the reserved "
         "credits are held for review.", release=False, needs_review=True)
