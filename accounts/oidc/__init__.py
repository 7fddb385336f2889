"""Signing in through a company's identity provider (OpenID Connect).

django-allauth's OpenID Connect provider runs the protocol (discovery, the authorization code
with PKCE and state, the token exchange, the ID token's signature, audience, issuer and expiry);
``provider.py`` adds the nonce and always checks the signature. Everything Kiln decides about
the person is here, in ``services.sign_in``, called from the allauth adapter's
``pre_social_login`` hook, so allauth never creates or links an account by itself:

- an identity (provider + subject) already known signs in as its account;
- otherwise only an address the provider asserts ``email_verified`` for is used: it links to the
  account with that address, or makes a new one (no team: memberships come from invitations or
  a team's domain rule, ``domains.py``); an account already linked to another person at that
  provider (an address the company gave to someone new) is not; anything else is explained on a
  page, nothing created;
- the refresh token is kept encrypted (``generations.keys.crypto``) and used by ``recheck``:
  past ``KILN_OIDC_RECHECK_SECONDS`` the provider is asked again, and a refusal ends the person's
  sessions (``middleware.py``) and their API tokens (``generations/api/auth.py``).
"""
