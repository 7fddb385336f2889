"""The real thing: a Celery worker (with beat) on Redis and PostgreSQL runs a job through the
sandbox, and the team's receiver on loopback gets the signed webhook within a couple of seconds
of the job's end, woken by the commit (the beat's pick-up is slowed to a minute here, so only
the wake-up can be that quick)."""

from __future__ import annotations

import json
import os
import time

import pytest
from standardwebhooks import Webhook

from generations.models import Generation, Status
from generations.services import create_generation
from generations.team_webhooks.models import DeliveryStatus, WebhookDelivery
from tests.conftest import make_member
from tests.generations.conftest import IMAGE
from tests.generations.engine.conftest import broker
from tests.generations.engine.test_worker import _start_worker, _stop

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_a_job_that_ends_in_the_sandbox_reaches_the_receiver_within_two_seconds(
        transactional_db, team, sandbox, sandbox_key, receiver, endpoint_for, settings, tmp_path, monkeypatch):
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    monkeypatch.setenv("KILN_WEBHOOK_TICK_SECONDS", "60")
    sandbox.control(duration=0.5)
    user = make_member(team, "boss@acme.test", "owner", credits=1_000_000)
    sandbox_key(team, "shark")
    _, secret = endpoint_for(team, receiver.url)
    process = _start_worker(settings, tmp_path)
    try:
        with broker(os.environ["REDIS_URL"]):
            create_generation(membership=user.memberships.get(team=team), provider_id="shark", model_id=IMAGE,
                              operation="text-to-image", prompt="a kiln at dawn", params={})
            got = receiver.wait(1, timeout=60)[0]
            # The worker writes the answer down after the receiver has it.
            deadline = time.monotonic() + 20
            while (WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).exists()
                   and time.monotonic() < deadline):
                time.sleep(0.05)
    finally:
        _stop(process)
    generation = Generation.objects.get()
    assert generation.status == Status.SUCCEEDED
    Webhook(secret).verify(got.body, dict(got.headers))
    assert json.loads(got.body)["data"]["id"] == str(generation.public_id)
    lag = got.at - generation.finished_at.timestamp()
    assert 0 <= lag < 2.0, f"the webhook arrived {lag:.2f} s after the job ended"
    item = WebhookDelivery.objects.get()
    assert item.status == DeliveryStatus.DELIVERED and item.attempts == 1
