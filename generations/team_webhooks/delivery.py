"""Sending webhook deliveries (the worker's side of the outbox).

A delivery is sent by whoever claims it: ``claim`` is a compare-and-swap on the row (pending,
due, and no live lease) that sets a lease (``claimed_until``) and counts the attempt, so of two
workers woken for one row, or a wake-up racing the beat's ``deliver_due``, one sends and the
other sees 0 rows. The outcome is written only under that same lease.

- A 2xx answer: ``delivered``, never sent again (only an admin's "Re-send" sends it again).
- Anything else (another status, a timeout, a refused connection, the address guard): tried
  again after ``SCHEDULE[step]`` (with jitter), about a day in all, then ``failed`` (given up).
- An endpoint to which nothing was delivered while one delivery went through its whole schedule
  (given up, at least ``DISABLE_AFTER`` after it was written, no success since) is disabled (``disable``): its pending deliveries are failed, nothing new is written for it,
  and the team's owners and admins get an e-mail; the page shows the reason and an "Enable" button.

The request: the body is the payload as compact JSON; the headers follow Standard Webhooks
(``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">`` keyed with the base64-decoded secret after ``whsec_``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import time
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts import mail
from accounts.models import Membership, Role
from generations.keys.crypto import DecryptionError
from generations.providers import http
from generations.providers.redaction import redact
from generations.team_webhooks.models import (
    SECRET_PREFIX,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
)

logger = logging.getLogger(__name__)

# Seconds to wait after each failed attempt: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h,
# 8 h, 8 h (23 h 40 min in all); the attempt after the last wait is the last (11 in all).
SCHEDULE = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800)
DISABLE_AFTER = timedelta(hours=20)  # the schedule is about a day; less its jitter
LEASE = timedelta(seconds=60)
DEADLINE_SECONDS = 15.0
USER_AGENT = "Kiln-Webhooks/1.0 (+self-hosted)"


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def body_of(delivery: WebhookDelivery) -> bytes:
    return json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()


def claim(pk: int, now: datetime | None = None) -> datetime | None:
    """Take the row for one attempt; the lease's end (the caller's claim), or None when it is not
    pending, not due, or another worker holds it."""
    now = now or timezone.now()
    until = now + LEASE
    moved = (WebhookDelivery.objects.filter(pk=pk, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
             .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
             .update(claimed_until=until, attempts=F("attempts") + 1, last_attempt_at=now))
    return until if moved else None


def deliver(pk: int, now: datetime | None = None) -> str:
    """Claim and send one delivery; what happened, in a word."""
    claimed = claim(pk, now)
    if claimed is None:
        return "not claimed"
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=pk).first()
    if delivery is None:  # its endpoint was deleted meanwhile
        return "gone"
    endpoint = delivery.endpoint
    code, error = None, ""
    try:
        secret = endpoint.get_secret()
        timestamp = int((now or timezone.now()).timestamp())
        body = body_of(delivery)
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "webhook-id": delivery.msg_id,
                   "webhook-timestamp": str(timestamp), "webhook-signature": sign(secret, delivery.msg_id, timestamp, body)}
        answer = http.post_webhook(endpoint.url, body, headers, deadline_seconds=DEADLINE_SECONDS)
        code = answer.status_code
        if not 200 <= code < 300:
            error = f"HTTP {code}" + (f": {answer.text}" if answer.text else "")
    except http.DownloadError as exc:
        error = exc.message
    except DecryptionError as exc:
        error = str(exc)
    except Exception as exc:  # a bug must not keep the row leased for ever
        logger.exception("webhook delivery %s crashed", pk)
        error = f"Kiln could not send it ({type(exc).__name__})."
    return record(delivery, claimed, code, redact(error)[:300] if error else "", now=now)


def record(delivery: WebhookDelivery, claimed: datetime, code: int | None, error: str,
           now: datetime | None = None) -> str:
    now = now or timezone.now()
    mine = WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING, claimed_until=claimed)
    endpoint_rows = WebhookEndpoint.objects.filter(pk=delivery.endpoint_id)
    if not error:
        with transaction.atomic():
            mine.update(status=DeliveryStatus.DELIVERED, delivered_at=now, claimed_until=None, next_attempt_at=None,
                        last_status_code=code, last_error="")
            endpoint_rows.update(failing_since=None, consecutive_failures=0, last_success_at=now)
        return "delivered"
    step = delivery.retry_step
    with transaction.atomic():
        endpoint_rows.filter(failing_since__isnull=True).update(failing_since=now)
        if step < len(SCHEDULE):
            delay = SCHEDULE[step] * random.uniform(0.9, 1.1)
            mine.update(claimed_until=None, retry_step=step + 1, next_attempt_at=now + timedelta(seconds=delay),
                        last_status_code=code, last_error=error)
            logger.info("webhook %s to endpoint %s failed (%s); next attempt in %.0fs",
                        delivery.msg_id, delivery.endpoint_id, error, delay)
            return "retrying"
        moved = mine.update(status=DeliveryStatus.FAILED, claimed_until=None, next_attempt_at=None,
                            last_status_code=code, last_error=error)
        if moved:
            endpoint_rows.update(consecutive_failures=F("consecutive_failures") + 1)
            endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
            # Nothing got through since this event was written, a day of retries ago: the receiver is gone.
            silent = endpoint.last_success_at is None or endpoint.last_success_at < delivery.created
            if endpoint.is_active and silent and now - delivery.created >= DISABLE_AFTER:
                hours = round((now - delivery.created).total_seconds() / 3600)
                disable(endpoint, f"Every delivery failed for {hours} hours (the last answer: {error})", now=now)
    logger.warning("webhook %s to endpoint %s given up after %s attempts: %s",
                   delivery.msg_id, delivery.endpoint_id, delivery.attempts, error)
    return "given up"


def disable(endpoint: WebhookEndpoint, reason: str, *, now: datetime | None = None, notify: bool = True) -> bool:
    """Stop sending to ``endpoint``: its pending deliveries fail, and (``notify``) the team's owners
    and admins are e-mailed once the transaction commits. False when it was disabled already."""
    now = now or timezone.now()
    with transaction.atomic():
        moved = WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
            is_active=False, disabled_reason=reason[:500], disabled_at=now)
        if not moved:
            return False
        endpoint.deliveries.filter(status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.FAILED, next_attempt_at=None, claimed_until=None,
            last_error="Not sent: the endpoint was disabled.")
        if notify:
            pk = endpoint.pk
            transaction.on_commit(lambda: notify_disabled(pk), robust=True)
    return True


def notify_disabled(endpoint_pk: int) -> int:
    """E-mail the team's owners and admins that an endpoint was disabled; how many were sent."""
    from django.urls import reverse

    endpoint = WebhookEndpoint.objects.select_related("team").get(pk=endpoint_pk)
    managers = (Membership.objects.active().filter(team_id=endpoint.team_id, role__in=[Role.OWNER, Role.ADMIN])
                .select_related("user"))
    context = {"endpoint": endpoint, "team": endpoint.team,
               "link": mail.site_url() + reverse("accounts:webhook_detail", args=[endpoint.public_id])}
    sent = 0
    for membership in managers:
        try:
            mail.send("webhook_disabled", context, membership.user.email)
            sent += 1
        except Exception:
            logger.warning("could not e-mail %s that a webhook endpoint was disabled", membership.user.email,
                           exc_info=True)
    return sent


def due(now: datetime | None = None, limit: int = 100) -> list[int]:
    """The pending deliveries whose attempt is due and not leased (oldest due first)."""
    now = now or timezone.now()
    return list(WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
                .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
                .order_by("next_attempt_at").values_list("pk", flat=True)[:limit])


def deliver_due(now: datetime | None = None, limit: int = 100, budget_seconds: float = 4.0) -> dict[str, int]:
    """The beat's pick-up: send the due deliveries (each claimed first, so a worker woken for the
    same row at the same time sends it once). Retries come due here; so do rows whose wake-up
    was lost (a broker outage) or whose worker died holding the lease. No new send starts after
    ``budget_seconds`` (a receiver that times out holds one for 15 s): the next tick goes on."""
    counts: dict[str, int] = {}
    stop = time.monotonic() + budget_seconds
    for pk in due(now, limit):
        if time.monotonic() > stop:
            break
        outcome = deliver(pk, now)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts
