"""Browser: a team admin adds a webhook endpoint (issue 17, point 3).

On Team → Webhooks the owner adds an endpoint pointing at a receiver on loopback, sees the
signing secret once (with a copy button), sends a test event and sees it delivered in the log
(the worker's wake-up runs the delivery at once here), re-sends it (the same message id again),
and the secret they were shown verifies both deliveries with the Standard Webhooks library.

Screenshots at 1280 px and 390 px go to /tmp/shots-hooks17/ (KILN_SHOTS_DIR to change it).
"""

import os
import threading
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect
from standardwebhooks import Webhook

from generations.team_webhooks import delivery, outbox
from generations.team_webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from tests.generations.team_webhooks.conftest import Receiver

SHOTS = Path(os.environ.get("KILN_SHOTS_DIR", "/tmp/shots-hooks17"))
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}


def both_shots(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-1280.png"), full_page=True, caret="initial")
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(150)
    page.screenshot(path=str(SHOTS / f"{name}-390.png"), full_page=True, caret="initial")
    page.set_viewport_size(DESKTOP)


def wait_recorded(timeout: float = 20) -> None:
    """Until the worker has written down the answer it got (the receiver has the request before
    the worker has its answer: a page loaded in between still shows the delivery pending)."""
    deadline = time.monotonic() + timeout
    while WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).exists():
        assert time.monotonic() < deadline, "the delivery's answer was never recorded"
        time.sleep(0.05)


@pytest.fixture
def receiver(settings):
    settings.KILN_ALLOW_PRIVATE_URLS = True
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def worker_at_once(monkeypatch):
    """The worker, woken by the commit, sends the delivery at once (in a thread, as a worker would)."""
    def wake(pk, countdown=None):
        threading.Thread(target=delivery.deliver, args=(pk,), daemon=True).start()

    monkeypatch.setattr(outbox, "wake", wake)


def test_an_admin_adds_an_endpoint_sees_the_secret_once_and_the_log(signed_in, receiver, worker_at_once):
    page = signed_in
    page.goto("/accounts/team/")
    page.click("nav.tabs >> text=Webhooks")
    expect(page.locator("h2#webhooks-title")).to_contain_text("Endpoints")
    page.fill("input[name=url]", receiver.url)
    expect(page.locator("input[value='generation.failed']")).to_be_checked()  # with succeeded, by default
    page.fill("input[name=description]", "Release bot")
    both_shots(page, "webhooks-add")
    page.click("button:has-text('Add endpoint')")

    secret_box = page.locator("#webhook-secret")
    expect(secret_box).to_be_visible()
    secret = secret_box.input_value()
    assert secret.startswith("whsec_")
    expect(page.locator(".webhook-secret")).to_contain_text("will not be shown again")
    expect(page.locator("button[data-copy='#webhook-secret']")).to_be_visible()
    expect(page.locator("table.webhooks")).to_contain_text(receiver.url)
    both_shots(page, "webhooks-secret-once")

    page.goto("/accounts/team/webhooks/")
    assert secret not in page.content()  # once

    page.click("text=Delivery log")
    page.click("button:has-text('Send test event')")
    # The POST's redirect lands before the reload: a reload while it is under way finds no page.
    expect(page.locator(".messages")).to_contain_text("queued; its answer shows in the log below")
    receiver.wait(1)
    wait_recorded()
    page.reload()
    row = page.locator("tr.delivery").first
    expect(row).to_contain_text("webhook.test")
    expect(row).to_contain_text("Delivered")
    expect(row).to_contain_text("HTTP 200")
    both_shots(page, "webhooks-log")

    row.locator("button:has-text('Re-send')").click()
    expect(page.locator(".messages")).to_contain_text("queued to be sent again")
    got = receiver.wait(2)
    assert got[0].headers["webhook-id"] == got[1].headers["webhook-id"]
    for request in got:
        Webhook(secret).verify(request.body, dict(request.headers))
    page.reload()
    expect(page.locator("tr.delivery").first.locator(".delivery-attempts")).to_have_text("2")
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.description == "Release bot"
    assert sorted(endpoint.events) == ["generation.failed", "generation.succeeded"]
    both_shots(page, "webhooks-resent")
    assert page.problems == []
