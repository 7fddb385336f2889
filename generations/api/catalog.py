"""What the caller can use: who they are, the team's models with their parameters and prices, an estimate."""

from __future__ import annotations

from ninja import Router

from accounts.credits.services import credits_to_usd
from generations import services
from generations.api.auth import require_scope
from generations.api.problems import ApiProblem
from generations.api.schemas import Estimate, EstimateIn, Me, Model, Problem
from generations.providers.base import ModelSpec, Param, ParamType

router = Router(tags=["Account and models"])

_JSON_TYPES = {ParamType.STRING: "string", ParamType.TEXT: "string", ParamType.INTEGER: "integer",
               ParamType.NUMBER: "number", ParamType.BOOLEAN: "boolean"}


def credits(amount: int) -> dict:
    return {"credits": amount, "usd": round(credits_to_usd(amount), 4)}


def balance(membership) -> dict:
    wallet = membership.wallet
    return {"available": wallet.available, "reserved": wallet.reserved,
            "available_usd": round(credits_to_usd(wallet.available), 4)}


def param_schema(param: Param) -> dict:
    schema: dict = {"title": param.display_label}
    if param.type == ParamType.ENUM:
        schema["enum"] = list(param.choices)
    elif param.type == ParamType.TAGS:
        schema.update(type="array", items={"type": "string"})
    else:
        schema["type"] = _JSON_TYPES[param.type]
    if param.min is not None:
        schema["minimum"] = param.min
    if param.max is not None:
        schema["maximum"] = param.max
    if param.max_length is not None:
        schema["maxLength"] = param.max_length
    if param.default is not None:
        schema["default"] = param.default
    if param.help:
        schema["description"] = param.help
    return schema


def operation_entry(model: ModelSpec, operation: str) -> dict:
    params = model.params_for(operation)
    defaults, _errors = model.clean_params(operation, {})
    try:
        price = model.estimate(defaults, operation)
    except (KeyError, TypeError, ValueError, ArithmeticError):
        price = 0
    return {
        "name": operation,
        "parameters": {"type": "object", "properties": {p.name: param_schema(p) for p in params},
                       "required": [p.name for p in params if p.required], "additionalProperties": False},
        "inputs": [{"role": s.role, "kind": s.kind, "label": s.label or s.role.replace("_", " "),
                    "required": s.required, "max_count": s.max_count} for s in model.inputs_for(operation)],
        "prompt_required": model.prompt_required_for(operation),
        "estimate": credits(price),
    }


def model_entry(entry: services.CatalogEntry) -> dict:
    model = entry.model
    return {"id": entry.value, "provider": entry.provider_id, "provider_name": entry.provider_name,
            "model": model.id, "label": model.label, "kind": model.kind, "description": model.description,
            "prompt_max_length": model.prompt_max_length, "negative_prompt": model.negative_prompt,
            "operations": [operation_entry(model, op) for op in model.operations]}


def split_model(value: str) -> tuple[str, str]:
    """``provider:model`` → (provider, model); a 422 naming ``model`` when it is not that shape."""
    provider_id, sep, model_id = (value or "").partition(":")
    if not sep or not provider_id or not model_id:
        raise ApiProblem(422, "Name the model as “provider:model”, as /models lists it.",
                         errors={"model": "Expected “provider:model”, as /models lists it."})
    return provider_id, model_id


@router.get("/me", response={200: Me, 401: Problem}, summary="The token's member, team and balance")
def me(request):
    membership, token = request.membership, request.auth
    return {"email": membership.user.email, "team": membership.team.slug, "team_name": membership.team.name,
            "role": membership.role, "balance": balance(membership),
            "token": {"name": token.name, "prefix": token.prefix, "scopes": token.scopes,
                      "expires_at": token.expires_at.isoformat() if token.expires_at else None}}


@router.get("/models", response={200: list[Model], 401: Problem, 403: Problem},
            summary="The models the team can use, with parameters, input slots and prices")
def models(request):
    require_scope(request, "read")
    return [model_entry(entry) for entry in services.team_catalog(request.membership.team)]


@router.post("/estimate", response={200: Estimate, 401: Problem, 403: Problem, 422: Problem},
             summary="What a job would cost, and whether the member can afford it")
def estimate(request, payload: EstimateIn):
    require_scope(request, "read")
    provider_id, model_id = split_model(payload.model)
    entry = next((e for e in services.team_catalog(request.membership.team)
                  if e.provider_id == provider_id and e.model.id == model_id), None)
    if entry is None:
        raise ApiProblem(422, f"Your team has no model “{payload.model}”.", errors={"model": "Not one of /models."})
    operation = payload.operation or entry.model.operations[0]
    if operation not in entry.model.operations:
        raise ApiProblem(422, f"{entry.model.label} does not do {operation}; it does: "
                              f"{', '.join(entry.model.operations)}.", errors={"operation": "Not one of the model's."})
    cost = services.estimate(provider_id, model_id, operation, payload.params, team=request.membership.team)
    wallet = request.membership.wallet
    return {"model": entry.value, "operation": operation, "estimate": credits(cost),
            "balance": balance(request.membership), "affordable": cost <= wallet.available}
