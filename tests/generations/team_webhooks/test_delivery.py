"""Webhooks out, against a real receiver on loopback: what is sent (signed as Standard Webhooks
says, checked with the reference library), retried with backoff until a 2xx and then never
again, claimed by one worker only, refused by the address guard, and an endpoint that keeps
failing disabled with an e-mail to the team's owners and admins."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from generations.engine import common, submit
from generations.models import Generation, Status
from generations.services import cancel_generation
from generations.team_webhooks import delivery, outbox
from generations.team_webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from tests.conftest import make_member
from tests.generations.conftest import IMAGE
from tests.generations.engine.conftest import drive

pytestmark = pytest.mark.django_db


def finished_job(make, sandbox, capture, **params):
    """A job run through the sandbox to its end, its webhooks written as the engine writes them."""
    sandbox.control(duration=0.2)
    with capture(execute=True):
        generation = make(model=IMAGE, **params)
    with capture(execute=True):
        return drive(generation.pk)


def test_a_finished_job_is_posted_signed_as_standard_webhooks_says(
        team, make, sandbox, receiver, endpoint_for, woken, django_capture_on_commit_callbacks, settings):
    settings.KILN_PUBLIC_URL = "https://kiln.example.com"
    _, secret = endpoint_for(team, receiver.url)
    generation = finished_job(make, sandbox, django_capture_on_commit_callbacks)
    assert generation.status == Status.SUCCEEDED

    item = WebhookDelivery.objects.get()
    assert woken == [item.pk]  # the worker is woken once the move commits
    assert delivery.deliver(item.pk) == "delivered"

    got = receiver.wait(1)[0]
    # The reference implementation verifies Kiln's signature with the secret shown to the admin.
    verified = Webhook(secret).verify(got.body, {k: got.headers[k] for k in
                                                 ("webhook-id", "webhook-timestamp", "webhook-signature")})
    assert verified["type"] == "generation.succeeded"
    assert got.headers["webhook-id"] == item.msg_id and item.msg_id.startswith("msg_")
    assert got.headers["content-type"] == "application/json"
    assert "Kiln" in got.headers["user-agent"]
    data = json.loads(got.body)["data"]
    media = generation.media.get()
    assert data["id"] == str(generation.public_id) and data["status"] == "succeeded"
    assert data["team"]["slug"] == team.slug and data["model"] == IMAGE
    assert data["cost"] == generation.actual_cost
    assert data["media"][0]["download_url"] == f"https://kiln.example.com/api/v1/media/{media.public_id}/download"
    assert data["url"] == f"https://kiln.example.com/api/v1/generations/{generation.public_id}"
    assert data["web_url"] == f"https://kiln.example.com/g/{generation.public_id}/"
    # A wrong secret does not verify: the check is real.
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 44).verify(got.body, dict(got.headers))

    item.refresh_from_db()
    assert item.status == DeliveryStatus.DELIVERED and item.attempts == 1 and item.last_status_code == 200


def test_a_failed_and_a_cancelled_job_send_their_events_with_the_providers_words(
        team, make, sandbox, receiver, endpoint_for, woken, django_capture_on_commit_callbacks, owner):
    endpoint_for(team, receiver.url)
    sandbox.control(duration=0.2)
    with django_capture_on_commit_callbacks(execute=True):
        queued = make(model=IMAGE)
    with django_capture_on_commit_callbacks(execute=True):
        cancel_generation(queued, actor=owner)
    cancelled = WebhookDelivery.objects.get()
    assert cancelled.event_type == "generation.cancelled"
    assert cancelled.payload["data"]["status"] == "cancelled"

    sandbox.fault("/shark/", status=400, json={"error": {"message": "The prompt was refused by moderation."}})
    generation = finished_job(make, sandbox, django_capture_on_commit_callbacks)
    assert generation.status == Status.FAILED
    failed = WebhookDelivery.objects.get(event_type="generation.failed")
    assert "refused by moderation" in failed.payload["data"]["error"]
    assert failed.payload["data"]["media"] == []


def test_the_event_is_written_with_the_move_only_once_and_only_for_endpoints_that_take_it(
        team, other_team, make, sandbox, receiver, endpoint_for, woken, django_capture_on_commit_callbacks):
    takes, _ = endpoint_for(team, receiver.url, events=["generation.succeeded"])
    endpoint_for(team, receiver.url, events=["generation.failed"])               # not this event
    endpoint_for(team, receiver.url, is_active=False)                            # disabled
    endpoint_for(other_team, receiver.url)                                       # another team
    generation = finished_job(make, sandbox, django_capture_on_commit_callbacks)

    assert list(WebhookDelivery.objects.values_list("endpoint", flat=True)) == [takes.pk]
    outbox.generation_ended(generation.pk)  # a repeated move writes nothing twice
    assert WebhookDelivery.objects.count() == 1

    # A move rolled back writes nothing and wakes nobody.
    woken.clear()
    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                WebhookDelivery.objects.all().delete()
                outbox.generation_ended(generation.pk)
                assert WebhookDelivery.objects.count() == 1
                raise RuntimeError("the move failed")
        except RuntimeError:
            pass
    assert woken == [] and WebhookDelivery.objects.count() == 1


def test_a_failing_receiver_gets_retries_with_backoff_and_the_event_once_after_it_answers_2xx(
        team, make, sandbox, receiver, endpoint_for, woken, django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr(delivery, "DEADLINE_SECONDS", 1.0)   # the "hang" answer is a timeout after 1 s
    endpoint, secret = endpoint_for(team, receiver.url)
    finished_job(make, sandbox, django_capture_on_commit_callbacks)
    item = WebhookDelivery.objects.get()
    receiver.script(500, "close", "hang", 200)

    now = timezone.now()
    outcomes, waits = [], []
    for _ in range(4):
        item.refresh_from_db()
        when = item.next_attempt_at
        waits.append((when - now).total_seconds())
        # Nothing is sent before it is due: the beat's pick-up at the due time sends it.
        assert delivery.deliver_due(now=when - timedelta(seconds=1)) == {}
        outcomes.append(delivery.deliver_due(now=when))
        now = when
    assert outcomes == [{"retrying": 1}, {"retrying": 1}, {"retrying": 1}, {"delivered": 1}]
    # 5 s, 30 s then 2 min after each failure (with up to 10 % jitter).
    assert 4.5 <= waits[1] <= 5.5 and 27 <= waits[2] <= 33 and 108 <= waits[3] <= 132

    got = receiver.wait(4)
    assert [r.answered for r in got] == [500, "close", "hang", 200]
    assert len({r.headers["webhook-id"] for r in got}) == 1  # one message id across the retries
    Webhook(secret).verify(got[-1].body, dict(got[-1].headers))

    item.refresh_from_db()
    assert item.status == DeliveryStatus.DELIVERED and item.attempts == 4
    # Acknowledged: never sent again, whoever wakes up for it later.
    assert delivery.deliver(item.pk, now=now + timedelta(days=2)) == "not claimed"
    assert delivery.deliver_due(now=now + timedelta(days=2)) == {}
    assert len(receiver.requests) == 4
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None and endpoint.last_success_at is not None


def test_the_log_keeps_the_answer_short_and_the_reason_in_words(
        team, make, sandbox, receiver, endpoint_for, woken, django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr(delivery, "DEADLINE_SECONDS", 1.0)
    endpoint_for(team, receiver.url)
    finished_job(make, sandbox, django_capture_on_commit_callbacks)
    item = WebhookDelivery.objects.get()
    receiver.script(503, "hang")
    delivery.deliver(item.pk)
    item.refresh_from_db()
    assert item.last_status_code == 503 and item.last_error.startswith("HTTP 503: receiver says no")
    assert len(item.last_error) <= 300
    delivery.deliver(item.pk, now=item.next_attempt_at)
    item.refresh_from_db()
    assert item.last_error == "The endpoint did not answer in time." and item.status == DeliveryStatus.PENDING


def test_of_two_workers_woken_for_one_delivery_one_sends_it(
        team, make, sandbox, receiver, endpoint_for, woken, django_capture_on_commit_callbacks):
    endpoint_for(team, receiver.url)
    finished_job(make, sandbox, django_capture_on_commit_callbacks)
    item = WebhookDelivery.objects.get()
    first = delivery.claim(item.pk)
    assert first is not None
    assert delivery.claim(item.pk) is None                       # leased: the other worker stops
    assert delivery.deliver(item.pk) == "not claimed"
    assert delivery.deliver_due() == {}                          # nor does the beat take it
    # A lease that ran out (its worker died) is taken again, and the dead worker's late
    # outcome is not written over the new one's.
    later = first + timedelta(seconds=1)
    assert delivery.deliver(item.pk, now=later) == "delivered"
    assert delivery.record(item, first, 500, "HTTP 500") == "retrying"
    item.refresh_from_db()
    assert item.status == DeliveryStatus.DELIVERED and len(receiver.requests) == 1


@pytest.mark.postgres
def test_workers_racing_on_real_connections_send_each_delivery_once(
        transactional_db, team, owner, receiver, endpoint_for):
    endpoint, _ = endpoint_for(team, receiver.url)
    now = timezone.now()
    WebhookDelivery.objects.bulk_create([
        WebhookDelivery(endpoint=endpoint, event_type="webhook.test", event_key=f"race:{n}", payload={"n": n},
                        next_attempt_at=now) for n in range(20)])
    start = threading.Barrier(4)
    results: list[dict] = []

    def worker():
        from django.db import connection

        start.wait()
        try:
            results.append(delivery.deliver_due())
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(r.get("delivered", 0) for r in results) == 20
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) == len(set(ids)) == 20


def test_the_address_guard_refuses_a_private_receiver_unless_the_operator_allows_it(
        team, make, sandbox, receiver, endpoint_for, woken, django_capture_on_commit_callbacks, settings):
    endpoint_for(team, receiver.url)
    finished_job(make, sandbox, django_capture_on_commit_callbacks)
    item = WebhookDelivery.objects.get()
    settings.KILN_ALLOW_PRIVATE_URLS = False
    assert delivery.deliver(item.pk) == "retrying"
    item.refresh_from_db()
    assert "private address" in item.last_error and item.last_status_code is None
    assert receiver.requests == []
    settings.KILN_ALLOWED_PRIVATE_HOSTS = [receiver.url.split("/")[2]]  # the operator lists this host:port
    assert delivery.deliver(item.pk, now=item.next_attempt_at) == "delivered"
    assert len(receiver.requests) == 1


def test_an_endpoint_failing_for_a_day_is_disabled_and_the_owners_and_admins_are_emailed(
        team, owner, make, sandbox, receiver, endpoint_for, woken, django_capture_on_commit_callbacks, mailbox):
    make_member(team, "admin@acme.test", "admin")
    make_member(team, "member@acme.test", "member")
    endpoint, _ = endpoint_for(team, receiver.url, description="CI release bot")
    finished_job(make, sandbox, django_capture_on_commit_callbacks)
    item = WebhookDelivery.objects.get()
    receiver.script(*([500] * 20))
    # Every attempt fails; the clock runs through the whole schedule (about a day).
    now = timezone.now()
    outcome = ""
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(len(delivery.SCHEDULE) + 1):
            outcome = delivery.deliver(item.pk, now=now)
            item.refresh_from_db()
            now = item.next_attempt_at or now
    assert outcome == "given up"
    assert item.status == DeliveryStatus.FAILED and item.attempts == len(delivery.SCHEDULE) + 1
    assert len(receiver.requests) == len(delivery.SCHEDULE) + 1
    endpoint.refresh_from_db()
    assert not endpoint.is_active and endpoint.disabled_at is not None
    assert "Every delivery failed for 2" in endpoint.disabled_reason and "HTTP 500" in endpoint.disabled_reason

    messages = mailbox.wait(2)
    assert sorted(m["X-Envelope-To"] for m in messages) == ["admin@acme.test", owner.email]
    text = mailbox.text(messages[0])
    assert endpoint.url in text and "Every delivery failed" in text
    assert f"/accounts/team/webhooks/{endpoint.public_id}/" in mailbox.link(messages[0], "/accounts/team/webhooks/")

    # Disabled: nothing new is written for it.
    with django_capture_on_commit_callbacks(execute=True):
        finished_job(make, sandbox, django_capture_on_commit_callbacks)
    assert WebhookDelivery.objects.count() == 1


def test_a_delivery_given_up_while_others_get_through_does_not_disable_the_endpoint(
        team, make, sandbox, receiver, endpoint_for, woken, django_capture_on_commit_callbacks):
    endpoint, _ = endpoint_for(team, receiver.url)
    finished_job(make, sandbox, django_capture_on_commit_callbacks)
    item = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=item.pk).update(retry_step=len(delivery.SCHEDULE))
    # A day later, though another delivery got through an hour ago.
    WebhookDelivery.objects.filter(pk=item.pk).update(created=timezone.now() - timedelta(hours=24))
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(last_success_at=timezone.now() - timedelta(hours=1))
    receiver.script(500)
    assert delivery.deliver(item.pk) == "given up"
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.consecutive_failures == 1


def test_a_job_that_expired_then_failed_after_its_late_answer_sends_a_second_failed_event(
        team, make, endpoint_for, woken, django_capture_on_commit_callbacks):
    # docs/api.md: an expired job heard from after all ends again, and that end is an event too.
    endpoint, _ = endpoint_for(team, "https://hooks.example.com/kiln")
    with django_capture_on_commit_callbacks(execute=False):
        g = make()
    claimed = submit.claim_for_submit(g.pk)
    with django_capture_on_commit_callbacks(execute=False):
        assert submit.mark_lost(g.pk, claimed, "test")          # expired, needs_review -> generation.failed
    # The provider's answer arrives after all (submit._send's save(): EXPIRED -> SUBMITTED).
    Generation.objects.filter(pk=g.pk).update(status=Status.SUBMITTED, provider_job_id="late", needs_review=False,
                                              finished_at=None)
    with django_capture_on_commit_callbacks(execute=False):
        assert common.fail(g.pk, Status.SUBMITTED, "The provider refused the prompt.")
    sent = list(WebhookDelivery.objects.filter(endpoint=endpoint).order_by("pk").values_list("payload", flat=True))
    assert [p["data"]["status"] for p in sent] == ["expired", "failed"]
