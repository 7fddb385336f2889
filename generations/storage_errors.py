"""When the media storage itself fails: what a member sees, and what the operator reads.

Kept apart from ``generations.storage`` (the S3 backend, which needs the ``s3`` extra) so
every part of Kiln can name the error whatever backend is configured.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

logger = logging.getLogger("generations.storage")


class StorageUnavailable(Exception):
    """The media storage cannot be used at all (a missing bucket, refused credentials, an endpoint
    that does not answer): not one file's problem, the deployment's. The message is for the
    operator (it names the bucket, the endpoint and the setting to check); a member is told only
    that media are unavailable for now (``StorageUnavailableMiddleware``).

    Deliberately not an ``OSError``: code that skips one missing or unreadable file (the zip,
    a download's completeness check) must not quietly skip every file of a broken bucket."""


MEMBER_MESSAGE = ("Kiln cannot reach its media storage right now, so this file or page cannot be shown. "
                  "Nothing was lost: try again in a few minutes, and tell your Kiln operator if it lasts.")


class StorageUnavailableMiddleware:
    """A page or file that needed the storage: 503 with a plain message, the cause in the log."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, StorageUnavailable):
            return None
        logger.error("Media storage unavailable (%s %s): %s", request.method, request.path, exception)
        body = render_to_string("generations/storage_unavailable.html", {"message": MEMBER_MESSAGE}, request=request)
        return HttpResponse(body, status=503, headers={"Retry-After": "60", "Cache-Control": "no-store"})
