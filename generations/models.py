"""Provider keys, prompts, generations, their media, and share links.

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

from generations.crypto import decrypt, encrypt
from generations.providers.redaction import MASK_HINT_MIN_LENGTH


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


def last_four(raw: str) -> str:
    """What of a clear key may be kept and shown beside its bullets: its last four
    characters, or nothing for a short key."""
    return raw[-4:] if len(raw) >= MASK_HINT_MIN_LENGTH else ""


class ProviderKey(models.Model):
    """A team's API key for one provider. The key is encrypted at rest and
    write-only: only its last four characters are ever displayed (none of a short key)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="provider_keys")
    provider = models.CharField(max_length=40)
    label = models.CharField(max_length=100)
    api_key_encrypted = models.TextField(editable=False)
    api_key_last4 = models.CharField(max_length=4, editable=False)  # empty for a short key (last_four)
    base_url = models.URLField(blank=True, help_text="Leave empty for the provider's own API.")
    # Gateways expose different models: an operator may list them (one id per line).
    models_override = models.TextField(blank=True, help_text="Model ids this key serves, one per line; empty for the defaults.")
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(default=timezone.now)
    last_used = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["provider", "label"]
        constraints = [models.UniqueConstraint(fields=["team", "provider", "label"], name="unique_key_label")]

    def __str__(self):
        return f"{self.label} ({self.provider}, {self.masked})"

    def set_api_key(self, raw: str) -> None:
        raw = raw.strip()
        self.api_key_encrypted = encrypt(raw)
        self.api_key_last4 = last_four(raw)

    def get_api_key(self) -> str:
        """The clear key, for the provider only. Raises if no configured key decrypts it."""
        return decrypt(self.api_key_encrypted)

    @property
    def masked(self) -> str:
        return f"••••{self.api_key_last4}" if self.api_key_last4 else "••••••••"

    @property
    def model_ids(self) -> list[str]:
        return [line.strip() for line in self.models_override.splitlines() if line.strip()]


class Prompt(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="prompts")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="prompts")
    text = models.TextField(blank=True)
    negative_prompt = models.TextField(blank=True)
    created = models.DateTimeField(default=timezone.now)

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
    provider_key = models.ForeignKey(ProviderKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="generations")

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    provider_job_id = models.CharField(max_length=200, blank=True)
    provider_status = models.CharField(max_length=60, blank=True)
    progress = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
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
            # Provider callbacks find their generation by token (generations.views.webhooks).
            models.Index(fields=["webhook_token"], name="gen_webhook_token", condition=~Q(webhook_token="")),
            # The gallery's keyset (generations.gallery): all, and one member's, unarchived.
            models.Index(fields=["team", "-created", "-public_id"], name="gen_gallery", condition=Q(archived=False)),
            models.Index(fields=["team", "author", "-created", "-public_id"], name="gen_gallery_author",
                         condition=Q(archived=False)),
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


class ShareLink(models.Model):
    """A public link to one or more generations. Only the SHA-256 of the token
    is stored; the token itself is shown once, when the link is created."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="share_links")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    title = models.CharField(max_length=200, blank=True)
    generations = models.ManyToManyField(Generation, related_name="share_links")
    show_prompt = models.BooleanField(default=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    view_count = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["team", "-created"], name="share_team_created")]

    def __str__(self):
        return self.title or str(self.public_id)

    def is_live(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @property
    def state(self) -> str:
        """"live", "expired" or "revoked" (revoked wins over expired)."""
        if self.revoked_at is not None:
            return "revoked"
        return "live" if self.is_live() else "expired"
