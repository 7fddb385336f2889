"""Property tests: arbitrary values against every model's parameter schema, and
against the ``generate`` command. Never an exception other than the documented
errors; whatever is accepted satisfies the schema; nothing is created from
invalid input. (The studio form's property test lives in tests/generations/studio.)"""

import math
import re

import pytest
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generations.models import Generation
from generations.providers.base import ModelSpec, Param, ParamType
from generations.providers.registry import PROVIDERS, get_provider

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

MODELS: list[ModelSpec] = [model for provider_id in PROVIDERS for model in get_provider(provider_id).models()]
CASES = [(model, operation) for model in MODELS for operation in model.operations]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=300), st.binary(max_size=50).map(repr),
    st.sampled_from(["", " ", "1", "0", "-1", "1e309", "nan", "inf", "-inf", "0x10", "1_000", "١٢", "true",
                     "on", "\x00", "\u202e", "9" * 5000, "auto", "1024x1024"]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=5), st.dictionaries(st.text(max_size=5), scalars, max_size=3))


def raw_params(model: ModelSpec, operation: str):
    """A dict of arbitrary values, plus the schema's own choices and bounds (so some pass)."""
    edges = {}
    for p in model.params_for(operation):
        options = [v for v in (p.default, p.min, p.max, *(p.choices or ())) if v is not None]
        edges[p.name] = st.one_of(values, st.sampled_from(options)) if options else values
    names = [p.name for p in model.params_for(operation)]
    return st.fixed_dictionaries({}, optional={**edges, **{f"junk_{i}": values for i in range(2)}}) if names else \
        st.dictionaries(st.text(max_size=10), values, max_size=3)


def satisfies(param: Param, value) -> bool:
    match param.type:
        case ParamType.STRING | ParamType.TEXT:
            return (isinstance(value, str) and not CONTROL.search(value)
                    and (param.max_length is None or len(value) <= param.max_length))
        case ParamType.INTEGER:
            return (isinstance(value, int) and not isinstance(value, bool)
                    and (param.min is None or value >= param.min) and (param.max is None or value <= param.max))
        case ParamType.NUMBER:
            return (isinstance(value, float | int) and not isinstance(value, bool) and math.isfinite(value)
                    and (param.min is None or value >= param.min) and (param.max is None or value <= param.max))
        case ParamType.BOOLEAN:
            return isinstance(value, bool)
        case ParamType.ENUM:
            return value in param.choices
        case ParamType.TAGS:
            return (isinstance(value, list) and all(isinstance(t, str) and len(t) <= 50 and not CONTROL.search(t)
                                                     for t in value)
                    and (param.max is None or len(value) <= param.max))
    return False


@pytest.mark.parametrize(("model", "operation"), CASES, ids=[f"{m.provider}:{m.id}:{op}" for m, op in CASES])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_schema_cleans_arbitrary_values_into_valid_ones_or_clear_errors(model, operation, data):
    raw = data.draw(raw_params(model, operation))
    cleaned, errors = model.clean_params(operation, raw)
    params = {p.name: p for p in model.params_for(operation)}
    assert set(cleaned) <= set(params)            # unknown names are dropped
    assert set(errors) <= set(params)
    assert not set(cleaned) & set(errors)
    for message in errors.values():
        assert isinstance(message, str) and 0 < len(message) < 300
    for name, value in cleaned.items():
        assert satisfies(params[name], value), (name, value)
    for p in params.values():
        if p.required and p.name not in errors:
            assert p.name in cleaned
    if not errors:
        assert model.estimate(cleaned, operation) >= 0  # a valid set can always be priced


@pytest.fixture
def shark(sandbox_key, team):
    return sandbox_key(team, "shark")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.lists(st.tuples(st.sampled_from(["n", "size", "quality", "output_format", "timeout", "junk"]),
                                 st.text(max_size=40)), max_size=4),
       prompt=st.text(max_size=300))
def test_the_generate_command_creates_only_what_the_schema_accepts(owner, team, shark, params, prompt):
    model = get_provider("shark").get_model("openai/gpt-image-2")
    before = Generation.objects.count()
    # "--prompt=…" as one argument: a prompt such as "-:" given as its own argument is an
    # option to argparse ("expected one argument"), as it is to any shell command.
    args = ["--team", "acme", "--user", "owner@acme.test", "--model", "openai/gpt-image-2", f"--prompt={prompt}"]
    for name, value in params:
        args += ["--param", f"{name}={value}"]
    try:
        call_command("generate", *args)
    except CommandError as exc:
        assert exc.returncode == 2
        assert str(exc).strip()
        assert Generation.objects.count() == before
        return
    generation = Generation.objects.latest("pk")
    assert Generation.objects.count() == before + 1
    cleaned, errors = model.clean_params("text-to-image", generation.params)
    assert errors == {} and cleaned == generation.params
    assert generation.prompt.text == prompt.strip() and not CONTROL.search(prompt)
