"""The client's address, for login throttling (django-axes) and rate limits.

Behind N trusted reverse proxies (``KILN_TRUSTED_PROXY_COUNT``), each appends
the address it saw to ``X-Forwarded-For``; the client is the N-th entry from
the right. Entries further left were written by the client and are never
trusted. With no proxy configured, ``REMOTE_ADDR`` is the client.
"""

import ipaddress

from django.conf import settings


def client_ip(request) -> str | None:
    """The client's address, or None when the request carries none (as axes expects)."""
    remote = request.META.get("REMOTE_ADDR") or None
    count = settings.KILN_TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if len(hops) < count:
        return remote
    candidate = hops[-count]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
