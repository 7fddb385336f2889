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
