"""The Celery app. Tasks live in ``generations.tasks`` and ``accounts.tasks``."""

import logging
import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

app = Celery("kiln")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _schedule(sender, **kwargs):
    from django.conf import settings

    # Each run expires when the next is sent: a run that waited a whole period in the queue
    # (workers busy) is worth nothing, the next one does all its work, so a backlog of them
    # is dropped on arrival instead of being worked through ahead of new jobs' submits.
    tick = settings.KILN_POLL_TICK_SECONDS
    sender.add_periodic_task(tick, sender.signature("generations.tasks.poll_due"), name="poll due generations",
                             expires=tick)
    sender.add_periodic_task(60.0, sender.signature("generations.tasks.requeue_stuck"), name="requeue stuck generations",
                             expires=60.0)
    # Webhook retries that fell due, and any delivery whose wake-up was lost (generations/team_webhooks).
    webhook_tick = settings.KILN_WEBHOOK_TICK_SECONDS
    sender.add_periodic_task(webhook_tick, sender.signature("generations.tasks.deliver_due_webhooks"),
                             name="deliver due webhooks", expires=webhook_tick)
    # Idempotent per month: the first run of a month tops wallets up, later runs change nothing.
    sender.add_periodic_task(3600.0, sender.signature("accounts.tasks.monthly_allowance"),
                             name="monthly credit allowance", expires=3600.0)


@after_setup_logger.connect
def _quiet_periodic_chatter(logger, **kwargs):
    """The poll tick runs every second: its received/succeeded/sending lines drown the
    log. Keep them at WARNING; job events are logged by generations.engine."""
    for name in ("celery.app.trace", "celery.worker.strategy", "celery.beat"):
        logging.getLogger(name).setLevel(logging.WARNING)


@after_setup_logger.connect
@after_setup_task_logger.connect
def _json_lines(logger, **kwargs):
    """KILN_LOG_FORMAT=json: Celery's worker and beat replace Django's log handlers with their own
    (their format, their -l level); give those handlers the JSON formatter, keeping the rest."""
    from django.conf import settings

    if settings.KILN_LOG_FORMAT == "json":
        from celery.utils.log import get_multiprocessing_logger

        from project.logformat import JsonFormatter

        # The root (or task) logger, and the pool's own (billiard's "process exited" lines).
        for handler in [*logger.handlers, *(get_multiprocessing_logger() or logging.getLogger()).handlers]:
            handler.setFormatter(JsonFormatter())
