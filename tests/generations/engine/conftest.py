"""Engine helpers: drive jobs through the engine in-process, as a worker would (the Celery
worker test runs the real thing). The team, its Shark key and ``make`` are in tests/generations/conftest.py."""

import time

from django.db.models import Q
from django.utils import timezone

from accounts.credits import services as credits
from generations.engine.download import download
from generations.engine.poll import poll_due
from generations.engine.submit import submit
from generations.models import IN_FLIGHT, TERMINAL, Generation, Status
from tests.brokers import use_broker
from tests.generations.conftest import IMAGE, VIDEO  # noqa: F401 (the engine tests' models)


def make_due(pk: int) -> None:
    Generation.objects.filter(pk=pk).filter(Q(status__in=IN_FLIGHT) | Q(status=Status.DOWNLOADING)).update(
        next_poll_at=timezone.now())


def drive(pk: int, *, timeout: float = 20.0, until=TERMINAL) -> Generation:
    """Run the engine on one job, as the worker would, until it reaches one of ``until``."""
    stop = time.monotonic() + timeout
    while time.monotonic() < stop:
        generation = Generation.objects.get(pk=pk)
        if generation.status in until:
            return generation
        if generation.status == Status.QUEUED:
            submit(pk)
        elif generation.status in IN_FLIGHT:
            make_due(pk)
            poll_due()
            time.sleep(0.05)
        elif generation.status == Status.DOWNLOADING:
            make_due(pk)
            download(pk)
    raise AssertionError(f"generation {pk} still {Generation.objects.get(pk=pk).status} after {timeout}s")


def assert_ledger_consistent() -> None:
    bad = [check for check in credits.verify() if not check.ok]
    assert bad == []


def broker(url: str):
    """Point this process's Celery producer at ``url`` (the worker's broker), then back."""
    return use_broker(url)
