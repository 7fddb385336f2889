"""Download: fetch, check and store a finished job's outputs, then capture its cost.

A ``downloading`` row is claimed with a lease (``DOWNLOAD_LEASE``, renewed
while bytes keep arriving), so a worker killed mid-download only delays it:
``requeue_stuck`` wakes it again once the lease has run out. Each output is
written under a server-chosen name, replaced (never duplicated) by a re-run.
A retryable failure (a reset, a deadline, a 5xx) is tried again with backoff,
up to ``MAX_DOWNLOAD_ATTEMPTS``; a result Kiln cannot keep ends the job
``failed`` with the credits held for review (the provider may have charged).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.credits import services as credits
from generations import mediafiles
from generations.engine import wakeups
from generations.engine.common import (
    EngineError,
    backoff_seconds,
    credentials_for,
    db_retry,
    end,
    model_for,
    provider_name,
)
from generations.mediafiles import MediaRejected
from generations.models import Generation, Media, Status
from generations.providers import http
from generations.providers.base import Credentials, ModelSpec, Provider, ProviderError, State
from generations.providers.registry import get_provider
from generations.storage_errors import StorageUnavailable

logger = logging.getLogger(__name__)

MAX_DOWNLOAD_ATTEMPTS = 5        # retryable download failures (resets, deadlines, 5xx)
DOWNLOAD_LEASE = timedelta(seconds=90)
DOWNLOAD_LEASE_RENEW = 30.0      # seconds between lease renewals while bytes flow
# Storing a result is not covered by bytes arriving: the claim is held for as long as the file may
# take to reach the storage at this pace (a slow bucket), so no second worker takes it mid-upload.
STORE_BYTES_PER_SECOND = 1024 * 1024
EXPIRED_URL_STATUSES = (401, 403, 404, 410)


class _LeaseWriter:
    """A file wrapper that renews the download lease while bytes keep arriving."""

    def __init__(self, fh, pk: int):
        self.fh, self.pk = fh, pk
        self.renewed = time.monotonic()

    def write(self, data: bytes) -> int:
        now = time.monotonic()
        if now - self.renewed > DOWNLOAD_LEASE_RENEW:
            self.renewed = now
            Generation.objects.filter(pk=self.pk, status=Status.DOWNLOADING).update(
                next_poll_at=timezone.now() + DOWNLOAD_LEASE)
        return self.fh.write(data)


class _SaveFailed(Exception):
    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.message, self.retryable = message, retryable


def _max_bytes(kind: str) -> int:
    return settings.KILN_MAX_VIDEO_BYTES if kind == "video" else settings.KILN_MAX_IMAGE_BYTES


def _media_dir(generation: Generation) -> str:
    return f"media/{generation.team.public_id}/{generation.public_id}"


def _media_complete(generation: Generation, position: int) -> bool:
    media = Media.objects.filter(generation=generation, position=position).first()
    if media is None or not media.file:
        return False
    try:
        return media.file.storage.size(media.file.name) == media.bytes
    except OSError:
        return False


def _store(generation: Generation, position: int, path: Path, got: http.Downloaded,
           sniffed: mediafiles.Sniffed, processed: mediafiles.Processed) -> Media:
    """Save a checked download under a server-chosen name; a re-run replaces, never duplicates."""
    storage = Media._meta.get_field("file").storage
    name = f"{_media_dir(generation)}/{position}.{sniffed.ext}"
    thumb_name = f"{_media_dir(generation)}/{position}.thumb.webp"
    for stale in (name, thumb_name):
        if storage.exists(stale):
            storage.delete(stale)
    # A worker killed mid-upload delays the job by this allowance (2 GiB: 35 min), no more.
    allowance = DOWNLOAD_LEASE + timedelta(seconds=got.bytes / STORE_BYTES_PER_SECOND)
    Generation.objects.filter(pk=generation.pk, status=Status.DOWNLOADING).update(
        next_poll_at=timezone.now() + allowance)
    with open(path, "rb") as fh:
        saved = storage.save(name, File(fh, name=name))
    saved_thumb = storage.save(thumb_name, ContentFile(processed.thumbnail)) if processed.thumbnail else ""
    media, _ = Media.objects.update_or_create(
        generation=generation, position=position,
        defaults={"file": saved, "thumbnail": saved_thumb, "kind": sniffed.kind, "mime_type": sniffed.mime_type,
                      "bytes": got.bytes, "sha256": got.sha256, "width": processed.width, "height": processed.height,
                      "duration": processed.duration})
    return media


def _download_to(url: str, path: Path, generation: Generation, provider: Provider, creds: Credentials,
                 kind: str) -> http.Downloaded:
    headers = {}
    if http.same_host(url, provider.base_url(creds)):
        headers = provider.download_headers(url, creds)
    with open(path, "wb") as fh:
        return http.download(url, _LeaseWriter(fh, generation.pk), max_bytes=_max_bytes(kind), headers=headers)


def _fresh_urls(generation: Generation, provider: Provider, creds: Credentials, model: ModelSpec) -> list[dict] | None:
    """Re-poll a finished job for new signed URLs (the old ones expired)."""
    try:
        progress = provider.poll(generation.provider_job_id, creds, model=model)
    except ProviderError as exc:
        logger.info("generation %s: re-poll for fresh URLs failed: %s", generation.pk, exc.message)
        return None
    if progress.state != State.SUCCEEDED or not progress.outputs:
        return None
    outputs = [dataclasses.asdict(o) for o in progress.outputs]
    Generation.objects.filter(pk=generation.pk, status=Status.DOWNLOADING).update(output_urls=outputs)
    return outputs


def _candidates(output: dict, position: int, refresh: Callable[[], list[dict] | None]):
    """Where to fetch an output from, in order: its URL; a fresh one from a re-poll (asked only if
    the first was refused or expired); the provider's fallback URL."""
    if output.get("url"):
        yield output["url"]
    fresh = refresh()
    if fresh and position < len(fresh) and fresh[position].get("url"):
        yield fresh[position]["url"]
    if output.get("fallback_url"):
        yield output["fallback_url"]


# Downloads are I/O: a worker may run them in many threads (``--pool threads``); the
# CPU-heavy part (checking the file, poster frame, thumbnails) is bounded per process.
_media_work = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))


def _save_output(generation: Generation, position: int, output: dict, refresh: Callable[[], list[dict] | None],
                 provider: Provider, creds: Credentials, workdir: Path) -> None:
    kind = output.get("kind") or generation.kind
    path = workdir / f"{position}.download"
    last: http.DownloadError | None = None
    for url in _candidates(output, position, refresh):
        try:
            got = _download_to(url, path, generation, provider, creds, kind)
            break
        except http.DownloadError as exc:
            last = exc
            if exc.status_code in EXPIRED_URL_STATUSES:
                continue  # expired or refused: a fresh URL, then the fallback
            raise _SaveFailed(exc.message, retryable=exc.retryable) from None
    else:
        if last is not None and last.status_code in EXPIRED_URL_STATUSES:
            name = provider_name(generation.provider)
            raise _SaveFailed(f"its download link had expired (HTTP {last.status_code}) and asking {name} again "
                              "gave no working one")
        raise _SaveFailed(f"the file could not be fetched ({last.message if last else 'no URL was given'})")

    sniffed = mediafiles.sniff(got.head)
    if sniffed is None:
        raise _SaveFailed(f"it sent {mediafiles.describe_head(got.head)} instead of an image or video")
    try:
        with _media_work:  # decoding and thumbnails are CPU work: at most one per core
            processed = mediafiles.process(path, sniffed)
    except MediaRejected as exc:
        raise _SaveFailed(str(exc)) from None
    _store(generation, position, path, got, sniffed, processed)


def claim_download(pk: int, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return bool(Generation.objects.filter(pk=pk, status=Status.DOWNLOADING).filter(
        Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now)).update(next_poll_at=now + DOWNLOAD_LEASE))


def download(pk: int) -> str:
    """Fetch, check and store every output of a finished job, then mark it succeeded and capture its cost."""
    if not claim_download(pk):
        return "not claimed"
    generation = Generation.objects.select_related("provider_key", "team").get(pk=pk)
    name = provider_name(generation.provider)
    try:
        provider = get_provider(generation.provider)
        model = model_for(generation)
        creds = credentials_for(generation)
    except EngineError as exc:
        return _download_failed(generation, str(exc), model=None)

    refreshed: list[list[dict] | None] = []

    def refresh() -> list[dict] | None:
        if not refreshed:
            refreshed.append(_fresh_urls(generation, provider, creds, model))
        return refreshed[0]

    # Downloads may be gigabytes: FILE_UPLOAD_TEMP_DIR (a disk, not a tmpfs) when it is set.
    # Each output is a whole file there while it is checked (decoders seek), on S3 too:
    # docs/deploy.md, "Media on S3-compatible storage", says why and what disk that takes.
    with tempfile.TemporaryDirectory(prefix="kiln-dl-", dir=settings.FILE_UPLOAD_TEMP_DIR) as tmp:
        for position, output in enumerate(generation.output_urls or []):
            try:
                if _media_complete(generation, position):
                    continue
                _save_output(generation, position, output, refresh, provider, creds, Path(tmp))
            except _SaveFailed as exc:
                if exc.retryable:
                    return _download_retry(generation, model, exc.message)
                return _download_failed(generation, exc.message, model=model)
            except StorageUnavailable as exc:
                # The deployment's problem, not the file's: the operator's cause in the log, and
                # the job tried again with backoff like any other passing failure.
                logger.error("generation %s: media storage unavailable: %s", generation.pk, exc)
                return _download_retry(generation, model, "Kiln's media storage could not be reached")

    actual = generation.actual_cost
    if actual is None:
        actual = model.estimate(generation.params, generation.operation)

    def succeed() -> bool:
        with transaction.atomic():
            moved = end(pk, Generation.objects.filter(pk=pk, status=Status.DOWNLOADING),
                        status=Status.SUCCEEDED, finished_at=timezone.now(), actual_cost=actual, next_poll_at=None,
                        progress=100, error="")
            if moved:
                credits.capture(generation, actual, reason=f"{name}: cost {actual:,}.")
            return bool(moved)

    return "succeeded" if db_retry(succeed) else "row moved"


def _download_retry(generation: Generation, model: ModelSpec, message: str) -> str:
    attempts = generation.error_count + 1
    if attempts >= MAX_DOWNLOAD_ATTEMPTS:
        return _download_failed(generation, f"{message} (after {attempts} attempts)", model=model)
    delay = backoff_seconds(5.0, attempts - 1)

    def reschedule() -> None:
        with transaction.atomic():
            moved = Generation.objects.filter(pk=generation.pk, status=Status.DOWNLOADING).update(
                error_count=F("error_count") + 1, next_poll_at=timezone.now() + timedelta(seconds=delay))
            if moved:
                wakeups.send_on_commit(wakeups.DOWNLOAD, generation.pk, countdown=delay)

    db_retry(reschedule)
    logger.info("generation %s: download failed (%s); retrying in %.1fs", generation.pk, message, delay)
    return "retrying"


def _download_failed(generation: Generation, reason: str, *, model: ModelSpec | None) -> str:
    """The provider finished (and may have billed) but we could not keep the result.

    The member got nothing and the provider may have charged: neither capturing nor
    releasing is right by itself, so the reservation is held and the row flagged for
    review. A team owner or admin settles it (refunded or charged) from the result's
    page, the credits page or the Django admin (``credits.resolve_review``). The
    provider's reported charge, if it gave one, stays in ``actual_cost`` for that decision."""
    name = provider_name(generation.provider)
    held = generation.estimated_cost
    # What happened first (a card shows the first lines), then the money and who decides.
    message = (f"Kiln could not save the results of this job: {reason}. {name} had finished it and may have charged "
               f"for it, so the {held:,} reserved credits are held until a team owner or admin settles it: "
               f"refunded if {name} did not charge for it, charged if it did.")

    def write() -> bool:
        return end(generation.pk, Generation.objects.filter(pk=generation.pk, status=Status.DOWNLOADING),
                   status=Status.FAILED, error=message[:5000], finished_at=timezone.now(), next_poll_at=None,
                   progress=None, needs_review=True)

    if db_retry(write):
        logger.warning("generation %s: results not saved (%s); credits held for review", generation.pk, reason)
    return "failed"
