"""The API object: authentication, error answers and the routers of ``/api/v1/``."""

from __future__ import annotations

import functools
import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, re_path
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.renderers import JSONRenderer

from generations.api import account, catalog, gallery, generations, shares
from generations.api.auth import TokenAuth
from generations.api.problems import CONTENT_TYPE, ApiProblem, problem_response
from generations.storage_errors import MEMBER_MESSAGE, StorageUnavailable

logger = logging.getLogger(__name__)

DESCRIPTION = """Kiln's studio, gallery, credits and share links over HTTP.

Authenticate with a personal access token (made on your **API tokens** page):
`Authorization: Bearer kiln_pat_…`. A token acts as its member in one team, with the
member's role, credits and limits, within its scopes (`read`, `generate`, `share`).

Errors are `application/problem+json` (RFC 9457); `field` names the input that was wrong.
The guide with a complete example: `docs/api.md` in Kiln's repository.
"""

class KilnAPI(NinjaAPI):
    def get_openapi_schema(self, **kwargs):
        """ninja's document, with every error answer under the type it is sent as,
        ``application/problem+json``, rather than ``application/json``."""
        schema = super().get_openapi_schema(**kwargs)
        for operations in schema["paths"].values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if str(status).startswith(("4", "5")) and "application/json" in content:
                        content[CONTENT_TYPE] = content.pop("application/json")
        return schema


api = KilnAPI(
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
api.add_router("", gallery.router)
api.add_router("", shares.router)
api.add_router("", account.router)


@api.exception_handler(StorageUnavailable)
def _storage_unavailable(request, exc):
    # The operator's cause in the log; the client gets the member's words and a time to retry.
    logger.error("API: media storage unavailable (%s %s): %s", request.method, request.path, exc)
    return problem_response(request, ApiProblem(503, MEMBER_MESSAGE, slug="storage-unavailable",
                                                headers={"Retry-After": "60"}))


@api.exception_handler(Exception)
def _server_error(request, exc):
    # Logged with its traceback, as Django logs a page's 500; the answer says nothing of the code.
    logger.error("API error: %s %s", request.method, request.path, exc_info=exc)
    return problem_response(request, ApiProblem(500, "Kiln failed to answer this request; the error is in the "
                                                     "server's log. Try again, or tell the team's admin."))


def _method_problem(view):
    """ninja answers a method a path does not take with a plain 405; make it a problem."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and response.get("Content-Type", "") != CONTENT_TYPE:
            allowed = response.get("Allow", "")
            problem = ApiProblem(405, f"{request.method} is not allowed here; this path takes: {allowed}.",
                                 headers={"Allow": allowed})
            return problem_response(request, problem)
        return response

    return wrapped


@csrf_exempt
def _no_such_path(request: HttpRequest) -> HttpResponse:
    return problem_response(request, ApiProblem(404, f"There is no {request.path} in Kiln's API; the paths are "
                                                     "listed at /api/v1/docs.", slug="no-such-path"))


def urls():
    """The API's URL patterns (for ``project/urls.py``): ninja's, with problems for an unknown
    path or a method a path does not take, so every error of ``/api/v1/`` is problem+json."""
    patterns, app_name, namespace = api.urls
    wrapped = [URLPattern(p.pattern, _method_problem(p.callback), p.default_args, p.name)
               if isinstance(p, URLPattern) else p for p in patterns]
    return [*wrapped, re_path(r"^.*$", _no_such_path, name="no-such-path")], app_name, namespace
