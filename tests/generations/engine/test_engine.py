"""The engine against the Shark sandbox over real HTTP: claims, crashes, deadlines,
backoff, poison jobs, downloads — and the ledger after each."""

import hashlib
import io
import json
import time
from datetime import timedelta
from typing import ClassVar

import pytest
from django.core.files.storage import FileSystemStorage
from django.utils import timezone
from PIL import Image

from accounts.credits import services as credits
from accounts.credits.models import LedgerEntry
from generations.engine import download as download_stage
from generations.engine.common import BACKOFF_CAP, backoff_seconds, credentials_for, model_for
from generations.engine.download import DOWNLOAD_LEASE, download
from generations.engine.poll import MAX_POLL_CRASHES, _claim_due, poll_due
from generations.engine.recovery import requeue_stuck
from generations.engine.submit import build_job, claim_for_submit, submit
from generations.models import Generation, Status
from generations.providers.registry import PROVIDERS, get_provider
from generations.services import create_generation
from tests.generations.engine.conftest import (
    IMAGE,
    VIDEO,
    assert_ledger_consistent,
    broker,
    drive,
    make_due,
)


def submissions(sandbox) -> int:
    return sum(s["count"] for s in sandbox.jobs()["submissions"])


def ledger_kinds(generation) -> list[str]:
    return sorted(LedgerEntry.objects.filter(generation_ref=generation.public_id).values_list("kind", flat=True))


# -- the road -----------------------------------------------------------------


@pytest.mark.media
def test_a_video_runs_to_success_stores_checked_media_and_captures_sharks_credit(make, membership, sandbox):
    before = credits.wallet_for(membership).available
    generation = drive(make(duration="5").pk)

    assert generation.status == Status.SUCCEEDED, generation.error
    reported = generation.raw_payload["credit"]
    assert generation.actual_cost == reported
    media = generation.media.get()
    data = media.file.read()
    assert (media.kind, media.mime_type, media.bytes) == ("video", "video/mp4", len(data))
    assert media.sha256 == hashlib.sha256(data).hexdigest()
    assert media.width and media.height and media.duration > 0
    with Image.open(io.BytesIO(media.thumbnail.read())) as poster:
        assert poster.format == "WEBP"
    assert ledger_kinds(generation) == ["capture", "reserve"]
    assert credits.wallet_for(membership).available == before - reported
    assert_ledger_consistent()


@pytest.mark.media
def test_several_images_are_each_stored_with_a_thumbnail(make, sandbox):
    generation = drive(make(model=IMAGE, n=2, output_format="webp").pk)
    assert generation.status == Status.SUCCEEDED, generation.error
    media = list(generation.media.all())
    assert [m.position for m in media] == [0, 1]
    assert {m.mime_type for m in media} == {"image/webp"}
    assert all(m.thumbnail.name != m.file.name and m.width for m in media)
    assert generation.actual_cost == generation.raw_payload["result"]["credit"]
    assert_ledger_consistent()


def test_a_job_the_provider_fails_ends_failed_in_its_words_and_releases_everything(make, membership, sandbox):
    before = credits.wallet_for(membership).available
    generation = drive(make(prompt="a kiln [unsafe]").pk)
    assert generation.status == Status.FAILED
    assert generation.error == "Content was blocked by the safety system."
    assert ledger_kinds(generation) == ["release", "reserve"]
    assert credits.wallet_for(membership).available == before
    assert_ledger_consistent()


def test_a_prompt_refused_at_submit_fails_at_once_with_the_moderation_message(make, sandbox):
    generation = drive(make(prompt="a kiln [moderate]").pk)
    assert generation.status == Status.FAILED
    assert generation.provider_job_id == ""
    assert "moder" in generation.error.lower() or "safety" in generation.error.lower()
    assert ledger_kinds(generation) == ["release", "reserve"]
    assert_ledger_consistent()


# -- claims and crashes ---------------------------------------------------------


def test_of_two_workers_claiming_one_job_only_one_wins(make, sandbox):
    generation = make()
    assert claim_for_submit(generation.pk) is not None
    assert claim_for_submit(generation.pk) is None
    assert submit(generation.pk) == "not claimed"
    assert submissions(sandbox) == 0


def test_of_two_poll_ticks_only_one_claims_a_due_job(make, sandbox):
    sandbox.control(duration=30)
    generation = make()
    submit(generation.pk)
    make_due(generation.pk)
    first = _claim_due(timezone.now(), 10)
    second = _claim_due(timezone.now(), 10)
    assert [g.pk for g in first] == [generation.pk]
    assert second == []


def test_a_worker_dying_between_submit_and_saving_the_job_id_never_causes_a_second_submit(make, sandbox, settings):
    generation = make()
    # The worker claims the row and sends the job; the provider accepts it...
    claimed_at = claim_for_submit(generation.pk)
    row = Generation.objects.select_related("provider_key", "prompt").get(pk=generation.pk)
    provider, model = get_provider("shark"), model_for(row)
    provider.submit(build_job(row, provider, model), credentials_for(row))
    # ...and dies before saving the job id. The message is redelivered:
    assert submit(generation.pk) == "not claimed"
    # The periodic sweep finds the abandoned claim once the submit lease is over.
    settings.KILN_SUBMIT_LEASE_SECONDS = 60
    requeue_stuck(now=claimed_at + timedelta(seconds=61))

    generation.refresh_from_db()
    assert submissions(sandbox) == 1
    assert generation.status == Status.EXPIRED and generation.needs_review
    assert "not re-sent so you are not charged twice" in generation.error
    assert credits.held_for(generation) == generation.estimated_cost  # held for an admin
    assert_ledger_consistent()


def test_an_answer_lost_after_the_provider_accepted_is_not_resent(make, sandbox):
    sandbox.fault(r"^/shark/api/v1/videos$", method="POST", reset=True, run=True)
    generation = make()
    assert submit(generation.pk) == "lost"
    requeue_stuck(now=timezone.now() + timedelta(hours=1))
    generation.refresh_from_db()
    assert submissions(sandbox) == 1
    assert (generation.status, generation.needs_review) == (Status.EXPIRED, True)
    assert_ledger_consistent()


@pytest.mark.parametrize(("status", "words", "context"), [
    (401, "Invalid API key provided.", "did not accept this team's API key: Invalid API key provided. "
                                       "A team admin can replace the key under Team → Provider keys."),
    (402, "Insufficient credits.", "says the account behind this team's API key cannot pay for this: "
                                   "Insufficient credits."),
    (403, "This key may not use this model.", "does not allow this team's API key to do this: "
                                             "This key may not use this model."),
])
def test_a_refused_key_fails_the_job_in_the_provider_s_words_and_says_what_to_do(make, sandbox, membership, status,
                                                                                 words, context):
    sandbox.fault(r"^/shark/api/v1/videos$", method="POST", status=status,
                  body=json.dumps({"error": {"message": words, "type": "auth_error"}}),
                  headers={"Content-Type": "application/json"})
    generation = make()
    assert submit(generation.pk) == "refused"
    generation.refresh_from_db()
    assert generation.status == Status.FAILED
    assert generation.error == f"Shark AI {context}"
    # The key's page shows the problem in the provider's words, with the status that makes it the key's.
    assert generation.provider_key.last_error == f"HTTP {status}: {words}"
    membership.wallet.refresh_from_db()
    assert membership.wallet.reserved == 0  # released
    assert_ledger_consistent()


def test_a_submit_the_provider_refused_with_a_503_is_retried_and_sent_once(make, sandbox):
    sandbox.fault(r"^/shark/api/v1/videos$", method="POST", status=503)
    generation = make()
    assert submit(generation.pk) == "retrying"
    generation.refresh_from_db()
    assert (generation.status, generation.claimed_at, generation.error_count) == (Status.QUEUED, None, 1)
    assert generation.next_poll_at > timezone.now()
    assert submit(generation.pk) == "not claimed"  # not due yet
    Generation.objects.filter(pk=generation.pk).update(next_poll_at=timezone.now())
    assert drive(generation.pk).status == Status.SUCCEEDED
    assert submissions(sandbox) == 1
    assert_ledger_consistent()


# -- cadence, backoff, deadline ------------------------------------------------


def test_polls_back_off_on_errors_and_honour_retry_after(make, sandbox):
    sandbox.control(duration=60)
    generation = make()
    submit(generation.pk)
    poll_path = rf"^/shark/api/v1/videos/{Generation.objects.get(pk=generation.pk).provider_job_id}$"

    sandbox.fault(poll_path, status=429, headers={"Retry-After": "30"})
    make_due(generation.pk)
    start = timezone.now()
    poll_due()
    generation.refresh_from_db()
    assert generation.error_count == 1
    assert generation.next_poll_at - start >= timedelta(seconds=30)

    delays = []
    sandbox.fault(poll_path, status=502, count=3)
    for _ in range(3):
        make_due(generation.pk)
        start = timezone.now()
        poll_due()
        generation.refresh_from_db()
        delays.append((generation.next_poll_at - start).total_seconds())
    assert generation.error_count == 4
    assert delays[0] < delays[1] < delays[2] <= BACKOFF_CAP * 1.2
    assert generation.status in (Status.SUBMITTED, Status.RUNNING)

    make_due(generation.pk)
    poll_due()  # the provider answers again: back to its cadence
    generation.refresh_from_db()
    assert generation.error_count == 0
    assert (generation.next_poll_at - timezone.now()).total_seconds() <= 4.0 * 1.1 + 1


def test_a_job_past_its_deadline_expires_honestly_and_keeps_its_reservation(make, sandbox):
    sandbox.control(duration=60)
    generation = make()
    submit(generation.pk)
    Generation.objects.filter(pk=generation.pk).update(deadline=timezone.now() - timedelta(seconds=1),
                                                       submitted_at=timezone.now() - timedelta(minutes=12))
    make_due(generation.pk)
    poll_due()
    generation.refresh_from_db()
    assert (generation.status, generation.needs_review) == (Status.EXPIRED, True)
    assert generation.error.startswith("No result from Shark AI after 12 minutes; the provider may still finish")
    assert ledger_kinds(generation) == ["reserve"]
    assert credits.held_for(generation) == generation.estimated_cost
    assert_ledger_consistent()


def test_a_poison_job_fails_after_bounded_attempts_without_blocking_the_others(
        membership, team, sandbox, sandbox_key, monkeypatch):
    monkeypatch.setitem(PROVIDERS, "poison", "tests.generations.engine.poison.PoisonProvider")
    get_provider.cache_clear()
    sandbox_key(team, "shark")
    poison_key = sandbox_key(team, "poison")
    poison_key.base_url = sandbox.base_url("shark")
    poison_key.save()
    try:
        bad = create_generation(membership=membership, provider_id="poison", model_id=VIDEO,
                                operation="text-to-video", prompt="poison")
        good = create_generation(membership=membership, provider_id="shark", model_id=VIDEO,
                                 operation="text-to-video", prompt="good")
        submit(bad.pk)
        submit(good.pk)
        for _ in range(MAX_POLL_CRASHES + 2):
            make_due(bad.pk)
            make_due(good.pk)
            poll_due()
        good = drive(good.pk)
        bad.refresh_from_db()
    finally:
        get_provider.cache_clear()
    assert good.status == Status.SUCCEEDED
    assert bad.status == Status.FAILED and bad.needs_review
    assert f"after {MAX_POLL_CRASHES} attempts (KeyError)" in bad.error
    assert credits.held_for(bad) == bad.estimated_cost
    assert_ledger_consistent()


# -- downloads ------------------------------------------------------------------


@pytest.mark.media
def test_a_result_that_is_not_media_is_refused_by_its_magic_bytes(make, sandbox):
    generation = make()
    drive(generation.pk, until={Status.DOWNLOADING})
    sandbox.fault(r"^/media/", status=200, body="<html><body>not a video</body></html>",
                  headers={"Content-Type": "video/mp4"}, count=5)
    generation = drive(generation.pk)
    assert generation.status == Status.FAILED and generation.needs_review
    assert "HTML" in generation.error and "Kiln could not save the results of this job" in generation.error
    assert generation.media.count() == 0
    assert ledger_kinds(generation) == ["reserve"]  # Shark billed it, the member got nothing: an admin decides
    assert_ledger_consistent()


def test_a_result_above_the_size_cap_is_refused(make, sandbox, settings):
    settings.KILN_MAX_VIDEO_BYTES = 1000
    generation = drive(make().pk)
    assert generation.status == Status.FAILED
    assert "1,000-byte limit" in generation.error
    assert generation.media.count() == 0
    assert_ledger_consistent()


@pytest.mark.media
def test_an_expired_media_url_is_fetched_again_from_a_fresh_poll(make, sandbox):
    generation = make()
    drive(generation.pk, until={Status.DOWNLOADING})
    sandbox.fault(r"^/media/", status=403, count=1)
    generation = drive(generation.pk)
    assert generation.status == Status.SUCCEEDED, generation.error
    assert generation.media.count() == 1
    assert_ledger_consistent()


def test_an_expired_media_url_with_no_fresh_one_is_held_for_review_and_says_so_in_words(make, sandbox):
    """The URL answered 403 and so did the one a re-poll gave: the result is out of reach. Shark
    may have billed, so nothing is charged nor refunded until an admin settles it, and the
    job's words say what happened and what an admin can do, not only the HTTP status."""
    generation = make()
    drive(generation.pk, until={Status.DOWNLOADING})
    sandbox.fault(r"^/media/", status=403, count=10)
    generation = drive(generation.pk)
    assert generation.status == Status.FAILED and generation.needs_review
    assert ledger_kinds(generation) == ["reserve"]            # held: neither charged nor refunded
    assert credits.held_for(generation) == generation.estimated_cost
    error = generation.error
    assert "download link had expired" in error and "asking Shark AI again gave no working one" in error
    assert f"{generation.estimated_cost:,} reserved credits are held" in error
    assert "team owner or admin" in error and "refunded" in error and "charged" in error
    assert generation.progress is None and generation.media.count() == 0
    assert_ledger_consistent()


@pytest.mark.media
def test_a_download_cut_off_midway_is_retried_and_stored_whole_once(make, sandbox):
    generation = make()
    drive(generation.pk, until={Status.DOWNLOADING})
    sandbox.fault(r"^/media/", reset_after=2000, count=1)
    assert download(generation.pk) == "retrying"
    generation.refresh_from_db()
    assert (generation.status, generation.error_count) == (Status.DOWNLOADING, 1)
    generation = drive(generation.pk)
    assert generation.status == Status.SUCCEEDED, generation.error
    media = generation.media.get()
    assert hashlib.sha256(media.file.read()).hexdigest() == media.sha256
    assert len(media.file.storage.listdir(media.file.name.rsplit("/", 1)[0])[1]) == 2  # the file and its poster
    assert_ledger_consistent()


@pytest.mark.media
def test_running_the_download_again_after_success_changes_nothing(make, sandbox):
    generation = drive(make().pk)
    Generation.objects.filter(pk=generation.pk).update(status=Status.DOWNLOADING, next_poll_at=None)
    assert download(generation.pk) == "succeeded"  # a redelivered task after a crash before the last step
    media = generation.media.get()
    assert len(media.file.storage.listdir(media.file.name.rsplit("/", 1)[0])[1]) == 2
    assert LedgerEntry.objects.filter(generation_ref=generation.public_id, kind="capture").count() == 1
    assert_ledger_consistent()


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    assert 3.2 <= backoff_seconds(4.0, 0) <= 4.8
    assert 12.8 <= backoff_seconds(4.0, 2) <= 19.2
    assert backoff_seconds(4.0, 20) <= BACKOFF_CAP * 1.2
    assert backoff_seconds(4.0, 0, retry_after=42) >= 42


@pytest.mark.parametrize("status", ["running", "in_progress"])
def test_both_spellings_of_running_show_as_running(make, sandbox, status):
    sandbox.control(duration=4, shark_running_status=status)
    generation = drive(make().pk, until={Status.RUNNING})
    assert generation.provider_status == status


def test_a_synchronous_image_goes_straight_from_submit_to_saving(make, sandbox):
    sandbox.control(shark_ignore_async=True)  # a relay that answers in Shark's synchronous shape
    generation = make(model="openai/gpt-image-2", n=1)
    submit(generation.pk)
    generation.refresh_from_db()
    assert generation.status == Status.DOWNLOADING
    assert drive(generation.pk).status == Status.SUCCEEDED
    assert_ledger_consistent()


def test_one_tick_works_off_a_backlog_larger_than_its_batch(make, sandbox, settings):
    sandbox.control(duration=60)
    pks = [make(prompt=f"job {i}").pk for i in range(5)]
    for pk in pks:
        submit(pk)
        make_due(pk)
    assert poll_due(limit=2) == 5
    assert Generation.objects.filter(pk__in=pks, next_poll_at__lte=timezone.now()).count() == 0


def test_a_tick_that_lingers_polls_jobs_falling_due_during_it_on_time(make, sandbox):
    """The beat's task lingers for most of its tick: a job due 0.4 s into it is polled then,
    not a whole tick later; a job due after the linger is left to the next tick."""
    sandbox.control(duration=60)
    soon, later = make(prompt="due soon"), make(prompt="due later")
    for g in (soon, later):
        submit(g.pk)
    far = timezone.now() + timedelta(seconds=60)
    Generation.objects.filter(pk__in=[soon.pk, later.pk]).update(next_poll_at=far)
    assert poll_due() == 0  # without lingering: nothing due yet, back at once

    anchor, now = time.monotonic(), timezone.now()  # due times count from here, not from the call
    Generation.objects.filter(pk=soon.pk).update(next_poll_at=now + timedelta(seconds=0.4))
    assert poll_due(linger_seconds=1.5) == 1
    took = time.monotonic() - anchor
    paths = {g.pk: f"/shark/api/v1/videos/{Generation.objects.get(pk=g.pk).provider_job_id}" for g in (soon, later)}
    polled = {pk: [r["method"] for r in sandbox.requests() if r["path"] == path] for pk, path in paths.items()}
    assert polled == {soon.pk: ["GET"], later.pk: []}  # the one due after the linger is left to a later tick
    assert took > 0.3  # it waited for the due row (LINGER_STEP early at most)
    assert Generation.objects.get(pk=later.pk).next_poll_at == far


def test_the_sweep_wakes_jobs_whose_messages_were_lost(make, sandbox):
    queued = make(prompt="never woken")
    downloading = make(prompt="download lost")
    drive(downloading.pk, until={Status.DOWNLOADING})
    Generation.objects.filter(pk=downloading.pk).update(next_poll_at=timezone.now() - timedelta(minutes=5))
    with broker("memory://") as app:
        counts = requeue_stuck(now=timezone.now() + timedelta(minutes=2))
        sent = set()
        with app.connection_for_read() as conn:
            for queue_name in ("poll", "download"):
                queue = conn.SimpleQueue(queue_name, no_ack=True)
                while True:
                    try:
                        message = queue.get(block=False)
                    except queue.Empty:
                        break
                    sent.add((message.headers["task"], tuple(message.payload[0])))
                queue.close()
    assert (counts["submit"], counts["download"]) == (1, 1)
    assert sent == {("generations.tasks.submit_generation", (queued.pk,)),
                    ("generations.tasks.download_generation", (downloading.pk,))}



def test_a_result_declaring_12000x12000_pixels_is_refused_before_it_is_decoded(make, sandbox):
    """The provider's CDN (a server on loopback) sends the 1.7 MB Motion JPEG .mov whose first
    frame, decoded, took 1.9 GB: the download worker refuses it from its declared size."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from generations.sandbox import media as sample

    bomb = sample.mjpeg_mov(12000)

    class CDN(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "video/quicktime")
            self.send_header("Content-Length", str(len(bomb)))
            self.end_headers()
            self.wfile.write(bomb)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), CDN)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        generation = drive(make().pk, until={Status.DOWNLOADING})
        url = f"http://127.0.0.1:{server.server_port}/result.mov"
        Generation.objects.filter(pk=generation.pk).update(
            output_urls=[{**o, "url": url, "fallback_url": None} for o in generation.output_urls])
        generation = drive(generation.pk)
    finally:
        server.shutdown()
        server.server_close()
    assert generation.status == Status.FAILED and generation.needs_review
    assert "at most 8192x8192 is accepted" in generation.error
    assert generation.media.count() == 0
    assert_ledger_consistent()


class _ClaimWatchingStorage(FileSystemStorage):
    """The file system, noting how long the job's claim has left when each file is stored."""

    seen: ClassVar[list[float]] = []

    def _save(self, name, content):
        generation = Generation.objects.get(public_id=name.split("/")[2])
        self.seen.append((generation.next_poll_at - timezone.now()).total_seconds())
        return super()._save(name, content)


def test_storing_a_result_holds_the_claim_for_as_long_as_a_slow_store_may_take(make, sandbox, settings,
                                                                              monkeypatch):
    """A 2 GiB video uploading to a slow bucket outlasts the 90 s that arriving bytes renewed: the
    claim must cover the upload, or a second worker downloads and rewrites it meanwhile."""
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": f"{__name__}._ClaimWatchingStorage", "OPTIONS": {"location": str(settings.MEDIA_ROOT)}}}
    _ClaimWatchingStorage.seen = []
    monkeypatch.setattr(download_stage, "STORE_BYTES_PER_SECOND", 1000)  # the sandbox's small video, slowly
    generation = drive(make(duration="5").pk)
    assert generation.status == Status.SUCCEEDED, generation.error
    size = generation.media.get().bytes
    assert _ClaimWatchingStorage.seen
    upload_needs = size / 1000
    assert upload_needs > 30
    assert _ClaimWatchingStorage.seen[0] >= DOWNLOAD_LEASE.total_seconds() + upload_needs - 5
