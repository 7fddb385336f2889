"""A team's webhook endpoints: found only within the team (another team's is a 404), made with
a secret shown once, disabled and enabled, their deliveries re-sent."""

from __future__ import annotations

import uuid

from django.db import transaction
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import Membership
from generations.team_webhooks import delivery, outbox
from generations.team_webhooks.forms import EndpointForm
from generations.team_webhooks.models import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    new_secret,
)


class ResendRefused(Exception):
    pass


def team_endpoints(team) -> list[WebhookEndpoint]:
    return list(WebhookEndpoint.objects.filter(team=team))


def get_endpoint(membership: Membership, public_id: uuid.UUID) -> WebhookEndpoint:
    return get_object_or_404(WebhookEndpoint, team_id=membership.team_id, public_id=public_id)


def get_delivery(endpoint: WebhookEndpoint, msg_id: str) -> WebhookDelivery:
    return get_object_or_404(WebhookDelivery, endpoint=endpoint, msg_id=msg_id)


def create_endpoint(form: EndpointForm, *, membership: Membership) -> tuple[WebhookEndpoint, str]:
    """Save a valid form as a new endpoint of the membership's team; the endpoint and its secret
    (the only time the secret is in the clear outside a worker)."""
    endpoint = form.save(commit=False)
    endpoint.team = membership.team
    endpoint.created_by = membership.user
    secret = new_secret()
    endpoint.set_secret(secret)
    endpoint.save()
    return endpoint, secret


def rotate_secret(endpoint: WebhookEndpoint) -> str:
    """A new secret, at once: deliveries from now on are signed with it."""
    secret = new_secret()
    endpoint.set_secret(secret)
    endpoint.save(update_fields=["secret_encrypted", "updated"])
    return secret


def disable(endpoint: WebhookEndpoint, *, membership: Membership) -> bool:
    return delivery.disable(endpoint, f"Disabled by {membership.user.email}.", notify=False)


def enable(endpoint: WebhookEndpoint) -> bool:
    """Send to it again: its failure count starts over (what failed meanwhile stays failed; re-send it)."""
    return bool(WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=False).update(
        is_active=True, disabled_reason="", disabled_at=None, failing_since=None, consecutive_failures=0))


def resend(item: WebhookDelivery) -> WebhookDelivery:
    """Send one delivery again, with the same message id, now, whatever its state (delivered
    too: the admin asked); its retries start over. Refused while a worker is sending it."""
    now = timezone.now()
    with transaction.atomic():
        moved = (WebhookDelivery.objects.filter(pk=item.pk)
                 .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
                 .update(status=DeliveryStatus.PENDING, next_attempt_at=now, retry_step=0, claimed_until=None))
        if not moved:
            raise ResendRefused("It is being sent right now; look again in a moment.")
        outbox.wake_on_commit(item.pk)
    item.refresh_from_db()
    return item


def send_test(endpoint: WebhookEndpoint, *, membership: Membership) -> WebhookDelivery:
    return outbox.test_event(endpoint, actor=membership.user)
