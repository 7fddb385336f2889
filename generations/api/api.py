"""The API object: authentication, error answers and the routers of ``/api/v1/``."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.renderers import JSONRenderer

from generations.api import catalog, generations
from generations.api.auth import TokenAuth
from generations.api.problems import ApiProblem, problem_response

DESCRIPTION = """Kiln's studio, gallery, credits and share links over HTTP.

Authenticate with a personal access token (made on your **API tokens** page):
`Authorization: Bearer kiln_pat_…`. A token acts as its member in one team, with the
member's role, credits and limits, within its scopes (`read`, `generate`, `share`).

Errors are `application/problem+json` (RFC 9457); `field` names the input that was wrong.
The guide with a complete example: `docs/api.md` in Kiln's repository.
"""

api = NinjaAPI(
    title="Kiln API",
    version="1",
    description=DESCRIPTION,
    auth=TokenAuth(),
    renderer=JSONRenderer(),
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
)


@api.exception_handler(ApiProblem)
def _problem(request, exc: ApiProblem):
    return problem_response(request, exc)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    return problem_response(request, ApiProblem(
        401, "Send a personal access token: “Authorization: Bearer kiln_pat_…” (make one on your API tokens "
             "page). A revoked or expired token, or one whose member left the team, is refused the same way.",
        slug="not-authenticated", headers={"WWW-Authenticate": 'Bearer realm="kiln"'}))


def _field_name(loc) -> str | None:
    # ninja's locations start with where the value came from ("body", "query", "path", "form"),
    # then the parameter's name; a body schema adds its own name ("payload") before the field.
    parts = [str(p) for p in loc[1:] if p not in ("payload",)]
    return ".".join(parts) or None


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError):
    errors: dict[str | None, str] = {}
    for error in exc.errors:
        name = _field_name(error.get("loc", ()))
        errors.setdefault(name, error.get("msg", "Invalid value."))
    detail = "; ".join(f"{k}: {v}" if k else v for k, v in errors.items())
    return problem_response(request, ApiProblem(422, detail, errors=errors))


@api.exception_handler(Http404)
def _not_found(request, exc):
    return problem_response(request, ApiProblem(404, "No such object in this team."))


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc):
    return problem_response(request, ApiProblem(403, str(exc) or "You may not do this."))


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    return problem_response(request, ApiProblem(exc.status_code, str(exc)))


api.add_router("", catalog.router)
api.add_router("", generations.router)
