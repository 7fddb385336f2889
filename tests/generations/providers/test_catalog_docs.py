"""The catalog offers only models a provider documents.

``DOCUMENTED`` is what the seeds (the providers' public docs) and PROVIDERS.md
name; the catalog of every provider must lie inside it, and where the seeds are
on this machine (``../shared/seeds`` from a checkout, as DESIGN.md says) the
table itself is read back from them, so neither can drift from the docs.
A key's own model list (an operator's gateway) is the other source and is left
to the key.
"""

import re
from pathlib import Path

import pytest

from generations.providers.registry import PROVIDERS, get_provider
from generations.services import create_generation

DOCUMENTED = {
    "shark": {"alibaba/wan-2.7", "openai/gpt-image-2"},
    "shuttleai": {"sora"},
    "sealink": {"wan2.6-t2v", "wan2.6-i2v", "wan2.6-i2v-flash", "happyhorse-1.0-video-edit"},
    "gateway": {"viduq3p-540p", "viduq3p-720p", "viduq3p-1080p", "viduq3t-540p", "viduq3t-720p", "viduq3t-1080p",
                "viduq3p-1080p-offpeak", "viduq3p-mix-720p"},
}
SEEDS = {
    "shark": ("shark-ai-videos.txt", "shark-ai-images.txt"),
    "shuttleai": ("shuttleai-videos.txt",),
    "sealink": ("sealink-videos.txt",),
    "gateway": ("openai-compatible-gateway-videos.txt",),
}


def seeds_dir() -> Path | None:
    for parent in Path(__file__).resolve().parents:
        for candidate in (parent / "shared" / "seeds", parent.parent / "shared" / "seeds"):
            if candidate.is_dir():
                return candidate
    return None


def model_ids_named_in(text: str) -> set[str]:
    """Model ids a seed names: in request examples ("model": "…") and in the list of
    values its ``model`` parameter row gives (Sealink's table, the gateway's)."""
    ids = set(re.findall(r'"model":\s*"([^"]+)"', text))
    for line in text.splitlines():
        row = re.match(r"^\|\s*model\s*\|\s*string\s*\|[^|]*\|\s*([^|]+?)\s*\|", line)
        listed = re.match(r"^modelstringYesModel name(.+)$", line)
        for match in (row, listed):
            if match:
                ids |= {part.strip() for part in match[1].split(",") if re.fullmatch(r"[\w./-]+", part.strip())}
    return ids


def test_every_provider_has_its_documented_list():
    assert set(DOCUMENTED) == set(PROVIDERS)


@pytest.mark.parametrize("provider_id", list(PROVIDERS))
def test_the_catalog_offers_only_documented_models(provider_id):
    offered = {m.id for m in get_provider(provider_id).models()}
    assert offered - DOCUMENTED[provider_id] == set(), "offered but not documented"
    assert offered, "a provider with no model"


def test_the_gateway_catalog_is_the_documented_list_and_no_undocumented_mix_model():
    offered = [m.id for m in get_provider("gateway").models()]
    assert set(offered) == DOCUMENTED["gateway"]
    assert "viduq3p-mix-540p" not in offered


@pytest.mark.parametrize("provider_id", list(PROVIDERS))
def test_the_documented_lists_are_what_the_seeds_name(provider_id):
    directory = seeds_dir()
    if directory is None:
        pytest.skip("the provider seeds (../shared/seeds) are not on this machine")
    named = set()
    for name in SEEDS[provider_id]:
        named |= model_ids_named_in((directory / name).read_text())
    assert named == DOCUMENTED[provider_id]


def test_an_undocumented_model_cannot_be_submitted_without_a_key_that_lists_it(owner, team, sandbox_key):
    from accounts.models import Membership
    from generations.services import GenerationRejected

    sandbox_key(team, "gateway")
    membership = Membership.objects.get(user=owner, team=team)
    with pytest.raises(GenerationRejected) as refused:
        create_generation(membership=membership, provider_id="gateway", model_id="viduq3p-mix-540p",
                          operation="reference-to-video", prompt="@Image1 on a pier", params={})
    assert "viduq3p-mix-540p" in str(refused.value)
