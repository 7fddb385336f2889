"""A team's webhook endpoints and the outbox of their deliveries.

``WebhookEndpoint``: where a team wants to hear about its jobs and share links (a URL, the
events it takes, a signing secret kept encrypted like provider keys), and whether it is
still sent to (``is_active``; a persistently failing one is disabled with a reason).

``WebhookDelivery``: one row per (endpoint, event), written in the transaction that made
the event (``outbox.py``), sent by the worker (``delivery.py``). Its ``msg_id`` is the
Standard Webhooks ``webhook-id``, the same on every attempt, so a receiver can drop a
repeat; ``event_key`` keeps one event from being written twice for one endpoint."""

from __future__ import annotations

import base64
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from generations.keys import crypto


class Event(models.TextChoices):
    GENERATION_SUCCEEDED = "generation.succeeded", "A generation succeeded"
    GENERATION_FAILED = "generation.failed", "A generation failed (or expired)"
    GENERATION_CANCELLED = "generation.cancelled", "A generation was cancelled"
    SHARE_VIEWED = "share.viewed", "A share link was opened"


# Sent by "Send test event" only; no endpoint subscribes to it.
TEST_EVENT = "webhook.test"
SECRET_PREFIX = "whsec_"  # noqa: S105 (the scheme's prefix, not a secret)
SECRET_BYTES = 32


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_msg_id() -> str:
    return "msg_" + secrets.token_hex(16)


class WebhookEndpoint(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField("URL", max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text="The event types sent to it (Event).")
    # MultiFernet ciphertext of the whsec_ secret (generations.keys.crypto); shown once, never rendered again.
    secret_encrypted = models.TextField(editable=False)
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # The first failed attempt since the last delivered one (None: the last attempt was delivered).
    failing_since = models.DateTimeField(null=True, blank=True)
    # Deliveries given up (after their day of retries) since the last one delivered.
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created", "id"]
        indexes = [models.Index(fields=["team", "is_active"], name="webhook_endpoint_team")]

    def __str__(self):
        return self.url

    def set_secret(self, secret: str) -> None:
        self.secret_encrypted = crypto.encrypt(secret)

    def get_secret(self) -> str:
        return crypto.decrypt(self.secret_encrypted)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    msg_id = models.CharField("message id", max_length=40, unique=True, default=new_msg_id, editable=False)
    event_type = models.CharField(max_length=40)
    # One event once per endpoint: "generation.succeeded:<public id>", "share.viewed:<link>:<viewer>:<window>".
    event_key = models.CharField(max_length=200)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Which step of the retry schedule the next failure takes (a re-send starts it over).
    retry_step = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A worker's lease while it sends (compare-and-swap claim; see delivery.claim).
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "event_key"], name="unique_webhook_event")]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due"),
            models.Index(fields=["endpoint", "-created"], name="webhook_delivery_log"),
        ]

    def __str__(self):
        return f"{self.msg_id} {self.event_type}"
