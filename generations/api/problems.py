"""Errors as ``application/problem+json`` (RFC 9457).

Every error the API answers is one JSON object: ``type`` (a stable URI naming the kind
of problem), ``title`` (its short name), ``status``, ``detail`` (what happened, for a
person), and, when one input was wrong, ``field`` (its name, dotted into nested bodies)
and ``errors`` (every wrong input: ``[{"field": …, "detail": …}]``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from django.http import HttpResponse

CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://kiln.dev/problems/"  # names, not pages: stable identifiers for clients to branch on

TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Server error",
    503: "Unavailable",
}


class ApiProblem(Exception):
    """Raise from an endpoint to answer a problem. ``errors`` maps field names to messages
    (``"__all__"`` or ``None`` for the request as a whole)."""

    def __init__(self, status: int, detail: str, *, slug: str | None = None, title: str | None = None,
                 errors: Mapping[str | None, str] | None = None, headers: Mapping[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug or _default_slug(status)
        self.title = title or TITLES.get(status, "Error")
        self.errors = dict(errors or {})
        self.headers = dict(headers or {})


def _default_slug(status: int) -> str:
    return TITLES.get(status, "error").lower().replace(" ", "-")


def problem_response(request, problem: ApiProblem) -> HttpResponse:
    body: dict = {"type": TYPE_BASE + problem.slug, "title": problem.title, "status": problem.status,
                  "detail": problem.detail, "instance": request.path}
    errors = [{"field": (None if name in (None, "__all__") else name), "detail": message}
              for name, message in problem.errors.items()]
    if errors:
        body["errors"] = errors
        named = [e["field"] for e in errors if e["field"]]
        if named:
            body["field"] = named[0]
    response = HttpResponse(json.dumps(body), status=problem.status, content_type=CONTENT_TYPE)
    for name, value in problem.headers.items():
        response[name] = value
    return response
