"""Writing webhook deliveries: the outbox.

An event is written as one ``WebhookDelivery`` per active endpoint of the team that takes
it, in the transaction that made the event (a job's move to a final status: the engine's
``common.end``; a share page opened: ``share_viewed``). Only once that transaction commits is
a worker woken to send each one (``transaction.on_commit``, robust: a broker that refuses the
message is logged, and the beat's ``deliver_due`` finds the row within seconds). A rolled-back
move writes nothing; a repeated one writes nothing twice (``event_key`` is unique per endpoint).

Nothing here speaks HTTP: ``delivery.py`` does, in the worker.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.mail import site_url
from generations.models import Generation, Status
from generations.team_webhooks.models import (
    TEST_EVENT,
    DeliveryStatus,
    Event,
    WebhookDelivery,
    WebhookEndpoint,
)
from project import ratelimit
from project.celery import app

logger = logging.getLogger(__name__)

DELIVER_TASK = "generations.tasks.deliver_webhook"

EVENT_OF_STATUS = {
    Status.SUCCEEDED: Event.GENERATION_SUCCEEDED,
    Status.FAILED: Event.GENERATION_FAILED,
    # An expired job ended without a result too; its data says "expired".
    Status.EXPIRED: Event.GENERATION_FAILED,
    Status.CANCELLED: Event.GENERATION_CANCELLED,
}

# share.viewed: at most one per link per viewer (address and browser) in this window, and at
# most SHARE_VIEWS_PER_HOUR per link whoever views it, so a reload storm or a crawler sends a few.
SHARE_VIEW_WINDOW = 600
SHARE_VIEWS_PER_HOUR = 60


def wake(delivery_id: int, countdown: float | None = None) -> None:
    """Wake a worker to send one delivery (by task name: this module never imports the tasks)."""
    app.signature(DELIVER_TASK, args=(delivery_id,)).apply_async(countdown=countdown or None)


def wake_on_commit(delivery_id: int) -> None:
    transaction.on_commit(lambda: wake(delivery_id), robust=True)


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _endpoints(team_id: int, event: str) -> list[WebhookEndpoint]:
    # events is a JSON list; filtered in Python (a team has a handful) so SQLite and PostgreSQL agree.
    return [e for e in WebhookEndpoint.objects.filter(team_id=team_id, is_active=True).only("id", "events")
            if event in e.events]


def write(endpoints: list[WebhookEndpoint], event: str, key: str, data: dict[str, Any]) -> list[WebhookDelivery]:
    """One pending delivery per endpoint (an endpoint that has this event already is skipped),
    each woken when the caller's transaction commits."""
    payload = {"type": event, "timestamp": _iso(timezone.now()), "data": data}
    now = timezone.now()
    written = []
    for endpoint in endpoints:
        try:
            with transaction.atomic():
                delivery = WebhookDelivery.objects.create(endpoint=endpoint, event_type=event, event_key=key,
                                                          payload=payload, next_attempt_at=now)
        except IntegrityError:
            continue  # this event was written for this endpoint already
        wake_on_commit(delivery.pk)
        written.append(delivery)
    return written


def generation_data(generation: Generation) -> dict[str, Any]:
    base = site_url()
    media = [{
        "id": str(m.public_id), "kind": m.kind, "content_type": m.mime_type, "bytes": m.bytes,
        "width": m.width, "height": m.height, "duration": m.duration,
        # The API's: a script holding a token can fetch it (the page's needs a signed-in browser).
        "download_url": base + reverse("api:media_download", kwargs={"id": m.public_id}),
    } for m in generation.media.all()] if generation.status == Status.SUCCEEDED else []
    return {
        "id": str(generation.public_id),
        "status": generation.status,
        "team": {"slug": generation.team.slug, "name": generation.team.name},
        "provider": generation.provider,
        "model": generation.model,
        "operation": generation.operation,
        "kind": generation.kind,
        "cost": generation.actual_cost if generation.actual_cost is not None else None,
        "estimated_cost": generation.estimated_cost,
        "error": generation.error or None,
        "error_kind": generation.error_kind or None,
        "needs_review": generation.needs_review,
        "created_at": _iso(generation.created),
        "finished_at": _iso(generation.finished_at),
        "url": base + reverse("api:generation", kwargs={"id": generation.public_id}),
        "web_url": base + reverse("generations:detail", args=[generation.public_id]),
        "media": media,
    }


def generation_ended(pk: int) -> list[WebhookDelivery]:
    """The job ``pk`` has just reached a final status (in the caller's transaction): write its
    event for each endpoint of its team that takes it. Costs one query when the team has none."""
    generation = Generation.objects.select_related("team").filter(pk=pk).first()
    if generation is None or generation.status not in EVENT_OF_STATUS:
        return []
    event = EVENT_OF_STATUS[generation.status]
    endpoints = _endpoints(generation.team_id, event)
    if not endpoints:
        return []
    # The end's time is part of the key: a job that expired (Kiln could not know whether the
    # provider took it) and then heard from its provider after all ends a second time, and that
    # end is a second event; the same end written twice is still one.
    end = generation.finished_at.isoformat() if generation.finished_at else ""
    return write(endpoints, event, f"{event}:{generation.public_id}:{end}", generation_data(generation))


def share_viewed(share, viewer: str) -> list[WebhookDelivery]:
    """A public share page was opened by ``viewer`` (any string naming the visitor: it is hashed,
    never sent). Throttled through the cache: see SHARE_VIEW_WINDOW."""
    endpoints = _endpoints(share.team_id, Event.SHARE_VIEWED)
    if not endpoints:
        return []
    who = hashlib.sha256(viewer.encode()).hexdigest()[:24]
    if not cache.add(f"kiln:webhooks:share-viewed:{share.pk}:{who}", 1, timeout=SHARE_VIEW_WINDOW):
        return []
    if not ratelimit.hit("webhooks.share-viewed", str(share.pk), limit=SHARE_VIEWS_PER_HOUR, window=3600).allowed:
        return []
    now = timezone.now()
    data = {
        "share": {"id": str(share.public_id), "title": share.title, "view_count": share.view_count,
                  "board_id": str(share.board.public_id) if share.board_id and share.board else None},
        "generation_ids": [str(g) for g in share.generations.values_list("public_id", flat=True)],
        "viewed_at": _iso(now),
    }
    bucket = int(now.timestamp()) // SHARE_VIEW_WINDOW
    with transaction.atomic():
        return write(endpoints, Event.SHARE_VIEWED, f"{Event.SHARE_VIEWED}:{share.public_id}:{who}:{bucket}", data)


def test_event(endpoint: WebhookEndpoint, *, actor=None) -> WebhookDelivery:
    """A ``webhook.test`` delivery to one endpoint (its "Send test event" button), sent even
    to a disabled one: the admin asked for it."""
    now = timezone.now()
    payload = {"type": TEST_EVENT, "timestamp": _iso(now),
               "data": {"endpoint_id": str(endpoint.public_id), "team": endpoint.team.slug,
                        "sent_by": getattr(actor, "email", None)}}
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(endpoint=endpoint, event_type=TEST_EVENT,
                                                  event_key=f"{TEST_EVENT}:{secrets.token_hex(12)}",
                                                  payload=payload, next_attempt_at=now,
                                                  status=DeliveryStatus.PENDING)
        wake_on_commit(delivery.pk)
    return delivery
