"""Environment helpers for settings: every bad value fails loudly, naming the variable."""

import os
import re
import secrets
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def envstr(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def envbool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false, yes/no), got {raw!r}")


def envint(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def envlist(name: str, default: str = "") -> list[str]:
    raw = os.environ.get(name, default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def envsecret(name: str, path: Path) -> str:
    """The variable if set, else a value generated once into ``path`` (kept out of git)."""
    raw = os.environ.get(name)
    if raw is not None:
        if len(raw) < 32:
            raise ImproperlyConfigured(f"{name} must be at least 32 characters long")
        return raw
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(50)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


CONNECT_TIMEOUT_SECONDS = 5


def envdatabase(name: str, default_sqlite: Path) -> dict:
    """``sqlite:///path`` (the default) or ``postgres://user:pass@host:port/db?opt=val``."""
    raw = os.environ.get(name, "")
    if not raw:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": default_sqlite,
                "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE",
                            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}}
    parts = urlsplit(raw)
    if parts.scheme == "sqlite":
        path = unquote(parts.path[1:] if parts.path.startswith("//") else parts.path)
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": path or ":memory:",
                "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"}}
    if parts.scheme in ("postgres", "postgresql", "pgsql"):
        name_ = unquote(parts.path.lstrip("/"))
        if not name_:
            raise ImproperlyConfigured(f"{name} must name a database, got {raw!r}")
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        conn_max_age = int(options.pop("conn_max_age", "60"))
        # libpq waits for a database host that accepts the connection but never answers (hung, or
        # a half-open firewall) for ever; a request, and a load balancer's /healthz probe every
        # second, would each hold a web thread until none is left. ?connect_timeout= overrides it.
        options.setdefault("connect_timeout", str(CONNECT_TIMEOUT_SECONDS))
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name_,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": conn_max_age,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": options,
        }
    raise ImproperlyConfigured(f"{name} must be a postgres:// or sqlite:// URL, got {raw!r}")


def envfernetkey(path: Path) -> str:
    """A Fernet key generated once into ``path``, for local runs without FIELD_ENCRYPTION_KEYS."""
    if path.exists():
        return path.read_text().strip()
    from cryptography.fernet import Fernet

    path.parent.mkdir(parents=True, exist_ok=True)
    value = Fernet.generate_key().decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def envmediastorage(name: str) -> dict:
    """The media storage: ``filesystem`` (default, ``MEDIA_ROOT``), ``s3`` (an S3-compatible bucket,
    configured by the ``KILN_S3_*`` variables; needs the ``s3`` extra), or a storage class's dotted path."""
    raw = os.environ.get(name, "").strip()
    if raw in ("", "filesystem", "django.core.files.storage.FileSystemStorage"):
        return {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    if raw != "s3":
        return {"BACKEND": raw}
    bucket = os.environ.get("KILN_S3_BUCKET", "").strip()
    if not bucket:
        raise ImproperlyConfigured(f"{name}=s3 needs KILN_S3_BUCKET (the bucket's name)")
    endpoint = os.environ.get("KILN_S3_ENDPOINT_URL", "").strip()
    if endpoint and urlsplit(endpoint).scheme not in ("http", "https"):
        raise ImproperlyConfigured(f"KILN_S3_ENDPOINT_URL must be an http(s) URL, got {endpoint!r}")
    style = os.environ.get("KILN_S3_ADDRESSING_STYLE", "").strip() or ("path" if endpoint else None)
    if style not in (None, "path", "virtual", "auto"):
        raise ImproperlyConfigured(f"KILN_S3_ADDRESSING_STYLE must be path, virtual or auto, got {style!r}")
    options = {
        "bucket_name": bucket,
        "region_name": os.environ.get("KILN_S3_REGION", "").strip() or "us-east-1",
        "endpoint_url": endpoint or None,
        # Empty: boto3's own chain (AWS_ACCESS_KEY_ID..., a profile, an instance role).
        "access_key": os.environ.get("KILN_S3_ACCESS_KEY_ID", "").strip() or None,
        "secret_key": os.environ.get("KILN_S3_SECRET_ACCESS_KEY", "").strip() or None,
        "location": os.environ.get("KILN_S3_PREFIX", "").strip().strip("/"),
        "querystring_expire": envint("KILN_S3_URL_SECONDS", 3600, minimum=60),
        # Path-style (endpoint/bucket/key) for a non-AWS store: MinIO, Ceph and moto answer it
        # without a DNS name per bucket.
        "addressing_style": style,
    }
    return {"BACKEND": "generations.storage.S3MediaStorage", "OPTIONS": options}


_OIDC_ID = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


def envoidcproviders(name: str) -> list[dict]:
    """The OpenID Connect providers people may sign in with: ``KILN_OIDC_PROVIDERS=google,okta``
    names them, and each has its own ``KILN_OIDC_<ID>_*`` variables (ISSUER, CLIENT_ID,
    CLIENT_SECRET required; LABEL, SCOPES, AUTH_PARAMS, DOMAINS optional). One variable per value
    rather than one JSON blob: an operator sets, rotates and reads each secret on its own, and a
    mistake is named by its variable."""
    providers = []
    for provider_id in envlist(name):
        if not _OIDC_ID.match(provider_id):
            raise ImproperlyConfigured(f"{name}: {provider_id!r} is not a provider id (lower-case letters, "
                                       "digits and dashes, starting with a letter)")
        prefix = f"KILN_OIDC_{provider_id.upper().replace('-', '_')}_"

        def value(key: str, *, required: bool = False, default: str = "", _prefix=prefix, _id=provider_id) -> str:
            raw = os.environ.get(_prefix + key, "").strip()
            if required and not raw:
                raise ImproperlyConfigured(f"{_prefix}{key} must be set: {name} names {_id!r}")
            return raw or default

        issuer = value("ISSUER", required=True).rstrip("/")
        if urlsplit(issuer).scheme not in ("http", "https") or not urlsplit(issuer).hostname:
            raise ImproperlyConfigured(f"{prefix}ISSUER must be the provider's https URL, got {issuer!r}")
        scopes = value("SCOPES", default="openid email profile").replace(",", " ").split()
        if "openid" not in scopes:
            raise ImproperlyConfigured(f"{prefix}SCOPES must include openid, got {' '.join(scopes)!r}")
        domains = [d.strip().lower().lstrip("@") for d in value("DOMAINS").split(",") if d.strip()]
        providers.append({
            "id": provider_id,
            "label": value("LABEL", default=provider_id.replace("-", " ").title()),
            "issuer": issuer,
            "client_id": value("CLIENT_ID", required=True),
            "secret": value("CLIENT_SECRET", required=True),
            "scopes": scopes,
            # Extra parameters of the authorization request, as a query string
            # (Google's refresh token: access_type=offline&prompt=consent).
            "auth_params": {k: v[-1] for k, v in parse_qs(value("AUTH_PARAMS")).items()},
            # Empty: the provider may vouch for any address; else only for these domains.
            "domains": domains,
        })
    return providers
