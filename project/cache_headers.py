"""``Cache-Control`` for pages that show a secret once.

A page that shows a one-time link or token (a new member's set-password link, an
invitation, a share link just made) is the only place that secret is shown: no cache
may keep a copy (a shared proxy, the browser's back/forward and disk caches), so it
says ``no-store``. Use ``shows_a_secret_once`` on the view, or ``no_store`` on the one
response that carries the secret."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.http import HttpResponse
from django.utils.cache import patch_cache_control


def no_store(response: HttpResponse) -> HttpResponse:
    patch_cache_control(response, no_store=True)
    return response


def shows_a_secret_once(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Every response of ``view`` says ``no-store`` (its errors and redirects too: cheaper
    than being sure which one carries the secret)."""

    @wraps(view)
    def wrapper(*args, **kwargs) -> HttpResponse:
        return no_store(view(*args, **kwargs))

    return wrapper
