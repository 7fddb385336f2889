"""Every request body Kiln sends carries each parameter in the JSON type its provider documents.

The types below are read from the seeds (``/work/shared/seeds``) and PROVIDERS.md;
every model of every provider, every operation and every choice of every enum
is submitted to the sandbox over real HTTP, and the body the sandbox received is
checked field by field (nested objects too). A field the docs do not name fails
the test as well: it would be sent blind.
"""

import io

import pytest
from PIL import Image

from generations.providers.base import Credentials, Job, JobInput, ParamType
from generations.providers.registry import PROVIDERS, get_provider
from generations.sandbox.media import video_bytes

STRING, INTEGER, BOOLEAN, ARRAY, OBJECT = "string", "integer", "boolean", "array", "object"

# (provider, endpoint) -> field -> documented JSON type; nested objects as dicts, arrays of
# objects as a one-item list of their fields.
DOCUMENTED = {
    # shark-ai-videos.txt: model, prompt, duration *integer*, resolution, aspect_ratio,
    # frame_images (array of {image_url, frame_type}), seed integer, timeout integer;
    # PROVIDERS.md: negative_prompt.
    ("shark", "/api/v1/videos"): {
        "model": STRING, "prompt": STRING, "duration": INTEGER, "resolution": STRING, "aspect_ratio": STRING,
        "frame_images": [{"image_url": STRING, "frame_type": STRING}], "seed": INTEGER, "timeout": INTEGER,
        "negative_prompt": STRING,
    },
    # shark-ai-images.txt: model, prompt, async boolean, timeout integer; PROVIDERS.md for
    # gpt-image-2: n 1-4, size, quality, output_format (examples: "n": 1, "size": "1024x1024").
    ("shark", "/api/v1/images/generations"): {
        "model": STRING, "prompt": STRING, "async": BOOLEAN, "timeout": INTEGER, "n": INTEGER, "size": STRING,
        "quality": STRING, "output_format": STRING,
    },
    # shuttleai-videos.txt: prompt string, model string, width/height/n_seconds integer.
    ("shuttleai", "/jobs"): {
        "prompt": STRING, "model": STRING, "width": INTEGER, "height": INTEGER, "n_seconds": INTEGER,
    },
    # sealink-videos.txt, POST /v1/video/generations; ``variables`` (with template_id) from PROVIDERS.md.
    ("sealink", "/v1/video/generations"): {
        "model": STRING, "prompt": STRING, "template_id": STRING, "variables": OBJECT, "image": STRING,
        "image_url": STRING, "n": INTEGER, "size": STRING, "duration": INTEGER, "fps": INTEGER,
        "negative_prompt": STRING, "seed": INTEGER, "webhook_url": STRING, "tags": ARRAY,
    },
    # sealink-videos.txt, POST /v1/video/edits.
    ("sealink", "/v1/video/edits"): {
        "model": STRING, "video": STRING, "prompt": STRING, "resolution": STRING, "duration": INTEGER,
        "seed": INTEGER,
    },
    # openai-compatible-gateway-videos.txt. Its table calls ``duration`` a string "1 16", but every
    # request example the page gives sends an integer ("duration": 5, "duration": 6), as do the
    # new-api Vidu relays: the examples are what the gateway is shown accepting.
    ("gateway", "/v1/video/generations"): {
        "model": STRING, "prompt": STRING, "image": STRING, "last_image": STRING,
        "reference_image_urls": ARRAY, "aspect_ratio": STRING, "duration": INTEGER,
        "extra_body": {"audio": BOOLEAN, "seed": INTEGER, "bgm": BOOLEAN},
    },
}

ENDPOINTS = {provider: [path for p, path in DOCUMENTED if p == provider] for provider, _ in DOCUMENTED}


def json_type(value) -> str:
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return STRING
    if isinstance(value, list):
        return ARRAY
    if isinstance(value, dict):
        return OBJECT
    return type(value).__name__


def type_problems(body: dict, documented: dict, where: str = "") -> list[str]:
    problems = []
    for name, value in body.items():
        path = f"{where}{name}"
        if name not in documented:
            problems.append(f"{path}: not a documented field")
            continue
        expected = documented[name]
        if isinstance(expected, dict):
            if not isinstance(value, dict):
                problems.append(f"{path}: {json_type(value)} where the docs have an object")
            else:
                problems += type_problems(value, expected, f"{path}.")
        elif isinstance(expected, list):
            if not isinstance(value, list):
                problems.append(f"{path}: {json_type(value)} where the docs have an array")
            for index, item in enumerate(value if isinstance(value, list) else []):
                problems += (type_problems(item, expected[0], f"{path}[{index}].") if isinstance(item, dict)
                             else [f"{path}[{index}]: {json_type(item)} where the docs have an object"])
        elif json_type(value) != expected:
            problems.append(f"{path}: sent {value!r} ({json_type(value)}), the docs say {expected}")
    return problems


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), "teal").save(out, "PNG")
    return out.getvalue()


def raw_value(param, round_: int):
    """A value for every parameter; enums walk through all their choices over the rounds."""
    if param.name == "template_id":
        return "tpl_sunset"
    if param.name == "variables":
        return "place=Lisbon"
    match param.type:
        case ParamType.ENUM:
            return param.choices[round_ % len(param.choices)]
        case ParamType.INTEGER:
            low = int(param.min) if param.min is not None else 1
            high = int(param.max) if param.max is not None else 9
            return str(low if round_ % 2 else min(high, max(low, 5)))
        case ParamType.NUMBER:
            return "1.5"
        case ParamType.BOOLEAN:
            return "true" if round_ % 2 == 0 else "false"
        case ParamType.TAGS:
            return "beach, sunset"
    return "a value"


def inputs_for(model, operation):
    items = []
    for slot in model.inputs_for(operation):
        if slot.kind == "video":
            items.append(JobInput(slot.role, "video/mp4", video_bytes(160, 90, "edit me", seconds=0.5)))
        else:
            items += [JobInput(slot.role, "image/png", png()) for _ in range(min(slot.max_count, 2))]
    return tuple(items)


def cases():
    for provider_id in PROVIDERS:
        for model in get_provider(provider_id).models():
            for operation in model.operations:
                rounds = max([len(p.choices) for p in model.params_for(operation)] + [2])
                for round_ in range(rounds):
                    yield pytest.param(provider_id, model.id, operation, round_,
                                       id=f"{provider_id}:{model.id}:{operation}:{round_}")


def test_every_provider_and_model_is_covered():
    """The table above names an endpoint for every provider the registry knows."""
    assert set(PROVIDERS) == set(ENDPOINTS)


@pytest.mark.parametrize("provider_id, model_id, operation, round_", list(cases()))
def test_the_request_body_has_the_documented_json_types(sandbox, provider_id, model_id, operation, round_):
    provider = get_provider(provider_id)
    model = provider.get_model(model_id)
    raw = {p.name: raw_value(p, round_) for p in model.params_for(operation)}
    params, errors = model.clean_params(operation, raw)
    assert errors == {}
    job = Job(generation_id="g-types", model=model, operation=operation, prompt="A lighthouse at dusk",
              negative_prompt="blur" if model.negative_prompt else "", params=params,
              inputs=inputs_for(model, operation), webhook_url="https://kiln.example/hooks/sealink/t0k3n"
              if provider.supports_webhooks else None)
    creds = Credentials(api_key="sk-test-types-0000", base_url=sandbox.base_url(provider_id))
    submitted = provider.submit(job, creds)
    assert submitted.job_id  # the sandbox took the body, too

    sent = [r for r in sandbox.requests() if r["method"] == "POST" and r["json"] is not None]
    assert len(sent) == 1, sent
    (request,) = sent
    endpoint = next(path for path in ENDPOINTS[provider_id] if request["path"].endswith(path))
    body = request["json"]
    assert type_problems(body, DOCUMENTED[(provider_id, endpoint)]) == []
    # Every parameter of the form reached the provider (under its API name, or inside extra_body).
    flat = {**body, **(body.get("extra_body") or {})}
    for param in model.params_for(operation):
        if param.name in params and param.name != "variables":
            assert (param.api_name or param.name) in flat, (param.name, body)
