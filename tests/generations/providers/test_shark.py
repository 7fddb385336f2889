"""The Shark AI adapter against the Shark sandbox, over real HTTP on loopback."""

import io
import logging
import time

import av
import pytest
from PIL import Image

from generations.providers import http
from generations.providers.base import (
    MODERATION,
    CancelResult,
    Credentials,
    Job,
    JobInput,
    ProviderError,
    State,
)
from generations.providers.shark import SharkProvider
from generations.sandbox import shark as shark_sandbox

shark = SharkProvider()
WAN = shark.get_model("alibaba/wan-2.7")
GPT = shark.get_model("openai/gpt-image-2")


@pytest.fixture
def creds(sandbox):
    return Credentials(api_key="sk-test-shark-1234", base_url=sandbox.base_url("shark"))


def make_job(model, prompt="A serene mountain landscape at sunset", operation=None, raw_params=None,
             params=None, inputs=(), negative_prompt=""):
    operation = operation or model.operations[0]
    if params is None:
        params, errors = model.clean_params(operation, raw_params or {})
        assert errors == {}
    return Job(generation_id="g-1", model=model, operation=operation, prompt=prompt,
               negative_prompt=negative_prompt, params=params, inputs=tuple(inputs))


def poll_until(job_id, creds, model, state, timeout=6.0):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        progress = shark.poll(job_id, creds, model=model)
        seen.append(progress.provider_status)
        if progress.state == state:
            return progress, seen
        time.sleep(0.05)
    raise AssertionError(f"never reached {state}; saw {seen}")


def download(url, tmp_path, name="out"):
    path = tmp_path / name
    with path.open("wb") as fh:
        http.download(url, fh, max_bytes=50_000_000, deadline_seconds=20)
    return path.read_bytes()


def png_bytes(color="red"):
    out = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(out, "PNG")
    return out.getvalue()


# ---------------------------------------------------------------------------
# Videos


def test_a_video_goes_pending_running_completed_with_a_playable_mp4_and_its_credit(sandbox, creds, tmp_path):
    sandbox.control(duration=0.8)
    job = make_job(WAN, raw_params={"duration": "5", "resolution": "720p"})
    submitted = shark.submit(job, creds)
    assert submitted.result is None

    first = shark.poll(submitted.job_id, creds, model=WAN)
    assert (first.state, first.provider_status) == (State.QUEUED, "pending")
    running, _ = poll_until(submitted.job_id, creds, WAN, State.RUNNING)
    assert running.provider_status == "running"
    done, _ = poll_until(submitted.job_id, creds, WAN, State.SUCCEEDED)

    assert done.cost == 4000 == WAN.estimate(job.params, job.operation)
    assert [o.kind for o in done.outputs] == ["video"]
    data = download(done.outputs[0].url, tmp_path, "video.mp4")
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 1280, 720)


def test_the_in_progress_spelling_also_means_running(sandbox, creds):
    sandbox.control(duration=5, shark_running_status="in_progress")
    submitted = shark.submit(make_job(WAN), creds)
    progress, _ = poll_until(submitted.job_id, creds, WAN, State.RUNNING)
    assert progress.provider_status == "in_progress"


def test_both_spellings_in_one_job_keep_it_running(sandbox, creds):
    sandbox.control(duration=5, shark_running_status="alternate")
    submitted = shark.submit(make_job(WAN), creds)
    poll_until(submitted.job_id, creds, WAN, State.RUNNING)
    polls = [shark.poll(submitted.job_id, creds, model=WAN) for _ in range(4)]
    assert {p.provider_status for p in polls} == {"running", "in_progress"}
    assert {p.state for p in polls} == {State.RUNNING}


def test_image_to_video_sends_the_first_and_last_frames_as_data_urls(sandbox, creds):
    inputs = [JobInput("first_frame", "image/png", png_bytes("red")),
              JobInput("last_frame", "image/png", png_bytes("blue"))]
    job = make_job(WAN, "The person walks toward the camera", operation="image-to-video",
                   raw_params={"duration": "10", "resolution": "480p"}, inputs=inputs,
                   negative_prompt="blurry")
    shark.submit(job, creds)
    (sent,) = sandbox.jobs()["jobs"]
    assert sent["params"]["frame_types"] == ["first_frame", "last_frame"]
    assert sent["params"]["negative_prompt"] == "blurry"
    assert (sent["params"]["duration"], sent["params"]["resolution"]) == (10, "480p")
    assert "aspect_ratio" not in job.params  # only text-to-video chooses a shape


def test_a_failed_video_carries_sharks_plain_string_error(sandbox, creds):
    sandbox.control(duration=0.1)
    submitted = shark.submit(make_job(WAN, "[unsafe] a scene"), creds)
    failed, _ = poll_until(submitted.job_id, creds, WAN, State.FAILED)
    assert failed.error == "Content was blocked by the safety system."
    assert failed.provider_status == "failed"


def test_a_pending_video_can_be_cancelled(sandbox, creds):
    sandbox.control(duration=30)
    submitted = shark.submit(make_job(WAN), creds)
    outcome = shark.cancel(submitted.job_id, creds, model=WAN)
    assert outcome.result == CancelResult.CANCELLED
    assert shark.poll(submitted.job_id, creds, model=WAN).state == State.CANCELLED


def test_a_started_video_cannot_be_cancelled_and_keeps_running(sandbox, creds):
    sandbox.control(duration=5)
    submitted = shark.submit(make_job(WAN), creds)
    sandbox.job(submitted.job_id, state="running")
    outcome = shark.cancel(submitted.job_id, creds, model=WAN)
    assert outcome.result == CancelResult.TOO_LATE
    assert "already started" in outcome.message and "charged" in outcome.message
    assert shark.poll(submitted.job_id, creds, model=WAN).state == State.RUNNING


def test_a_vanished_job_is_a_permanent_error_in_sharks_words(sandbox, creds):
    submitted = shark.submit(make_job(WAN), creds)
    sandbox.job(submitted.job_id, state="vanished")
    with pytest.raises(ProviderError) as caught:
        shark.poll(submitted.job_id, creds, model=WAN)
    assert caught.value.status_code == 404 and not caught.value.retryable
    assert "not found" in caught.value.message


def test_an_unknown_status_is_logged_and_treated_as_running(sandbox, creds, caplog):
    submitted = shark.submit(make_job(WAN), creds)
    sandbox.job(submitted.job_id, raw_status="warming_up")
    with caplog.at_level(logging.WARNING):
        progress = shark.poll(submitted.job_id, creds, model=WAN)
    assert (progress.state, progress.provider_status) == (State.RUNNING, "warming_up")
    assert "warming_up" in caplog.text


def test_loose_fields_are_read_loosely(sandbox, creds):
    submitted = shark.submit(make_job(WAN), creds)
    path = f"^/shark/api/v1/videos/{submitted.job_id}$"
    sandbox.fault(path, json={"id": submitted.job_id, "status": "Completed", "credit": "4000",
                              "output": {"urls": ["", {"url": "https://cdn.example/v.mp4"}]}})
    progress = shark.poll(submitted.job_id, creds, model=WAN)
    assert progress.state == State.SUCCEEDED and progress.cost == 4000
    assert [o.url for o in progress.outputs] == ["https://cdn.example/v.mp4"]

    sandbox.fault(path, json={"id": submitted.job_id, "status": "completed", "output": {"urls": []}})
    empty = shark.poll(submitted.job_id, creds, model=WAN)
    assert empty.state == State.FAILED and "no video URL" in empty.error and empty.cost is None

    sandbox.fault(path, json={"status": "failed"})
    assert "without a reason" in shark.poll(submitted.job_id, creds, model=WAN).error


def test_every_duration_and_resolution_is_charged_what_the_estimate_said(sandbox, creds):
    sandbox.control(duration=0)
    for model in (WAN,):
        for duration in model.params[0].choices:
            for resolution in ("480p", "1080p"):
                job = make_job(model, raw_params={"duration": duration, "resolution": resolution})
                done = shark.poll(shark.submit(job, creds).job_id, creds, model=model)
                assert done.cost == model.estimate(job.params, job.operation), (model.id, duration, resolution)


# ---------------------------------------------------------------------------
# Images


def test_an_image_request_answered_synchronously_still_gives_its_n_distinct_real_images(sandbox, creds, tmp_path):
    """A relay in front of Shark that drops ``"async": true`` answers in the synchronous shape."""
    sandbox.control(shark_ignore_async=True)
    job = make_job(GPT, "A cute baby sea otter", raw_params={"n": "3", "output_format": "webp",
                                                             "size": "1536x1024", "quality": "low"})
    submitted = shark.submit(job, creds)
    assert submitted.job_id.startswith("sync-")
    result = submitted.result
    assert result.state == State.SUCCEEDED and len(result.outputs) == 3
    assert result.cost == 480 == GPT.estimate(job.params, job.operation)
    files = [download(o.url, tmp_path, f"img{i}") for i, o in enumerate(result.outputs)]
    assert len(set(files)) == 3
    image = Image.open(io.BytesIO(files[0]))
    assert (image.format, image.size) == ("WEBP", (1536, 1024))


@pytest.mark.parametrize("extra", [{"data": None}, {"data": []}, {}])
def test_a_task_answered_with_200_rather_than_202_is_polled(sandbox, creds, extra):
    """An async answer is a task (an id, pending), whatever its status code and even with an empty
    ``data``: it was read as a finished synchronous answer with no images, and failed."""
    sandbox.fault("^/shark/api/v1/images/generations$", status=200, count=1, json={
        "id": "task_abc123", "object": "image.generation.task", "status": "pending", **extra,
        "polling_url": "https://shark.ai/api/v1/images/generations/task_abc123"})
    submitted = shark.submit(make_job(GPT, "A cute baby sea otter"), creds)
    assert (submitted.job_id, submitted.result) == ("task_abc123", None)


def test_a_slow_model_goes_async_and_polls_to_its_images_and_credit(sandbox, creds, tmp_path):
    sandbox.control(duration=0.5)
    job = make_job(GPT, "A cute baby sea otter", raw_params={"n": 2, "size": "1536x1024", "quality": "high"})
    submitted = shark.submit(job, creds)
    assert submitted.result is None and submitted.job_id.startswith("task_")
    (sent,) = sandbox.jobs()["jobs"]
    assert sent["params"]["async"] is True

    # Each phase is held while it is looked at (not timed: a loaded machine may poll late).
    sandbox.job(submitted.job_id, state="queued")
    assert shark.poll(submitted.job_id, creds, model=GPT).state == State.QUEUED
    sandbox.job(submitted.job_id, state="running")
    assert shark.poll(submitted.job_id, creds, model=GPT).provider_status == "running"
    sandbox.job(submitted.job_id, state="auto")
    done, _ = poll_until(submitted.job_id, creds, GPT, State.SUCCEEDED)
    assert done.cost == 5000 == GPT.estimate(job.params, job.operation)
    assert len(done.outputs) == 2
    image = Image.open(io.BytesIO(download(done.outputs[0].url, tmp_path)))
    assert (image.format, image.size) == ("PNG", (1536, 1024))


def test_auto_size_and_quality_are_estimated_at_no_less_than_the_charge(sandbox, creds):
    sandbox.control(duration=0)
    job = make_job(GPT, raw_params={"size": "auto", "quality": "auto"})
    done = shark.poll(shark.submit(job, creds).job_id, creds, model=GPT)
    assert done.state == State.SUCCEEDED
    assert GPT.estimate(job.params, job.operation) >= done.cost > 0


def test_a_failed_image_task_carries_sharks_error_message(sandbox, creds):
    sandbox.control(duration=0.1)
    submitted = shark.submit(make_job(GPT, "[fail] an otter"), creds)
    failed, _ = poll_until(submitted.job_id, creds, GPT, State.FAILED)
    assert failed.error == "Image generation failed: provider timeout"


@pytest.mark.parametrize(("model", "path"), [(GPT, "images/generations"), (WAN, "videos")])
def test_a_task_failed_by_moderation_says_so_by_its_type_whatever_its_words(sandbox, creds, model, path):
    """Shark's failed task carries ``error: {message, type}``; ``content_moderation`` is the type that says
    the prompt or the result was refused: the member edits it rather than sending it again as it was."""
    submitted = shark.submit(make_job(model, "an otter"), creds)
    sandbox.fault(f"^/shark/api/v1/{path}/{submitted.job_id}$",
                  json={"id": submitted.job_id, "status": "failed",
                        "error": {"message": "Generation failed: the request was rejected.", "type": "content_moderation"}})
    failed = shark.poll(submitted.job_id, creds, model=model)
    assert (failed.state, failed.error) == (State.FAILED, "Generation failed: the request was rejected.")
    assert failed.error_kind == MODERATION

    sandbox.fault(f"^/shark/api/v1/{path}/{submitted.job_id}$",
                  json={"id": submitted.job_id, "status": "failed",
                        "error": {"message": "Image generation failed: provider timeout", "type": "generation_error"}})
    assert shark.poll(submitted.job_id, creds, model=model).error_kind == ""


def test_a_pending_image_task_can_be_cancelled_and_a_running_one_cannot(sandbox, creds):
    sandbox.control(duration=30)
    pending = shark.submit(make_job(GPT), creds)
    assert shark.cancel(pending.job_id, creds, model=GPT).result == CancelResult.CANCELLED
    assert shark.poll(pending.job_id, creds, model=GPT).state == State.CANCELLED

    started = shark.submit(make_job(GPT, "another"), creds)
    sandbox.job(started.job_id, state="running")
    assert shark.cancel(started.job_id, creds, model=GPT).result == CancelResult.TOO_LATE


def test_a_synchronous_failure_is_a_retryable_error_in_sharks_words(sandbox, creds):
    sandbox.control(shark_ignore_async=True)
    with pytest.raises(ProviderError) as caught:
        shark.submit(make_job(GPT, "[fail] an otter"), creds)
    assert caught.value.status_code == 502 and caught.value.retryable
    assert caught.value.message == "Image generation failed: upstream provider error"


# ---------------------------------------------------------------------------
# Errors


def test_invalid_values_are_refused_with_sharks_message_and_not_retried(sandbox, creds):
    job = make_job(WAN, params={"duration": "7", "resolution": "720p"})
    with pytest.raises(ProviderError) as caught:
        shark.submit(job, creds)
    error = caught.value
    assert (error.status_code, error.retryable, error.code) == (400, False, "invalid_request_error")
    assert error.message == "Invalid value for 'duration': must be one of 5, 10, 15."
    assert sandbox.jobs()["jobs"] == []


def test_a_moderated_prompt_is_refused_at_once(sandbox, creds):
    with pytest.raises(ProviderError) as caught:
        shark.submit(make_job(GPT, "[moderate] something"), creds)
    assert (caught.value.status_code, caught.value.retryable, caught.value.code) == (400, False, "content_moderation")
    assert "safety system" in caught.value.message


@pytest.mark.parametrize(("key", "status", "words"), [
    ("invalid", 401, "Invalid API key"),
    ("broke", 402, "Insufficient credits"),
])
def test_bad_keys_are_permanent_errors(sandbox, key, status, words):
    creds = Credentials(api_key=key, base_url=sandbox.base_url("shark"))
    with pytest.raises(ProviderError) as caught:
        shark.submit(make_job(WAN), creds)
    assert (caught.value.status_code, caught.value.retryable) == (status, False)
    assert words in caught.value.message


def test_a_rate_limit_is_retryable_and_carries_retry_after(sandbox, creds):
    sandbox.fault("^/shark/api/v1/videos$", status=429, headers={"Retry-After": "7"})
    with pytest.raises(ProviderError) as caught:
        shark.submit(make_job(WAN), creds)
    error = caught.value
    assert (error.status_code, error.retryable, error.retry_after, error.code) == (429, True, 7.0, "rate_limit_error")
    assert sandbox.jobs()["jobs"] == []


@pytest.mark.parametrize(("status", "code"), [(502, "provider_error"), (504, "timeout_error")])
def test_upstream_errors_are_retryable_in_sharks_words(sandbox, creds, status, code):
    submitted = shark.submit(make_job(WAN), creds)
    sandbox.fault("^/shark/api/v1/videos/", status=status, message="Upstream said no")
    with pytest.raises(ProviderError) as caught:
        shark.poll(submitted.job_id, creds, model=WAN)
    assert (caught.value.status_code, caught.value.retryable, caught.value.code) == (status, True, code)
    assert caught.value.message == "Upstream said no"


# ---------------------------------------------------------------------------
# Faults


def test_a_truncated_json_answer_is_a_retryable_error(sandbox, creds):
    submitted = shark.submit(make_job(WAN), creds)
    sandbox.fault("^/shark/api/v1/videos/", truncate=True)
    with pytest.raises(ProviderError) as caught:
        shark.poll(submitted.job_id, creds, model=WAN)
    assert caught.value.retryable and "not a JSON object" in caught.value.message


def test_a_connection_reset_is_a_retryable_error(sandbox, creds):
    submitted = shark.submit(make_job(WAN), creds)
    sandbox.fault("^/shark/api/v1/videos/", reset=True)
    with pytest.raises(ProviderError) as caught:
        shark.poll(submitted.job_id, creds, model=WAN)
    assert caught.value.retryable
    assert shark.poll(submitted.job_id, creds, model=WAN).state in (State.QUEUED, State.RUNNING)


def test_a_non_json_answer_is_a_retryable_error(sandbox, creds):
    submitted = shark.submit(make_job(WAN), creds)
    sandbox.fault("^/shark/api/v1/videos/", status=200, body="<html>maintenance</html>")
    with pytest.raises(ProviderError) as caught:
        shark.poll(submitted.job_id, creds, model=WAN)
    assert caught.value.retryable and "maintenance" in caught.value.message


def test_a_lost_submit_answer_still_created_the_job_at_shark(sandbox, creds):
    """Why the engine must never re-send a submit whose answer was lost."""
    sandbox.fault("^/shark/api/v1/videos$", truncate="close")
    with pytest.raises(ProviderError) as caught:
        shark.submit(make_job(WAN, "a one-off"), creds)
    assert caught.value.retryable and caught.value.code != http.NOT_SENT
    assert len(sandbox.jobs()["jobs"]) == 1


def test_an_expired_media_url_answers_403(sandbox, creds, tmp_path):
    sandbox.control(duration=0, media_ttl=0)
    done = shark.poll(shark.submit(make_job(WAN), creds).job_id, creds, model=WAN)
    time.sleep(1.05)
    with pytest.raises(http.DownloadError) as caught:
        download(done.outputs[0].url, tmp_path)
    assert caught.value.status_code == 403 and not caught.value.retryable
    sandbox.control(media_ttl=600)
    fresh = shark.poll(shark.submit(make_job(WAN, "again"), creds).job_id, creds, model=WAN)
    assert download(fresh.outputs[0].url, tmp_path)[4:8] == b"ftyp"


def test_no_key_is_sent_when_downloading_media(sandbox, creds, tmp_path):
    sandbox.control(duration=0)
    done = shark.poll(shark.submit(make_job(WAN), creds).job_id, creds, model=WAN)
    assert shark.download_headers(done.outputs[0].url, creds) == {}
    download(done.outputs[0].url, tmp_path)
    media = [r for r in sandbox.requests() if r["path"].startswith("/media/")]
    assert media and not any(r["auth"] for r in media)


# ---------------------------------------------------------------------------
# The catalog


def test_the_catalog_has_the_documented_models_and_cadences():
    ids = {m.id: m for m in shark.models()}
    assert {"alibaba/wan-2.7", "openai/gpt-image-2"} == set(ids)
    assert {m.kind for m in ids.values()} == {"image", "video"}
    assert (WAN.poll_interval, WAN.default_timeout, GPT.poll_interval, GPT.default_timeout) == (4.0, 600, 3.0, 300)
    assert set(WAN.operations) == {"text-to-video", "image-to-video", "first-last-frame"}
    assert [s.role for s in WAN.inputs_for("first-last-frame")] == ["first_frame", "last_frame"]
    assert all(s.required for s in WAN.inputs_for("first-last-frame"))


def test_a_retired_model_is_not_offered_but_its_jobs_in_flight_are_still_followed(sandbox, creds):
    assert shark.get_model("alibaba/wan-2.5") is None
    retired = shark.job_model("alibaba/wan-2.5")
    assert retired.label == "Wan 2.5"
    sandbox.control(duration=0)
    sent = shark.submit(make_job(retired, raw_params={"duration": "10", "resolution": "480p"}), creds)
    assert shark.poll(sent.job_id, creds, model=retired).cost == 3_000


def test_the_schema_refuses_out_of_range_and_unknown_values_with_clear_messages():
    _, errors = WAN.clean_params("text-to-video", {"duration": "7", "resolution": "4k", "aspect_ratio": "4:3",
                                                   "seed": "lucky", "timeout": "30"})
    assert errors == {
        "duration": "Choose one of: 5, 10, 15.",
        "resolution": "Choose one of: 480p, 720p, 1080p.",
        "aspect_ratio": "Choose one of: 16:9, 9:16, 1:1.",
        "seed": "Enter a whole number.",
        "timeout": "Must be at least 60.",
    }
    _, errors = GPT.clean_params("text-to-image", {"n": "5", "size": "800x600", "quality": "ultra",
                                                   "output_format": "gif", "timeout": "4000"})
    assert errors == {
        "n": "Must be at most 4.",
        "size": "Choose one of: 1024x1024, 1536x1024, 1024x1536, 2048x2048, auto.",
        "quality": "Choose one of: low, medium, high, auto.",
        "output_format": "Choose one of: png, jpeg, webp.",
        "timeout": "Must be at most 1800.",
    }


def test_the_schema_fills_defaults_the_sandbox_accepts():
    params, errors = WAN.clean_params("text-to-video", {})
    assert errors == {}
    assert params == {"duration": 5, "resolution": "720p", "aspect_ratio": "16:9", "seed": -1, "timeout": 600}
    shark_sandbox.validate_video({"model": WAN.id, "prompt": "x", **params})
    params, _ = GPT.clean_params("text-to-image", {})
    shark_sandbox.validate_image({"model": GPT.id, "prompt": "x", **params})
