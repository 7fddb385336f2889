"""Which provider modules exist. Classes are imported on first use."""

from functools import cache
from importlib import import_module

from generations.providers.base import ModelSpec, Provider

PROVIDERS: dict[str, str] = {
    "shark": "generations.providers.shark.SharkProvider",
    "shuttleai": "generations.providers.shuttleai.ShuttleAIProvider",
    "sealink": "generations.providers.sealink.SealinkProvider",
    "gateway": "generations.providers.gateway.GatewayProvider",
}

PROVIDER_NAMES = {
    "shark": "Shark AI",
    "shuttleai": "ShuttleAI",
    "sealink": "Sealink",
    "gateway": "OpenAI-compatible gateway",
}


class UnknownProvider(LookupError):
    pass


@cache
def get_provider(provider_id: str) -> Provider:
    try:
        dotted = PROVIDERS[provider_id]
    except KeyError:
        raise UnknownProvider(f"Unknown provider {provider_id!r}; known: {', '.join(sorted(PROVIDERS))}") from None
    module_name, class_name = dotted.rsplit(".", 1)
    return getattr(import_module(module_name), class_name)()


def provider_choices() -> list[tuple[str, str]]:
    return [(key, PROVIDER_NAMES[key]) for key in PROVIDERS]


def get_model(provider_id: str, model_id: str, model_ids: list[str] | None = None) -> ModelSpec | None:
    return get_provider(provider_id).get_model(model_id, model_ids)


def provider_name(provider_id: str) -> str:
    """A provider's name for people; its id for a provider Kiln no longer has."""
    return PROVIDER_NAMES.get(provider_id, provider_id)


@cache
def job_model(provider_id: str, model_id: str) -> ModelSpec | None:
    """The model a job was made with, a retired one too (old cards still name it); None
    when Kiln no longer has its provider."""
    try:
        provider = get_provider(provider_id)
    except UnknownProvider:
        return None
    return provider.job_model(model_id)


def model_label(provider_id: str, model_id: str) -> str:
    spec = job_model(provider_id, model_id)
    return spec.label if spec else model_id


@cache
def takes_seed(provider_id: str, model_id: str, operation: str) -> bool:
    """The model has a seed parameter for this operation: a result's seed can be reused."""
    spec = job_model(provider_id, model_id)
    return spec is not None and any(p.name == "seed" for p in spec.params_for(operation))
