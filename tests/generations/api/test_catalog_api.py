"""/models and /estimate over real HTTP: the team's models only, priced as the studio prices them."""

from __future__ import annotations

import pytest

from generations import services
from generations.providers.registry import get_provider
from tests.generations.api.test_tokens_api import assert_problem

pytestmark = pytest.mark.django_db(transaction=True)

VIDEO = "shark:alibaba/wan-2.7"


@pytest.fixture
def keys(team, other_team, sandbox_key):
    sandbox_key(team, "shark")
    sandbox_key(other_team, "sealink")


def test_models_lists_the_team_s_models_with_parameters_inputs_and_prices(call, token_for, owner, team, keys):
    answer = call("GET", "/models", token_for(owner, team, scopes=("read",)))
    assert answer.status_code == 200, answer.text
    models = {m["id"]: m for m in answer.json()}
    assert {m["provider"] for m in models.values()} == {"shark"}  # another team's Sealink key is not ours
    expected = {e.value for e in services.team_catalog(team)}
    assert set(models) == expected

    wan = models[VIDEO]
    spec = get_provider("shark").get_model("alibaba/wan-2.7")
    operation = next(o for o in wan["operations"] if o["name"] == "text-to-video")
    properties = operation["parameters"]["properties"]
    assert set(properties) == {p.name for p in spec.params_for("text-to-video")}
    for param in spec.params_for("text-to-video"):
        if param.choices:
            assert properties[param.name]["enum"] == list(param.choices)
        if param.default is not None:
            assert properties[param.name]["default"] == param.default
    defaults, _ = spec.clean_params("text-to-video", {})
    assert operation["estimate"]["credits"] == spec.estimate(defaults, "text-to-video") > 0
    first_frame = next(o for o in wan["operations"] if o["inputs"])
    assert {"role", "kind", "required", "max_count"} <= set(first_frame["inputs"][0])


def test_an_estimate_is_the_studio_s_price_and_says_whether_the_member_can_afford_it(
        call, token_for, owner, team, keys):
    token = token_for(owner, team, scopes=("read",))
    spec = get_provider("shark").get_model("alibaba/wan-2.7")
    params = {p.name: p.choices[-1] for p in spec.params_for("text-to-video") if p.choices}
    answer = call("POST", "/estimate", token, json={"model": VIDEO, "operation": "text-to-video", "params": params})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = services.estimate("shark", "alibaba/wan-2.7", "text-to-video", params, team=team)
    assert body["estimate"]["credits"] == expected
    assert body["estimate"]["usd"] == pytest.approx(expected / 10_000)
    assert body["affordable"] is (expected <= 1_000_000)
    assert body["balance"]["available"] == 1_000_000


@pytest.mark.parametrize(("payload", "field"), [
    ({"model": "wan-2.7"}, "model"),
    ({"model": "sealink:sealink-video"}, "model"),   # another team's provider
    ({"model": VIDEO, "operation": "text-to-image"}, "operation"),
    ({"model": VIDEO, "params": "big"}, "params"),
    ({}, "model"),
])
def test_a_wrong_estimate_request_is_a_problem_naming_the_field(call, token_for, owner, team, keys, payload, field):
    body = assert_problem(call("POST", "/estimate", token_for(owner, team), json=payload), 422)
    assert body["field"] == field, body
    assert any(e["field"] == field for e in body["errors"])


def test_a_body_that_is_not_json_is_a_problem_too(call, token_for, owner, team, keys):
    answer = call("POST", "/estimate", token_for(owner, team), content=b"{not json",
                  headers={"Content-Type": "application/json"})
    assert answer.status_code in (400, 422)
    assert answer.headers["content-type"] == "application/problem+json"
