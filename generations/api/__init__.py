"""Kiln's JSON API, ``/api/v1/``: the studio, the gallery, credits and share links for scripts.

Built on django-ninja (``api.py``): each endpoint declares its input and answer as
schemas (``schemas.py``), from which the OpenAPI 3.1 schema (``/api/v1/openapi.json``)
and the interactive docs (``/api/v1/docs``) are generated. Every endpoint is a thin
layer over the same services the pages use, so validation, prices, credits and team
isolation cannot drift between the two.

- Authentication: ``Authorization: Bearer kiln_pat_…``, a member's personal access
  token (``accounts.tokens``), and nothing else: a session cookie does not authenticate
  the API, so CSRF does not apply to it (``auth.py``).
- Errors: ``application/problem+json`` (RFC 9457), with ``field`` naming the input that
  was wrong (``problems.py``).
- Limits: each token may make ``KILN_API_REQUESTS_PER_MINUTE`` requests a minute (then 429
  with ``Retry-After``); creating generations also counts against the member's own
  ``KILN_GENERATE_PER_MINUTE``, as in the studio.
"""
