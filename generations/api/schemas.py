"""The API's inputs and answers, as ninja schemas (pydantic): the OpenAPI schema is made from these."""

from __future__ import annotations

from typing import Any

from ninja import Schema
from pydantic import Field


class Problem(Schema):
    """An error (RFC 9457, ``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    field: str | None = Field(None, description="The input that was wrong, when one was.")
    errors: list[dict[str, Any]] | None = Field(None, description="Every wrong input: {field, detail}.")


class Credits(Schema):
    credits: int = Field(description="Kiln credits: 10,000 = 1 USD.")
    usd: float


class Balance(Schema):
    available: int = Field(description="Credits the member can spend now.")
    reserved: int = Field(description="Credits held for jobs still running.")
    available_usd: float


class TokenInfo(Schema):
    name: str
    prefix: str
    scopes: list[str]
    expires_at: str | None


class Me(Schema):
    email: str
    team: str = Field(description="The team's slug.")
    team_name: str
    role: str
    balance: Balance
    token: TokenInfo


class InputSlot(Schema):
    role: str = Field(description="The name to send the file under (``inputs`` of a create).")
    kind: str = Field(description="image or video")
    label: str
    required: bool
    max_count: int


class Operation(Schema):
    name: str = Field(description="text-to-image, image-to-video, …")
    parameters: dict[str, Any] = Field(description="A JSON Schema object of the parameters, with defaults.")
    inputs: list[InputSlot]
    prompt_required: bool
    estimate: Credits = Field(description="The price of a job with every parameter at its default.")


class Model(Schema):
    id: str = Field(description="“provider:model”, what a create names in ``model``.")
    provider: str
    provider_name: str
    model: str
    label: str
    kind: str
    description: str
    prompt_max_length: int
    negative_prompt: bool
    operations: list[Operation]


class EstimateIn(Schema):
    model: str = Field(description="“provider:model” from /models.")
    operation: str | None = Field(None, description="Default: the model's first operation.")
    params: dict[str, Any] = Field(default_factory=dict)


class Estimate(Schema):
    model: str
    operation: str
    estimate: Credits
    balance: Balance
    affordable: bool


# ---------------------------------------------------------------------------
# Generations and their media


class GenerationIn(Schema):
    """What to make: the same request as the studio's form.

    As JSON, or as ``multipart/form-data`` to upload input files: then the same object goes
    in a ``payload`` part (or its fields as form fields, ``params`` as JSON text), and each
    file in a part named by its input role (``first_frame``, ``reference``, …)."""

    model: str = Field(description="“provider:model” from /models.")
    operation: str | None = Field(None, description="One of the model's operations; default: its first.")
    prompt: str = ""
    negative_prompt: str = Field("", description="Only for models that take one.")
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="The operation's parameters (/models); those left out take their defaults.")
    inputs: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description="Input files from the team's gallery, by role: each a media id, or the address of a "
                    "media item (its gallery or API download URL). Kiln never fetches a URL; it only "
                    "reads the media id in it, within your team.")
    parent: str | None = Field(None, description="The id of a generation of the team this one remixes.")


class MediaOut(Schema):
    """One result file."""

    id: str
    kind: str = Field(description="image or video")
    mime_type: str
    bytes: int
    width: int | None
    height: int | None
    duration: float | None = Field(description="Seconds, for a video.")
    download_url: str = Field(description="The file (``Range`` supported), with this API's token.")
    thumbnail_url: str | None = Field(description="A small WebP still (a video's poster frame), when one was made.")


class Timing(Schema):
    created: str
    submitted: str | None
    started: str | None
    finished: str | None
    elapsed_seconds: float = Field(description="From creation to the end, or to now while it runs.")


class Cost(Schema):
    estimated: Credits = Field(description="Reserved from the member's wallet when the job was created.")
    charged: Credits | None = Field(description="What was captured on success; null until then.")
    settlement: str = Field(description="held (reserved, awaiting a verdict), captured, released (refunded) or none.")


class Lineage(Schema):
    parent: str | None = Field(description="The generation this one was made from.")
    relation: str | None = Field(description="How: remix or retry.")
    children: list[str] = Field(description="Generations made from this one.")
    batch: str | None = Field(description="The compare batch it belongs to: one prompt sent to several models.")


class GenerationOut(Schema):
    """A generation: one job at one provider, and its results."""

    id: str
    url: str = Field(description="This generation in the API.")
    web_url: str = Field(description="Its page in Kiln's gallery.")
    status: str = Field(description="queued, submitted, running, downloading, then succeeded, failed, cancelled or "
                                    "expired (final).")
    progress: int | None = Field(description="The provider's percentage, where it reports one.")
    model: str = Field(description="“provider:model”.")
    model_label: str
    operation: str
    kind: str
    prompt: str
    negative_prompt: str
    params: dict[str, Any]
    seed: int | None = Field(description="The seed used, when known (reported by the provider, or asked for).")
    author: str | None = Field(description="The e-mail of the member who made it.")
    favourite: bool = Field(description="One of this member's favourites.")
    archived: bool
    timing: Timing
    cost: Cost
    error: str | None = Field(description="Why it failed, in the provider's words (secrets removed).")
    error_kind: str | None = Field(description="input or moderation when the request itself was at fault.")
    needs_edit: bool = Field(description="Failed because of what it asked: retrying it unchanged is refused; "
                                         "send an edited create instead.")
    needs_review: bool = Field(description="Its credits are held until a team admin settles them.")
    lineage: Lineage
    media: list[MediaOut]


class CancelOut(Schema):
    cancelled: bool = Field(description="Whether it is cancelled now.")
    detail: str = Field(description="What happened, in words (the provider's answer when it was asked).")
    generation: GenerationOut
