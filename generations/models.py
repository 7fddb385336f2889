"""Prompts, generations and their media (provider keys and share links live in their rooms).

A ``Generation`` is one job at one provider. The database is the source of
truth for every job: its status, which provider job it is, and when it is
next due to be polled (``next_poll_at``). Status changes are compare-and-swap
updates (see ``generations.engine``) so two workers can never both move a job.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Kind(models.TextChoices):
    IMAGE = "image", "Image"
    VIDEO = "video", "Video"


class Operation(models.TextChoices):
    TEXT_TO_IMAGE = "text-to-image", "Text to image"
    IMAGE_EDIT = "image-edit", "Image edit"
    TEXT_TO_VIDEO = "text-to-video", "Text to video"
    IMAGE_TO_VIDEO = "image-to-video", "Image to video"
    FIRST_LAST_FRAME = "first-last-frame", "First and last frame"
    REFERENCE_TO_VIDEO = "reference-to-video", "Reference images to video"
    TEMPLATE_TO_VIDEO = "template-to-video", "Prompt template to video"
    VIDEO_EDIT = "video-edit", "Video edit"


class Prompt(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="prompts")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="prompts")
    text = models.TextField(blank=True)
    negative_prompt = models.TextField(blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        # The studio's prompt history reads a team's prompts newest first (generations.studio.services).
        indexes = [models.Index(fields=["team", "-created", "-id"], name="prompt_team_created")]

    def __str__(self):
        return self.text[:60]


class Status(models.TextChoices):
    QUEUED = "queued", "Queued"
    SUBMITTED = "submitted", "Submitted"
    RUNNING = "running", "Running"
    DOWNLOADING = "downloading", "Saving results"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.EXPIRED})
IN_FLIGHT = frozenset({Status.SUBMITTED, Status.RUNNING})


class ErrorKind(models.TextChoices):
    """Why a failed job failed, where the engine could tell it was what was asked: the
    same request would fail again, so it is edited in the studio, never re-sent as it is."""

    INPUT = "input", "The request"               # an unknown template, a missing variable, a refused parameter
    MODERATION = "moderation", "Content moderation"


NEEDS_EDIT = frozenset({ErrorKind.INPUT, ErrorKind.MODERATION})


class Batch(models.Model):
    """One prompt sent to several models at once, shown side by side."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="batches")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"Batch {self.public_id}"


class Generation(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="generations")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="generations")
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="generations")
    provider = models.CharField(max_length=40)
    model = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    operation = models.CharField(max_length=30, choices=Operation.choices)
    params = models.JSONField(default=dict, blank=True)
    provider_key = models.ForeignKey("generations.ProviderKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="generations")
    # Why the job left the key it started with, when it did (a refused key, a base URL with no
    # such route): one line per move, shown on the job.
    key_note = models.TextField(blank=True)

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    provider_job_id = models.CharField(max_length=200, blank=True)
    provider_status = models.CharField(max_length=60, blank=True)
    progress = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    # Recorded with ``error`` where the provider's answer says the request itself was at fault.
    error_kind = models.CharField(max_length=20, choices=ErrorKind.choices, blank=True)
    # Set when our deadline passed without a provider verdict: the provider may
    # still bill, so the reservation stays until an admin resolves it.
    needs_review = models.BooleanField(default=False, db_index=True)

    created = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When the submit task claimed the row; a row left "submitting" with no job
    # id after a crash is never re-submitted (see engine.submit).
    claimed_at = models.DateTimeField(null=True, blank=True)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    poll_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    deadline = models.DateTimeField(null=True, blank=True)
    output_urls = models.JSONField(default=list, blank=True)
    raw_payload = models.JSONField(null=True, blank=True)
    webhook_token = models.CharField(max_length=64, blank=True)

    estimated_cost = models.BigIntegerField(default=0)
    actual_cost = models.BigIntegerField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001 (NULL: unique only when set)

    # Lineage.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    parent_relation = models.CharField(max_length=20, blank=True)  # remix, retry, edit-source
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="generations")
    archived = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(fields=["team", "-created", "-id"], name="gen_team_created"),
            models.Index(fields=["next_poll_at"], name="gen_due", condition=Q(status__in=["submitted", "running"])),
            # Provider callbacks find their generation by token (generations.webhooks).
            models.Index(fields=["webhook_token"], name="gen_webhook_token", condition=~Q(webhook_token="")),
            # The gallery's keyset (generations.gallery.queries): all, and one member's, unarchived.
            models.Index(fields=["team", "-created", "-public_id"], name="gen_gallery", condition=Q(archived=False)),
            models.Index(fields=["team", "author", "-created", "-public_id"], name="gen_gallery_author",
                         condition=Q(archived=False)),
            # A model's last successes in a team, for a running card's expected time
            # (generations.gallery.queries.typical_durations).
            models.Index(fields=["team", "provider", "model", "-created"], name="gen_model_history",
                         condition=Q(status="succeeded")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["author", "idempotency_key"], condition=Q(idempotency_key__isnull=False),
                                    name="unique_generation_idempotency_key"),
        ]

    def __str__(self):
        return f"{self.model} · {self.public_id}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def needs_edit(self) -> bool:
        """Failed because of what it asked (an unknown template, a missing variable, moderation):
        "Edit and retry" opens it in the studio; a plain retry would fail and reserve credits again."""
        return self.status == Status.FAILED and self.error_kind in NEEDS_EDIT


class InputRole(models.TextChoices):
    FIRST_FRAME = "first_frame", "First frame"
    LAST_FRAME = "last_frame", "Last frame"
    REFERENCE = "reference", "Reference image"
    SOURCE_VIDEO = "source_video", "Source video"


def input_upload_to(instance, filename):
    ext = filename.rsplit(".", 1)[-1] if "." in filename else "bin"
    return f"inputs/{instance.generation.team.public_id}/{uuid.uuid4().hex}.{ext}"


class InputMedia(models.Model):
    """A file a generation was made from: an upload, or a copy of gallery media."""

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="inputs")
    role = models.CharField(max_length=20, choices=InputRole.choices)
    position = models.PositiveSmallIntegerField(default=0)
    file = models.FileField(upload_to=input_upload_to, max_length=300)
    mime_type = models.CharField(max_length=50)
    bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    source_media = models.ForeignKey("Media", null=True, blank=True, on_delete=models.SET_NULL, related_name="used_as_input")

    class Meta:
        ordering = ["role", "position"]

    def __str__(self):
        return f"{self.role} of {self.generation_id}"


def media_upload_to(instance, filename):
    # Server-chosen names only: nothing from the provider reaches the path.
    ext = filename.rsplit(".", 1)[-1]
    return f"media/{instance.generation.team.public_id}/{instance.generation.public_id}/{instance.position}.{ext}"


class Media(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="media")
    position = models.PositiveSmallIntegerField(default=0)
    file = models.FileField(upload_to=media_upload_to, max_length=300)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    mime_type = models.CharField(max_length=50)
    bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True)
    thumbnail = models.FileField(upload_to=media_upload_to, max_length=300, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["generation", "position"], name="unique_media_position")]

    def __str__(self):
        return f"{self.generation_id}#{self.position}"


class Favourite(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="favourites")
    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="favourites")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "generation"], name="unique_favourite")]

    def __str__(self):
        return f"{self.user_id} ♥ {self.generation_id}"


# The models of generations' rooms: imported here so Django registers them with this app.
from generations.boards.models import Board, BoardItem  # noqa: E402, F401
from generations.keys.models import ProviderKey  # noqa: E402, F401
from generations.prompt_templates.models import PromptTemplate, TemplateVariable  # noqa: E402, F401
from generations.share.models import ShareLink  # noqa: E402, F401
from generations.team_webhooks.models import WebhookDelivery, WebhookEndpoint  # noqa: E402, F401
