"""Arbitrary values for every parameter of every model, posted to the studio: never a 500,
and never a generation made from values the model's schema refuses."""

import uuid

from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generations.models import Generation
from generations.providers.base import ParamType
from generations.providers.registry import PROVIDERS, get_provider

HTMX = {"HX-Request": "true"}
GENERATE = reverse("generations:generate")

CATALOG = [(provider_id, model, operation)
           for provider_id in PROVIDERS
           for model in get_provider(provider_id).models()
           for operation in model.operations]

nasty_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["", " ", "\x00", "\x1b[31m", "1e309", "NaN", "-0", "\uff19", "\uff11\uff12", "true", "<script>", "' OR 1=1 --"]),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.text(min_size=5000, max_size=6000, alphabet="ab"),
)


def value_for(param):
    """A plausible or hostile value for one parameter, as a browser would post it (text)."""
    plausible = {
        ParamType.ENUM: st.sampled_from([str(c) for c in param.choices] or [""]),
        ParamType.INTEGER: st.integers(min_value=int(param.min or 0) - 2, max_value=int(param.max or 10) + 2).map(str),
        ParamType.NUMBER: st.floats(min_value=(param.min or 0) - 1, max_value=(param.max or 10) + 1).map(str),
        ParamType.BOOLEAN: st.sampled_from(["on", "", "true", "false"]),
        ParamType.TAGS: st.lists(st.text(max_size=12), max_size=25).map(", ".join),
    }.get(param.type, st.text(max_size=40))
    return st.one_of(plausible, nasty_text)


@st.composite
def submissions(draw):
    provider_id, model, operation = draw(st.sampled_from(CATALOG))
    params = {p.name: draw(value_for(p)) for p in model.params_for(operation) if draw(st.booleans())}
    prompt = draw(st.one_of(st.text(max_size=200), st.just("A quiet harbour at dawn"), nasty_text))
    return provider_id, model, operation, params, prompt


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(submission=submissions())
def test_arbitrary_studio_input_never_errors_and_never_creates_from_invalid_values(owner_client, every_provider,
                                                                                    submission):
    provider_id, model, operation, params, prompt = submission
    data = {"model": f"{provider_id}:{model.id}", "operation": operation, "prompt": prompt,
            "idempotency_key": uuid.uuid4().hex, **params}
    before = Generation.objects.count()

    response = owner_client.post(GENERATE, data, headers=HTMX)  # a 500 would raise here

    assert response.status_code in (200, 422), response.status_code
    created = Generation.objects.count() - before
    # A checkbox is on when anything is posted for it: judge the other values as the schema would.
    booleans = {p.name for p in model.params if p.type == ParamType.BOOLEAN}
    _, errors = model.clean_params(operation, {k: v for k, v in params.items() if k not in booleans})
    if response.status_code == 422:
        assert created == 0
    else:
        assert created == 1
        assert not errors, f"created from invalid values: {errors}"
        made = Generation.objects.latest("id")
        assert made.params == model.clean_params(operation, made.params)[0]
