"""Local, faithful stand-ins of each provider API, for the offline demo and the tests.

``PROVIDERS`` maps a provider id (its path prefix: ``/shark``...) to the module
that plays it; each module exposes ``register(app: server.ProviderApp)``.
Modules are imported lazily and skipped while they do not exist yet.
The core and its API are documented in ``generations.sandbox.server``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable

PROVIDERS: dict[str, str] = {
    "shark": "generations.sandbox.shark",
    "shuttleai": "generations.sandbox.shuttleai",
    "sealink": "generations.sandbox.sealink",
    "gateway": "generations.sandbox.gateway",
}


def load_providers(ids: Iterable[str] | None = None) -> dict[str, Callable]:
    """{provider id: register function} for the modules that exist."""
    found = {}
    for provider_id in ids or PROVIDERS:
        module_name = PROVIDERS[provider_id]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        found[provider_id] = module.register
    return found
