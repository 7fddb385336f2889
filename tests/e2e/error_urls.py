"""Kiln's URLs plus two that fail on purpose, for the error page tests (a 500 and the storage's 503)."""

from django.urls import path

from generations.storage_errors import StorageUnavailable
from project.urls import urlpatterns as kiln_urlpatterns


def boom(request):
    raise RuntimeError("a bug, on purpose (tests/e2e/error_urls.py)")


def storage_down(request):
    raise StorageUnavailable("bucket kiln-test: NoSuchBucket (on purpose, tests/e2e/error_urls.py)")


urlpatterns = [path("__boom__/", boom), path("__storage_down__/", storage_down), *kiln_urlpatterns]
