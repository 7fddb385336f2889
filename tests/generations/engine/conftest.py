"""Engine fixtures: a team with a Shark key on the sandbox, and a way to drive jobs
through the engine in-process (the Celery worker test runs the real thing)."""

import time

import pytest
from django.db.models import Q
from django.utils import timezone

from accounts.credits import services as credits
from accounts.models import Membership
from generations.engine.download import download
from generations.engine.poll import poll_due
from generations.engine.submit import submit
from generations.models import IN_FLIGHT, TERMINAL, Generation, Status
from generations.services import create_generation
from tests.brokers import use_broker

VIDEO = "alibaba/wan-2.7"
IMAGE = "openai/gpt-image-2"


@pytest.fixture
def shark(team, sandbox, sandbox_key):
    return sandbox_key(team, "shark")


@pytest.fixture
def membership(owner, team):
    return Membership.objects.select_related("team", "user", "wallet").get(user=owner, team=team)


@pytest.fixture
def make(membership, shark):
    """make(prompt=..., model=VIDEO, operation=..., **params) -> a queued Generation."""

    def make(prompt: str = "a kiln at dawn", model: str = VIDEO, operation: str | None = None, who=None,
             inputs=(), **params):
        operation = operation or ("text-to-video" if model == VIDEO else "text-to-image")
        return create_generation(membership=who or membership, provider_id="shark", model_id=model,
                                 operation=operation, prompt=prompt, params=params, inputs=inputs)

    return make


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


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def broker(url: str):
    """Point this process's Celery producer at ``url`` (the worker's broker), then back."""
    return use_broker(url)
