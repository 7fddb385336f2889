"""A small, real OpenID Connect provider for the tests: django-oauth-toolkit with OIDC on
(discovery, JWKS, RS256 ID tokens, PKCE required, rotating refresh tokens), its own Django
project and SQLite database, served by gunicorn on a free loopback port (``server.py``;
the fixtures are in ``tests/accounts/oidc/conftest.py``).

Its people have a password and an e-mail address; one in the group ``unverified-email`` gets
``email_verified: false``. A control API (``/_control/``, loopback only, no auth: a test
double) adds people and clients, disables a person, revokes their refresh tokens, and makes the
provider misbehave the way the tests need: ID tokens for another audience, or already expired.
"""
