"""Celery tasks: thin wake-ups that take primary keys and call ``generations.engine``.

The engine records every outcome in the database (retry times, failures,
reviews), so a task never needs Celery's own retry for provider errors. The
only error retried here is the database going away (``OperationalError`` /
``InterfaceError``): the row is untouched and trying again is safe. Anything
else is a bug: it is logged and the row is picked up again by its lease or by
``requeue_stuck``; no blanket retry.

The engine never imports this module: it wakes ``submit_generation`` and
``download_generation`` by name (``generations.engine.wakeups``), the names
they are registered under here.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from generations.engine import download, poll, recovery, submit, wakeups
from generations.team_webhooks import delivery, outbox

logger = logging.getLogger(__name__)

DB_ERRORS = (OperationalError, InterfaceError)
_retry = {"autoretry_for": DB_ERRORS, "retry_backoff": 2, "retry_backoff_max": 60, "retry_jitter": True, "max_retries": 8}


@shared_task(name=wakeups.SUBMIT, **_retry)  # generations.tasks.submit_generation
def submit_generation(generation_id: int) -> str:
    return submit.submit(generation_id)


@shared_task(name="generations.tasks.poll_due", ignore_result=True, **_retry)
def poll_due() -> int:
    # Poll what falls due during most of this tick on time; the rest of the tick is slack
    # so the worker's other process is free for submits and the next tick finds it idle.
    # A backlog (a full batch) queues one more tick at once, for any idle worker process:
    # polling capacity grows with the workers, not with the beat's rate.
    return poll.poll_due(linger_seconds=0.8 * settings.KILN_POLL_TICK_SECONDS, on_backlog=_another_tick)


def _another_tick() -> None:
    """One more ``poll_due`` on the poll queue, worth as long as a beat's tick (it expires as they do)."""
    if poll_due.app.conf.task_always_eager:
        return  # it would run here, inside this one: the loop already works the backlog off
    try:
        poll_due.apply_async(expires=settings.KILN_POLL_TICK_SECONDS)
    except Exception:
        # The broker refused: the beat's ticks still come, this one just polls on alone.
        logger.warning("could not queue another poll tick for the backlog", exc_info=True)


@shared_task(name="generations.tasks.poll_generation", **_retry)
def poll_generation(generation_id: int) -> str:
    return poll.poll_one(generation_id)


@shared_task(name=wakeups.DOWNLOAD, **_retry)  # generations.tasks.download_generation
def download_generation(generation_id: int) -> str:
    return download.download(generation_id)


@shared_task(name="generations.tasks.requeue_stuck", **_retry)
def requeue_stuck() -> dict[str, int]:
    return recovery.requeue_stuck()


@shared_task(name=outbox.DELIVER_TASK, ignore_result=True, **_retry)  # generations.tasks.deliver_webhook
def deliver_webhook(delivery_id: int) -> str:
    return delivery.deliver(delivery_id)


@shared_task(name="generations.tasks.deliver_due_webhooks", ignore_result=True, **_retry)
def deliver_due_webhooks() -> dict[str, int]:
    return delivery.deliver_due()
