"""The ShuttleAI adapter against its sandbox, over real HTTP on loopback."""

import io
import time

import httpx
import pytest

from generations.providers import http
from generations.providers.base import CancelResult, Credentials, Job, ProviderError, State
from generations.providers.registry import get_provider
from generations.providers.shuttleai import SORA
from tests.generations.engine.conftest import drive

PROVIDER = get_provider("shuttleai")


@pytest.fixture
def creds(sandbox):
    return Credentials("sk-shuttle-test-1234", sandbox.base_url("shuttleai"))


def job(prompt="A cat playing piano in a jazz bar.", **params):
    params = {"width": 1280, "height": 720, "n_seconds": 4, **params}
    return Job("gen-1", SORA, "text-to-video", prompt, params=params)


def at_fraction(sandbox, job_id, fraction):
    """Move a sandbox job's clock so that ``fraction`` of its duration has passed."""
    found = sandbox.sandbox.jobs.find(job_id)
    found.created_at = time.time() - found.duration * fraction


def finish(sandbox, creds, job_id):
    at_fraction(sandbox, job_id, 1.01)
    return PROVIDER.poll(job_id, creds, model=SORA)


def test_a_job_walks_every_shuttleai_status_to_a_video(sandbox, creds):
    submitted = PROVIDER.submit(job(), creds)
    assert submitted.job_id.startswith("task_")
    seen = []
    for fraction in (0.05, 0.25, 0.5, 0.9):
        at_fraction(sandbox, submitted.job_id, fraction)
        progress = PROVIDER.poll(submitted.job_id, creds, model=SORA)
        seen.append((progress.provider_status, progress.state))
    assert seen == [("queued", State.QUEUED), ("preprocessing", State.RUNNING),
                    ("running", State.RUNNING), ("processing", State.RUNNING)]

    done = finish(sandbox, creds, submitted.job_id)
    assert done.state == State.SUCCEEDED
    assert done.percent == 100
    [output] = done.outputs
    assert output.kind == "video"
    assert "/media/" in output.url
    gen_id = sandbox.sandbox.jobs.find(submitted.job_id).extra["gen_ids"][0]
    # The key's base URL is the sandbox's host for ShuttleAI; Kiln adds the documented path.
    assert output.fallback_url == f"{creds.base_url}/v1/video/generations/{gen_id}/content/video"


def test_the_request_carries_what_shuttleai_documents(sandbox, creds):
    submitted = PROVIDER.submit(job(width=1920, height=1080, n_seconds=7), creds)
    sent = sandbox.job(submitted.job_id)
    assert sent["params"] == {"width": 1920, "height": 1080, "n_seconds": 7, "model": "sora"}
    assert sent["prompt"] == "A cat playing piano in a jazz bar."


@pytest.mark.parametrize(("width", "height", "seconds", "usd"), [
    (854, 480, 5, 0.35),          # 480p tier
    (480, 480, 10, 0.70),
    (1280, 720, 4, 0.48),         # 720p tier
    (720, 720, 1, 0.12),
    (1920, 1080, 20, 4.00),       # 1080p tier
    (480, 1920, 2, 0.40),         # the larger side decides
])
def test_the_price_follows_the_seed_table_by_the_larger_side(width, height, seconds, usd):
    params, errors = SORA.clean_params("text-to-video", {"width": width, "height": height, "n_seconds": seconds})
    assert errors == {}
    assert SORA.estimate(params, "text-to-video") == round(usd * 10_000)


def test_the_actual_cost_follows_the_same_rule(sandbox, creds):
    submitted = PROVIDER.submit(job(width=854, height=480, n_seconds=5), creds)
    done = finish(sandbox, creds, submitted.job_id)
    assert done.cost == 3_500 == SORA.estimate({"width": 854, "height": 480, "n_seconds": 5}, "text-to-video")


def test_the_schema_refuses_what_shuttleai_does_not_offer():
    _, errors = SORA.clean_params("text-to-video", {"width": 500, "height": 720, "n_seconds": 21})
    assert errors["width"].startswith("Choose one of: 480, 720, 854, 1080, 1280, 1920")
    assert errors["n_seconds"] == "Must be at most 20."


@pytest.mark.parametrize(("keyword", "message"), [
    ("[moderate]", "The prompt was blocked by ShuttleAI's moderation."),
    ("[unsafe]", "The generated video was blocked by ShuttleAI's moderation."),
    ("[fail]", "ShuttleAI had an internal error while generating the video."),
])
def test_failure_reasons_are_shown_in_words(sandbox, creds, keyword, message):
    submitted = PROVIDER.submit(job(prompt=f"a cat {keyword}"), creds)
    done = finish(sandbox, creds, submitted.job_id)
    assert done.state == State.FAILED
    assert done.error == message
    assert done.outputs == []


def test_a_cancelled_job_reads_cancelled(sandbox, creds):
    submitted = PROVIDER.submit(job(), creds)
    sandbox.job(submitted.job_id, state="cancelled")
    assert PROVIDER.poll(submitted.job_id, creds, model=SORA).state == State.CANCELLED


def test_an_unknown_status_keeps_the_job_running(sandbox, creds):
    submitted = PROVIDER.submit(job(), creds)
    sandbox.job(submitted.job_id, raw_status="rendering_frames")
    progress = PROVIDER.poll(submitted.job_id, creds, model=SORA)
    assert (progress.state, progress.provider_status) == (State.RUNNING, "rendering_frames")


def download(url, headers):
    buffer = io.BytesIO()
    result = http.download(url, buffer, max_bytes=50_000_000, headers=headers)
    return result, buffer.getvalue()


def test_the_key_goes_to_shuttleais_own_host_and_never_to_the_cdn(sandbox, creds):
    submitted = PROVIDER.submit(job(), creds)
    [output] = finish(sandbox, creds, submitted.job_id).outputs

    assert PROVIDER.download_headers(output.url, creds) == {}
    _, cdn_bytes = download(output.url, PROVIDER.download_headers(output.url, creds))
    assert PROVIDER.download_headers(output.fallback_url, creds) == {"Authorization": "Bearer sk-shuttle-test-1234"}
    _, own_bytes = download(output.fallback_url, PROVIDER.download_headers(output.fallback_url, creds))

    assert cdn_bytes[4:8] == own_bytes[4:8] == b"ftyp"     # real MP4s
    log = {entry["path"]: entry for entry in sandbox.requests()}
    assert log[httpx.URL(output.url).path]["auth"] is False
    assert log[httpx.URL(output.fallback_url).path]["auth"] is True


def test_a_cdn_host_never_gets_the_key():
    assert PROVIDER.download_headers("https://cdn.shuttleai.com/cdn/x.mp4",
                                     Credentials("k", "https://api.shuttleai.com/v1/video/generations")) == {}


def test_without_a_video_url_the_content_endpoint_is_the_output(sandbox, creds):
    sandbox.control(shuttleai_omit_video_url=True)
    submitted = PROVIDER.submit(job(), creds)
    [output] = finish(sandbox, creds, submitted.job_id).outputs
    assert output.url.endswith("/content/video")
    _, data = download(output.url, PROVIDER.download_headers(output.url, creds))
    assert data[4:8] == b"ftyp"


def test_an_expired_cdn_link_is_refused_and_the_content_endpoint_still_serves(sandbox, creds):
    sandbox.control(media_ttl=0)
    submitted = PROVIDER.submit(job(), creds)
    [output] = finish(sandbox, creds, submitted.job_id).outputs
    with pytest.raises(http.DownloadError) as refused:
        download(output.url, {})
    assert refused.value.status_code == 403
    _, data = download(output.fallback_url, PROVIDER.download_headers(output.fallback_url, creds))
    assert data[4:8] == b"ftyp"


def test_the_content_endpoint_needs_the_key(sandbox, creds):
    submitted = PROVIDER.submit(job(), creds)
    [output] = finish(sandbox, creds, submitted.job_id).outputs
    refused = httpx.get(output.fallback_url)
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "authentication_error"


def test_bad_parameters_come_back_in_shuttleai_words(sandbox, creds):
    with pytest.raises(ProviderError) as refused:
        PROVIDER.submit(job(width=500), creds)
    assert refused.value.status_code == 400
    assert refused.value.message == "Invalid width 500. Allowed: 480, 720, 854, 1080, 1280, 1920."
    assert refused.value.retryable is False


@pytest.mark.parametrize(("status", "retryable"), [
    (400, False), (403, False), (423, True), (429, True), (500, True), (503, True),
])
def test_errors_keep_shuttleais_words_and_retryable_flags(sandbox, creds, status, retryable):
    sandbox.fault("^/shuttleai/v1/video/generations/jobs$", status=status, message=f"ShuttleAI says {status}.",
                  headers={"Retry-After": "7"} if status == 429 else {})
    with pytest.raises(ProviderError) as refused:
        PROVIDER.submit(job(), creds)
    assert (refused.value.status_code, refused.value.message, refused.value.retryable) == (
        status, f"ShuttleAI says {status}.", retryable)
    if status == 429:
        assert refused.value.retry_after == 7


@pytest.mark.parametrize(("key", "status", "code"), [("invalid", 401, "authentication_error"),
                                                     ("broke", 402, "insufficient_quota")])
def test_key_problems_are_permanent_errors(sandbox, key, status, code):
    with pytest.raises(ProviderError) as refused:
        PROVIDER.submit(job(), Credentials(key, sandbox.base_url("shuttleai")))
    assert (refused.value.status_code, refused.value.code, refused.value.retryable) == (status, code, False)


def test_the_plan_rate_limit_answers_429_with_retry_after(sandbox):
    sandbox.control(shuttleai_rpm=2)
    limited = Credentials("sk-rate-limited-plan", sandbox.base_url("shuttleai"))
    PROVIDER.submit(job(), limited)
    PROVIDER.submit(job(), limited)
    with pytest.raises(ProviderError) as refused:
        PROVIDER.submit(job(), limited)
    assert refused.value.status_code == 429
    assert refused.value.retryable is True
    assert 0 < refused.value.retry_after <= 61


def test_an_unknown_job_is_a_404(sandbox, creds):
    with pytest.raises(ProviderError) as refused:
        PROVIDER.poll("task_missing", creds, model=SORA)
    assert refused.value.status_code == 404
    assert "task_missing" in refused.value.message


def test_shuttleai_cannot_cancel_and_says_so(sandbox, creds):
    submitted = PROVIDER.submit(job(), creds)
    assert PROVIDER.supports_cancel is False
    outcome = PROVIDER.cancel(submitted.job_id, creds, model=SORA)
    assert outcome.result == CancelResult.NOT_SUPPORTED
    assert "cannot cancel" in outcome.message
    assert not any(entry["method"] == "DELETE" for entry in sandbox.requests())


# -- end to end: the engine takes a ShuttleAI job to the gallery ---------------------




@pytest.fixture
def membership(owner, team, settings):
    from accounts.models import Membership

    return Membership.objects.get(user=owner, team=team)


def generate(membership, **params):
    from generations.services import create_generation

    return create_generation(membership=membership, provider_id="shuttleai", model_id="sora",
                             operation="text-to-video", prompt="A cat playing piano in a jazz bar.",
                             params={"width": 854, "height": 480, "n_seconds": 2, **params})


def test_the_engine_takes_a_sora_job_to_a_stored_video_at_the_seed_price(sandbox, sandbox_key, team, membership):
    sandbox.control(duration=0.3)
    sandbox_key(team, "shuttleai")
    generation = drive(generate(membership).pk)
    assert generation.status == "succeeded", generation.error
    assert generation.estimated_cost == generation.actual_cost == 1_400
    [video] = generation.media.all()
    assert (video.kind, video.mime_type, video.width, video.height) == ("video", "video/mp4", 854, 480)


def test_an_expired_cdn_link_falls_back_to_the_content_endpoint_with_the_key(sandbox, sandbox_key, team,
                                                                              membership):
    sandbox.control(duration=0.3, media_ttl=0)
    sandbox_key(team, "shuttleai")
    generation = drive(generate(membership).pk)
    assert generation.status == "succeeded", generation.error
    fetched = [(e["path"].split("/")[1], e["status"], e["auth"]) for e in sandbox.requests()
               if e["path"].startswith("/media/") or e["path"].endswith("/content/video")]
    assert ("media", 403, False) in fetched
    assert fetched[-1] == ("shuttleai", 200, True)
    assert not any(auth for where, _, auth in fetched if where == "media")
