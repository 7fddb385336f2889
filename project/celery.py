"""The Celery app. Tasks live in ``generations.tasks`` and ``accounts.tasks``."""

import logging
import os

from celery import Celery
from celery.signals import after_setup_logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

app = Celery("kiln")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _schedule(sender, **kwargs):
    from django.conf import settings

    sender.add_periodic_task(settings.KILN_POLL_TICK_SECONDS, sender.signature("generations.tasks.poll_due"), name="poll due generations")
    sender.add_periodic_task(60.0, sender.signature("generations.tasks.requeue_stuck"), name="requeue stuck generations")
    # Idempotent per month: the first run of a month tops wallets up, later runs change nothing.
    sender.add_periodic_task(3600.0, sender.signature("accounts.tasks.monthly_allowance"), name="monthly credit allowance")


@after_setup_logger.connect
def _quiet_periodic_chatter(logger, **kwargs):
    """The poll tick runs every second: its received/succeeded/sending lines drown the
    log. Keep them at WARNING; job events are logged by generations.engine."""
    for name in ("celery.app.trace", "celery.worker.strategy", "celery.beat"):
        logging.getLogger(name).setLevel(logging.WARNING)
