"""allauth's settings for a list of providers (``project.env.envoidcproviders``'s shape). Kept
free of models so that settings can import it."""


def socialaccount_providers(providers: list[dict]) -> dict:
    return {"openid_connect": {
        "provider_class": "accounts.oidc.provider.KilnOIDCProvider",
        "OAUTH_PKCE_ENABLED": True,
        "APPS": [{
            "provider_id": p["id"], "name": p["label"], "client_id": p["client_id"], "secret": p["secret"],
            "settings": {"server_url": p["issuer"], "scope": p["scopes"], "auth_params": p["auth_params"],
                         "oauth_pkce_enabled": True},
        } for p in providers],
    }}


def form_action_origins(providers: list[dict]) -> list[str]:
    """The providers' origins, for the CSP's ``form-action``: a sign-in button is a form whose
    POST is redirected to the provider, and browsers check that redirect against it."""
    from urllib.parse import urlsplit

    origins = []
    for p in providers:
        parts = urlsplit(p["issuer"])
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in origins:
            origins.append(origin)
    return origins
