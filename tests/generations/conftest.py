"""Generations fixtures: a team with a Shark key on the sandbox, its owner's membership, and
``make`` to create a queued generation through the same service as the studio."""

import pytest

from accounts.models import Membership
from generations.services import create_generation

VIDEO = "alibaba/wan-2.7"
IMAGE = "openai/gpt-image-2"


@pytest.fixture
def shark(team, sandbox, sandbox_key):
    return sandbox_key(team, "shark")


@pytest.fixture
def membership(owner, team):
    return Membership.objects.select_related("team", "user", "wallet").get(user=owner, team=team)


@pytest.fixture
def make(membership, shark):
    """make(prompt=..., model=VIDEO, operation=..., **params) -> a queued Generation."""

    def make(prompt: str = "a kiln at dawn", model: str = VIDEO, operation: str | None = None, who=None,
             inputs=(), **params):
        operation = operation or ("text-to-video" if model == VIDEO else "text-to-image")
        return create_generation(membership=who or membership, provider_id="shark", model_id=model,
                                 operation=operation, prompt=prompt, params=params, inputs=inputs)

    return make


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
