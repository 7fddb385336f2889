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
