"""What every stage of the engine shares: the job's key and model, backoff, and the writes.

A write to a job is a compare-and-swap on ``Generation.status`` (see
``generations.engine``), run through ``db_retry`` so that a dropped database
connection is reopened and the write tried again. ``fail`` ends a job
``failed`` if it is still where the stage found it: with ``release`` its
reservation goes back to the wallet in the same transaction, without it the
credits are held for an admin's review.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.credits import services as credits
from generations.keys.crypto import DecryptionError
from generations.keys.models import ProviderKey
from generations.models import Generation, Status
from generations.providers.base import Credentials, ModelSpec
from generations.providers.registry import get_provider, provider_name
from generations.team_webhooks import outbox

logger = logging.getLogger(__name__)

BACKOFF_CAP = 120.0              # seconds
RETRY_AFTER_CAP = 900.0          # we honour Retry-After, up to this


class EngineError(Exception):
    """Kiln cannot run this job (its key is gone or unreadable, its model left the catalog)."""


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


def jitter(seconds: float, spread: float = 0.1) -> float:
    return seconds * random.uniform(1 - spread, 1 + spread)


def backoff_seconds(interval: float, attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter (interval x 2^attempt, capped), never sooner than Retry-After."""
    delay = jitter(min(BACKOFF_CAP, interval * (2 ** max(0, attempt))), 0.2)
    if retry_after is not None:
        delay = max(delay, min(float(retry_after), RETRY_AFTER_CAP))
    return delay


def db_retry[T](fn: Callable[[], T], attempts: int = 4) -> T:
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


def record_key_use(key_id: int | None, problem: str | None = "", *, used: bool = True) -> None:
    """When the key was last used and its problem, if it has one (the team's keys page shows both).

    ``last_used`` when the provider was reached (``used``); the key's error set to ``problem``
    (a problem of the key itself: ``providers.base.key_problem``), cleared when ``problem`` is ""
    (a success), or left as it is when None (the answer was about the job or the member's
    request, not the key: an unknown template, a job the provider forgot)."""
    if key_id is None:
        return
    now = timezone.now()
    changes: dict[str, Any] = {"last_used": now} if used else {}
    if problem is not None:
        changes.update(last_error=problem[:1000], last_error_at=now if problem else None)
    if not changes:
        return
    try:
        # Bookkeeping only: a dropped connection here must not lose a job id we hold.
        db_retry(lambda: ProviderKey.objects.filter(pk=key_id).update(**changes))
    except (OperationalError, InterfaceError):
        logger.warning("could not record the use of provider key %s", key_id, exc_info=True)


def settle_release(generation: Generation, reason: str) -> None:
    """Give the job's reservation back to the wallet (the ledger keeps the reason, shortened)."""
    credits.release(generation, reason=reason[:300])


def end(pk: int, rows: QuerySet[Generation], **fields: Any) -> bool:
    """Every move of a job to a final status (succeeded, failed, cancelled, expired) goes through
    here: the compare-and-swap ``rows.update(**fields)`` and, when it moved the row, the team's
    webhook deliveries written in the same transaction (``team_webhooks.outbox``, sent once it
    commits). The caller's own writes that belong with the move (a capture, a release) go in its
    ``transaction.atomic()`` around this call."""
    with transaction.atomic():
        moved = rows.update(**fields)
        if moved:
            outbox.generation_ended(pk)
    return bool(moved)


def fail(pk: int, expected: Status | frozenset | list, message: str, *, release: bool = True,
         needs_review: bool = False, **extra: Any) -> bool:
    """End the job ``failed`` if it is still in ``expected``; with ``release`` its reservation goes back
    in the same transaction, without it the credits are held (``needs_review``) for an admin."""
    statuses = [expected] if isinstance(expected, str) else list(expected)

    def write() -> bool:
        with transaction.atomic():
            moved = end(pk, Generation.objects.filter(pk=pk, status__in=statuses),
                        status=Status.FAILED, error=message[:5000], finished_at=timezone.now(), next_poll_at=None,
                        progress=None, needs_review=needs_review, **extra)
            if moved and release:
                settle_release(Generation.objects.get(pk=pk), f"Failed: {message}")
            return bool(moved)

    return db_retry(write)
