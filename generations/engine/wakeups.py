"""The wake-ups the engine sends its workers, by task name: the engine never imports the tasks.

``generations.tasks`` holds thin Celery tasks that import the engine and call it
with a primary key. The engine wakes workers too (a finished job's download, a
submit tried again after backoff, the rows the sweep finds), and importing those
tasks back would tie the two in a circle (tests/test_layout.py fails on one).
So it names them: the tasks are registered under these names (and routed by
them, and wait in the broker under them).

Celery looks a named task up in its registry. Where ``generations.tasks`` is
loaded (every worker; the web process once it has queued a job) the wake-up is
the task's own ``apply_async``, run at once under ``task_always_eager``;
elsewhere the message is sent by name, which is all ``apply_async`` does then.
"""

from __future__ import annotations

from django.db import transaction

from project.celery import app

SUBMIT = "generations.tasks.submit_generation"
DOWNLOAD = "generations.tasks.download_generation"


def send(task: str, pk: int, countdown: float | None = None) -> None:
    """Wake a worker to run ``task`` for the row ``pk`` (in ``countdown`` seconds, or now)."""
    app.signature(task, args=(pk,)).apply_async(countdown=countdown or None)


def send_on_commit(task: str, pk: int, countdown: float | None = None) -> None:
    """``send`` once the transaction that moved the row commits (a worker woken earlier would find
    the row unchanged). A wake-up the broker refuses is logged, not raised: the row's state is
    committed and ``recovery.requeue_stuck`` finds it."""
    transaction.on_commit(lambda: send(task, pk, countdown), robust=True)
