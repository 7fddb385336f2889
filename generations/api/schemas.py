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
# Generations and their media (generations.py)


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
    download_url: str = Field(description="GET it with your token (Range supported): the file itself.")
    thumbnail_url: str | None = Field(description="A small WebP preview (a video's poster frame); null without one.")


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


# ---------------------------------------------------------------------------
# The gallery (gallery.py)


class GenerationSummary(Schema):
    """One result as a gallery card shows it; GET /generations/{id} has everything."""

    id: str
    status: str = Field(description="queued, submitted, running, succeeded, failed, cancelled or expired.")
    model: str = Field(description="“provider:model”, as /models names it.")
    provider: str
    kind: str = Field(description="image or video")
    operation: str
    prompt: str
    created: str = Field(description="ISO 8601.")
    finished: str | None = Field(description="ISO 8601; null while it runs.")
    author: str | None = Field(description="The author's email; null for a deleted account.")
    favourite: bool = Field(description="One of the token member's favourites.")
    archived: bool
    cost: Credits = Field(description="What it cost, or while it runs (or if no charge was reported) the estimate.")
    cost_is_estimate: bool
    thumbnail_url: str | None = Field(description="The first file's preview; null until there is one.")
    media: list[MediaOut]


class GalleryPage(Schema):
    items: list[GenerationSummary] = Field(description="Newest first, up to 48.")
    next: str | None = Field(description="The cursor of the next page (send it as ``after``); null on the last page.")
    next_url: str | None = Field(description="The next page's full URL, the same filters included.")


# ---------------------------------------------------------------------------
# Share links (shares.py)


class ShareIn(Schema):
    generations: list[str] = Field(default_factory=list, description="Ids of finished results to share (at most "
                                   "50); leave empty when sharing a board.")
    board: str | None = Field(None, description="A board's id: the link shows what is on the board when opened.")
    title: str = Field("", description="Shown on the public page (at most 200 characters).")
    show_prompt: bool = Field(False, description="Show the prompts on the public page.")
    expires_in_days: int | None = Field(None, description="The link stops working this many days from now "
                                        "(1 to 3650). Give this or ``expires_at``, not both; neither: it never expires.")
    expires_at: str | None = Field(None, description="ISO 8601 with a time zone: when the link stops working.")


class SharedResult(Schema):
    id: str
    kind: str
    model: str


class Share(Schema):
    """A share link as the Share links page lists it; its token is never shown again."""

    id: str
    title: str
    state: str = Field(description="live, expired or revoked.")
    created: str
    created_by: str | None = Field(description="Who made it (email); null for a former member.")
    expires_at: str | None
    revoked_at: str | None
    revoked_by: str | None
    show_prompt: bool
    views: int
    board: str | None = Field(description="The board's id, for a board's link.")
    board_name: str | None
    generations: list[SharedResult] = Field(description="The results it shares (empty for a board's link).")


class ShareCreated(Share):
    url: str = Field(description="The public link, shown this once: Kiln keeps only a hash of its token.")


class SharePage(Schema):
    items: list[Share] = Field(description="Newest first, 50 a page.")
    page: int
    pages: int
    next_url: str | None


# ---------------------------------------------------------------------------
# Balance and usage (account.py)


class AccountBalance(Schema):
    available: Credits = Field(description="What the member can spend now.")
    reserved: Credits = Field(description="Held for their jobs still running.")
    spent_this_month: Credits = Field(description="What the member's jobs were charged this calendar month.")
    team_budget: Credits | None = Field(description="The team's monthly budget; null when it has none.")
    team_budget_remaining: Credits | None = Field(description="What the team may still commit this month (spent "
                                                  "and reserved count); null without a budget.")


class UsageTotals(Schema):
    label: str
    jobs: int
    succeeded: int
    failed: int = Field(description="Failed or expired.")
    cancelled: int
    failure_rate: float | None = Field(description="Failed out of succeeded + failed; null when none finished.")
    credits: int = Field(description="Credits charged (captures).")
    usd: float


class UsageRow(Schema):
    period: str = Field(description="YYYY-MM-DD per day, YYYY-MM per month.")
    member: str = Field(description="The author's email; empty for a removed account.")
    provider: str
    model: str
    jobs: int
    succeeded: int
    failed: int
    cancelled: int
    failure_rate: float | None
    credits: int
    usd: float


class UsageReport(Schema):
    period: str = Field(description="day or month")
    start: str
    end: str = Field(description="Inclusive.")
    member: str | None = Field(description="The membership id filtered on, if any.")
    provider: str | None
    model: str | None
    rows: list[UsageRow] = Field(description="One per period, member, provider and model with any activity.")
    total: UsageTotals
    by_period: list[UsageTotals] = Field(description="Every period of the range, empty ones included.")
    by_member: list[UsageTotals]
    by_provider: list[UsageTotals]
    by_model: list[UsageTotals]
