"""Provider faults, injected by the Shark sandbox over real HTTP, survived by the real engine.

Each test drives the engine's ``submit`` / ``poll_due`` / ``download`` the
way a worker does (tests/generations/engine/conftest.py ``drive``) and ends with
``fault_report``: every job terminal, nothing lost or sent twice, ledger exact.
"""

import hashlib
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.credits import services as credits
from generations.engine.download import MAX_DOWNLOAD_ATTEMPTS, _media_dir, download
from generations.engine.poll import MAX_POLL_CRASHES, poll_due
from generations.engine.recovery import requeue_stuck
from generations.engine.submit import submit
from generations.models import Generation, Media, Status
from tests.generations.engine.conftest import IMAGE, drive, make_due

pytestmark = pytest.mark.faults

VIDEOS = r"^/shark/api/v1/videos$"


def poll_path(generation) -> str:
    job_id = Generation.objects.values_list("provider_job_id", flat=True).get(pk=generation.pk)
    return rf"^/shark/api/v1/videos/{job_id}$"


def poll_once(generation) -> Generation:
    make_due(generation.pk)
    poll_due()
    return Generation.objects.get(pk=generation.pk)


def test_a_429_with_retry_after_puts_the_next_poll_after_it_and_the_job_still_finishes(make, sandbox, fault_report):
    generation = make("fault 429")
    submit(generation.pk)
    sandbox.fault(poll_path(generation), status=429, headers={"Retry-After": "20"},
                  json={"error": {"message": "Rate limit reached, slow down.", "type": "rate_limit"}})
    before = timezone.now()
    generation = poll_once(generation)
    assert generation.status in (Status.SUBMITTED, Status.RUNNING)
    assert generation.next_poll_at - before >= timedelta(seconds=20)
    assert poll_due() == 0  # not due before Retry-After has passed
    assert drive(generation.pk).status == Status.SUCCEEDED
    fault_report("poll 429 + Retry-After", [generation], sandbox)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_while_polling_are_retried_with_growing_backoff(make, sandbox, fault_report, status):
    generation = make(f"fault poll {status}")
    submit(generation.pk)
    sandbox.fault(poll_path(generation), status=status, count=3)
    delays = []
    for _ in range(3):
        before = timezone.now()
        generation = poll_once(generation)
        delays.append((generation.next_poll_at - before).total_seconds())
    assert generation.error_count == 3
    assert delays[0] < delays[1] < delays[2]
    assert drive(generation.pk).status == Status.SUCCEEDED
    fault_report(f"poll {status} x3", [generation], sandbox)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_submit_answered_with_a_server_error_is_sent_again_once_and_only_once(make, sandbox, fault_report, status):
    sandbox.fault(VIDEOS, method="POST", status=status)
    generation = make(f"fault submit {status}")
    assert submit(generation.pk) == "retrying"
    Generation.objects.filter(pk=generation.pk).update(next_poll_at=timezone.now())
    assert drive(generation.pk).status == Status.SUCCEEDED
    fault_report(f"submit {status}", [generation], sandbox)


@pytest.mark.parametrize("spec", [{"truncate": True}, {"status": 200, "body": "<html>Bad gateway</html>",
                                                        "headers": {"Content-Type": "text/html"}}],
                         ids=["truncated", "not-json"])
def test_a_poll_answer_that_is_cut_or_not_json_is_retried(make, sandbox, fault_report, spec):
    generation = make(f"fault poll body {next(iter(spec))}")
    submit(generation.pk)
    sandbox.fault(poll_path(generation), count=2, **spec)
    generation = poll_once(generation)
    assert generation.status in (Status.SUBMITTED, Status.RUNNING)
    assert generation.error_count == 1
    assert drive(generation.pk).status == Status.SUCCEEDED
    fault_report(f"poll body {'truncated' if 'truncate' in spec else 'not JSON'}", [generation], sandbox)


def test_a_submit_answer_cut_after_the_provider_accepted_is_never_sent_again(make, sandbox, fault_report):
    sandbox.fault(VIDEOS, method="POST", truncate=True)  # the job is created, the answer is half a JSON
    generation = make("fault submit truncated")
    assert submit(generation.pk) == "lost"
    requeue_stuck(now=timezone.now() + timedelta(hours=1))
    generation.refresh_from_db()
    assert (generation.status, generation.needs_review) == (Status.EXPIRED, True)
    assert "not re-sent" in generation.error
    assert credits.held_for(generation) == generation.estimated_cost
    fault_report("submit answer truncated", [generation], sandbox)


def test_an_unknown_status_string_keeps_the_job_running_until_the_provider_makes_sense(make, sandbox, fault_report):
    sandbox.control(duration=30)
    generation = make("fault unknown status")
    submit(generation.pk)
    job_id = Generation.objects.get(pk=generation.pk).provider_job_id
    sandbox.job(job_id, raw_status="warming_up_gpus")
    for _ in range(3):
        generation = poll_once(generation)
    assert generation.status == Status.RUNNING
    assert generation.provider_status == "warming_up_gpus"
    assert generation.error_count == 0
    sandbox.job(job_id, raw_status=None, state="succeeded")
    assert drive(generation.pk).status == Status.SUCCEEDED
    fault_report("unknown status, then completed", [generation], sandbox)


def test_an_unknown_status_that_never_normalizes_expires_at_the_deadline(make, sandbox, fault_report):
    sandbox.control(duration=30)
    generation = make("fault unknown status forever")
    submit(generation.pk)
    sandbox.job(Generation.objects.get(pk=generation.pk).provider_job_id, raw_status="???")
    assert poll_once(generation).status == Status.RUNNING
    Generation.objects.filter(pk=generation.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    generation = poll_once(generation)
    assert (generation.status, generation.needs_review) == (Status.EXPIRED, True)
    assert "No result from Shark AI" in generation.error
    assert credits.held_for(generation) == generation.estimated_cost
    fault_report("unknown status until deadline", [generation], sandbox)


def test_a_job_that_vanishes_at_the_provider_ends_failed_in_the_providers_words(make, sandbox, fault_report):
    sandbox.control(duration=30)
    generation = make("fault vanished")
    submit(generation.pk)
    job_id = Generation.objects.get(pk=generation.pk).provider_job_id
    sandbox.job(job_id, state="vanished")
    generation = poll_once(generation)
    assert generation.status == Status.FAILED
    assert f"Task '{job_id}' not found." in generation.error
    fault_report("job id vanished (404)", [generation], sandbox)


# -- downloads -------------------------------------------------------------------


def stored_files(generation) -> list[Path]:
    from django.conf import settings

    folder = Path(settings.MEDIA_ROOT) / _media_dir(Generation.objects.select_related("team").get(pk=generation.pk))
    return sorted(folder.glob("*")) if folder.exists() else []


def test_a_connection_reset_mid_download_is_retried_and_the_file_is_whole(make, sandbox, fault_report):
    generation = make("fault reset mid download")
    drive(generation.pk, until={Status.DOWNLOADING})
    sandbox.fault(r"^/media/", reset_after=4096)
    assert download(generation.pk) == "retrying"
    assert drive(generation.pk).status == Status.SUCCEEDED
    media = Media.objects.get(generation=generation)
    assert media.bytes > 4096
    fault_report("connection reset mid-download", [generation], sandbox)  # sha256 == the sandbox's bytes


def test_a_media_url_that_expired_is_replaced_by_a_fresh_one_from_a_re_poll(make, sandbox, fault_report):
    sandbox.control(media_ttl=1)
    generation = make("fault expired url")
    drive(generation.pk, until={Status.DOWNLOADING})
    old_url = Generation.objects.get(pk=generation.pk).output_urls[0]["url"]
    time.sleep(1.2)
    sandbox.control(media_ttl=300)
    assert download(generation.pk) == "succeeded"
    generation.refresh_from_db()
    assert generation.output_urls[0]["url"] != old_url
    fault_report("media URL expired", [generation], sandbox)


def test_a_download_that_never_ends_is_stopped_by_the_deadline_and_retried(make, sandbox, settings, fault_report):
    settings.KILN_DOWNLOAD_DEADLINE_SECONDS = 1
    generation = make("fault trickle")
    drive(generation.pk, until={Status.DOWNLOADING})
    sandbox.fault(r"^/media/", trickle=True, trickle_interval=0.05, trickle_bytes=64)
    started = time.monotonic()
    assert download(generation.pk) == "retrying"
    assert time.monotonic() - started < 5
    assert Generation.objects.get(pk=generation.pk).error_count == 1
    assert drive(generation.pk).status == Status.SUCCEEDED
    fault_report("trickling download (deadline)", [generation], sandbox)


def test_a_download_that_trickles_every_time_fails_after_bounded_attempts(make, sandbox, settings, fault_report):
    settings.KILN_DOWNLOAD_DEADLINE_SECONDS = 0.3
    generation = make("fault trickle forever", model=IMAGE, quality="low", size="1024x1024")
    drive(generation.pk, until={Status.DOWNLOADING})
    sandbox.fault(r"^/media/", trickle=True, trickle_interval=0.05, trickle_bytes=16, count=20)
    generation = drive(generation.pk, timeout=30)
    assert (generation.status, generation.needs_review) == (Status.FAILED, True)
    assert f"after {MAX_DOWNLOAD_ATTEMPTS} attempts" in generation.error
    assert stored_files(generation) == []
    fault_report("trickling download, every attempt", [generation], sandbox)


def test_a_response_far_larger_than_the_cap_is_refused_and_nothing_is_half_stored(make, sandbox, settings,
                                                                                    fault_report):
    settings.KILN_MAX_VIDEO_BYTES = 2 * 1024 * 1024
    generation = make("fault huge")
    drive(generation.pk, until={Status.DOWNLOADING})
    sandbox.fault(r"^/media/", huge=10 * 1024**3)  # 10 GiB, chunked, no Content-Length
    started = time.monotonic()
    generation = drive(generation.pk)
    assert time.monotonic() - started < 10
    assert generation.status == Status.FAILED
    assert "2,097,152-byte limit" in generation.error
    assert generation.media.count() == 0
    assert stored_files(generation) == []
    fault_report("response far above the size cap", [generation], sandbox)


def test_stored_media_matches_the_sandbox_bytes_exactly(make, sandbox):
    generation = drive(make("fault control: plain run").pk)
    media = generation.media.get()
    import httpx

    served = httpx.get(generation.output_urls[0]["url"]).content
    assert hashlib.sha256(served).hexdigest() == media.sha256 == hashlib.sha256(media.file.read()).hexdigest()


def test_a_poison_job_ends_failed_after_bounded_attempts_and_never_blocks_the_others(
        membership, team, sandbox, sandbox_key, monkeypatch, fault_report):
    from generations.providers.registry import PROVIDERS, get_provider
    from generations.services import create_generation
    from tests.generations.conftest import VIDEO

    monkeypatch.setitem(PROVIDERS, "poison", "tests.generations.engine.poison.PoisonProvider")  # its poll always raises
    get_provider.cache_clear()
    sandbox_key(team, "shark")
    poison_key = sandbox_key(team, "poison")
    poison_key.base_url = sandbox.base_url("shark")
    poison_key.save()
    try:
        bad = create_generation(membership=membership, provider_id="poison", model_id=VIDEO,
                                operation="text-to-video", prompt="poison pill")
        good = [create_generation(membership=membership, provider_id="shark", model_id=IMAGE,
                                  operation="text-to-image", prompt=f"good neighbour {i}") for i in range(3)]
        for g in [bad, *good]:
            submit(g.pk)
        ticks = 0
        while Generation.objects.get(pk=bad.pk).status not in (Status.FAILED,) and ticks < 50:
            for g in [bad, *good]:
                make_due(g.pk)
            poll_due()  # the poison job and the good ones share every batch
            for g in good:
                if Generation.objects.get(pk=g.pk).status == Status.DOWNLOADING:
                    download(g.pk)
            ticks += 1
        good = [drive(g.pk) for g in good]
        bad.refresh_from_db()
    finally:
        get_provider.cache_clear()
    assert ticks == MAX_POLL_CRASHES
    assert [g.status for g in good] == [Status.SUCCEEDED] * 3
    assert (bad.status, bad.needs_review) == (Status.FAILED, True)
    assert f"after {MAX_POLL_CRASHES} attempts (KeyError)" in bad.error
    fault_report("poison job (adapter always raises)", [bad, *good], sandbox)
