"""The gateway's own model list: where an OpenAI-compatible gateway answers ``GET /v1/models``,
the studio offers the video models it lists (cached on the key, refreshed by an admin),
with the documented Vidu schema where the id follows Vidu's naming, instead of a fixed list."""

import pytest

from generations.keys import services as keys
from generations.providers.gateway import DEFAULT_MODEL_IDS, video_model_ids
from generations.services import team_catalog


def test_video_models_are_told_from_chat_ones_by_their_endpoint_types_or_vidu_names():
    body = {"object": "list", "data": [
        {"id": "viduq3p-720p", "supported_endpoint_types": ["openai-video"]},
        {"id": "kling-v2-master", "supported_endpoint_types": ["openai-video"]},   # video by its type
        {"id": "gpt-4o-mini", "supported_endpoint_types": ["openai"]},
        {"id": "viduq3t-540p"},                                                      # no types: Vidu's naming
        {"id": "whisper-1"},                                                         # no types, not Vidu
        "viduq3p-1080p-offpeak",                                                     # a bare id
        {"id": "viduq3p-720p", "supported_endpoint_types": ["openai-video"]},       # listed twice
        {"object": "model"},                                                         # no id at all
    ]}
    assert video_model_ids(body) == (["viduq3p-720p", "kling-v2-master", "viduq3t-540p", "viduq3p-1080p-offpeak"], 8)
    with pytest.raises(ValueError):
        video_model_ids({"error": "nope"})


def offered(team):
    return {entry.model.id: entry for entry in team_catalog(team) if entry.provider_id == "gateway"}


def test_the_studio_offers_what_the_gateway_lists_once_fetched(sandbox, sandbox_key, team):
    key = sandbox_key(team, "gateway")
    assert set(offered(team)) == set(DEFAULT_MODEL_IDS)  # not fetched yet: the docs' models
    keys.refresh_models(key)
    key.refresh_from_db()
    assert key.models_listed_at is not None
    models = offered(team)
    assert "viduq3t-720p-offpeak" in models                            # listed, not in the docs
    assert "viduq3t-1080p" not in models and "viduq3p-1080p-offpeak" not in models  # in the docs, not listed
    assert "gpt-4o-mini" not in models and "text-embedding-3-small" not in models   # not video
    # The documented Vidu schema where the id matches: Vidu Q3 Turbo, its parameters and price.
    turbo = models["viduq3t-720p-offpeak"].model
    assert turbo.label == "Vidu Q3 Turbo 720p (off-peak)"
    assert {p.name for p in turbo.params} == {"aspect_ratio", "duration", "audio", "bgm", "seed"}
    assert turbo.estimate({"duration": 4}, "text-to-video") == round(0.05 * 0.5 * 4 * 10_000)
    assert models["viduq3p-mix-720p"].model.operations == ("reference-to-video",)


def test_a_refresh_picks_up_what_the_operator_changed(sandbox, sandbox_key, team):
    key = sandbox_key(team, "gateway")
    keys.refresh_models(key)
    sandbox.control(gateway_models=["viduq3p-540p", "viduq3t-1080p", "gpt-4o"])
    keys.refresh_models(key)
    assert set(offered(team)) == {"viduq3p-540p", "viduq3t-1080p"}


def test_models_listed_by_hand_win_over_the_gateways_list(sandbox, sandbox_key, team):
    key = sandbox_key(team, "gateway", models_override="viduq3p-720p")
    keys.refresh_models(key)
    assert set(offered(team)) == {"viduq3p-720p"}


def test_a_gateway_without_the_route_or_without_video_models_keeps_the_docs_models(sandbox, sandbox_key, team):
    key = sandbox_key(team, "gateway")
    sandbox.control(gateway_models=["gpt-4o", "claude-sonnet"])
    check = keys.refresh_models(key)
    assert "none of them a video model Kiln knows" in check.summary
    assert set(offered(team)) == set(DEFAULT_MODEL_IDS)
    sandbox.control(gateway_models_route=False)
    check = keys.refresh_models(key)
    assert check.status_code == 404
    assert set(offered(team)) == set(DEFAULT_MODEL_IDS)


def test_other_providers_have_no_model_list_to_refresh(sandbox, sandbox_key, team, owner_client):
    key = sandbox_key(team, "shark")
    response = owner_client.post(f"/accounts/team/keys/{key.public_id}/models/", follow=True)
    assert "Shark AI has no model list to fetch" in response.content.decode()
    assert sandbox.requests() == []


def test_a_job_on_a_listed_model_runs_through_the_engine(sandbox, sandbox_key, team, owner):
    from accounts.credits import services as credits
    from generations.engine.submit import submit
    from generations.services import create_generation

    key = sandbox_key(team, "gateway")
    keys.refresh_models(key)
    membership = owner.memberships.get(team=team)
    credits.grant(credits.wallet_for(membership), 1_000_000, reason="test")
    generation = create_generation(membership=membership, provider_id="gateway", model_id="viduq3t-720p-offpeak",
                                   operation="text-to-video", prompt="A kiln at dawn", params={"duration": 2})
    assert submit(generation.pk) == "submitted"
    assert sandbox.requests()[-1]["json"]["model"] == "viduq3t-720p-offpeak"


def test_the_studio_estimates_a_listed_model_at_its_vidu_price(sandbox, sandbox_key, team, owner_client):
    keys.refresh_models(sandbox_key(team, "gateway"))
    response = owner_client.get("/studio/estimate/", {"model": "gateway:viduq3t-720p-offpeak",
                                                      "operation": "text-to-video", "duration": "4"})
    assert response.status_code == 200
    assert f"{round(0.05 * 0.5 * 4 * 10_000):,} credits" in response.content.decode()
