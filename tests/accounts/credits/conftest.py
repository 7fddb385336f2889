"""Helpers for the credits tests: generations made directly (the ledger does not
care how a generation was created) and the members' wallets."""

import pytest

from accounts.credits.services import reserve, wallet_for
from accounts.models import Membership
from generations.models import Generation, Prompt, Status


def membership_of(user, team) -> Membership:
    return Membership.objects.select_related("wallet").get(user=user, team=team)


def wallet_of(user, team):
    wallet = wallet_for(membership_of(user, team))
    wallet.refresh_from_db()
    return wallet


def make_generation(team, user, *, estimate=1_000, status=Status.SUCCEEDED, provider="shark",
                    model="shark-image-1", reserved=True, **extra) -> Generation:
    prompt = Prompt.objects.create(team=team, author=user, text="a lighthouse at dusk")
    generation = Generation.objects.create(team=team, author=user, prompt=prompt, provider=provider, model=model,
                                           kind="image", operation="text-to-image", status=status,
                                           estimated_cost=estimate, **extra)
    if reserved:
        reserve(wallet_of(user, team), generation, estimate)
    return generation


@pytest.fixture
def gen_factory(team, teammate):
    def factory(**kwargs):
        return make_generation(team, kwargs.pop("user", teammate), **kwargs)
    return factory
