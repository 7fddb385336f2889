"""The OpenAI-compatible gateway adapter (Vidu models) against its sandbox, over real HTTP."""

import time

import httpx
import pytest

from generations.providers.base import (
    MODEL_UNAVAILABLE,
    CancelResult,
    Credentials,
    Job,
    JobInput,
    ProviderError,
    State,
)
from generations.providers.registry import get_model, get_provider
from generations.sandbox import media
from tests.generations.engine.conftest import drive

PROVIDER = get_provider("gateway")
PRO = PROVIDER.get_model("viduq3p-720p")
TURBO = PROVIDER.get_model("viduq3t-540p")
MIX = PROVIDER.get_model("viduq3p-mix-720p")
PNG = media.image_bytes(96, 64, "frame")
JPEG = media.image_bytes(96, 64, "other frame", "jpeg")


@pytest.fixture
def creds(sandbox):
    return Credentials("sk-gateway-test-9012", sandbox.base_url("gateway"))


def make_job(model=PRO, operation="text-to-video", prompt="camera, slow push-in", inputs=(), **raw):
    params, errors = model.clean_params(operation, raw)
    assert errors == {}
    return Job("gen-1", model, operation, prompt, params=params, inputs=tuple(inputs))


def at_fraction(sandbox, job_id, fraction):
    found = sandbox.sandbox.jobs.find(job_id)
    found.created_at = time.time() - found.duration * fraction


def finish(sandbox, creds, job_id, model=PRO):
    at_fraction(sandbox, job_id, 1.01)
    return PROVIDER.poll(job_id, creds, model=model)


def frame(role, data=PNG, mime="image/png"):
    return JobInput(role, mime, data)


def test_the_seeds_vidu_models_are_the_default_catalog():
    assert [m.id for m in PROVIDER.models()] == [
        "viduq3p-540p", "viduq3p-720p", "viduq3p-1080p", "viduq3t-540p", "viduq3t-720p", "viduq3t-1080p",
        "viduq3p-1080p-offpeak", "viduq3p-mix-720p"]
    assert PRO.operations == ("text-to-video", "image-to-video", "first-last-frame")
    assert MIX.operations == ("reference-to-video",)
    assert PRO.poll_interval == 10.0


def test_a_keys_model_list_replaces_the_catalog_and_unknown_ids_get_a_generic_form():
    models = PROVIDER.models(["viduq3p-1080p-offpeak", "house-video-v2", "viduq3t-720p"])
    assert [m.id for m in models] == ["viduq3p-1080p-offpeak", "house-video-v2", "viduq3t-720p"]
    offpeak, house, _ = models
    assert offpeak.label == "Vidu Q3 Pro 1080p (off-peak)"
    assert offpeak.estimate({"duration": 4}, "text-to-video") == 3_000          # half of $0.15/s
    assert house.label == "house-video-v2"
    assert house.operations == ("text-to-video", "image-to-video", "first-last-frame")
    assert "generic" in house.description
    assert get_model("gateway", "house-video-v2", ["house-video-v2"]).id == "house-video-v2"
    assert get_model("gateway", "house-video-v2") is None
    # Vidu's own ids are understood even without the key's list, so their jobs can be polled,
    # but only the documented ones (or the key's list) can be submitted.
    assert get_model("gateway", "viduq3t-1080p-offpeak") is None
    assert PROVIDER.job_model("viduq3t-1080p-offpeak").label == "Vidu Q3 Turbo 1080p (off-peak)"


def test_the_price_is_per_second_by_resolution_tier():
    assert PRO.estimate({"duration": 5}, "text-to-video") == 4_500
    assert TURBO.estimate({"duration": 10}, "text-to-video") == 3_000
    assert MIX.estimate({"duration": 5}, "reference-to-video") == 5_400


def test_a_key_without_a_base_url_is_refused(sandbox):
    with pytest.raises(ProviderError) as refused:
        PROVIDER.submit(make_job(), Credentials("sk-x", ""))
    assert "no base URL" in refused.value.message
    assert refused.value.retryable is False


def test_a_task_walks_every_wrapped_status_with_its_progress(sandbox, creds):
    sandbox.control(duration=600)  # 1 % = 6 s: each fraction still reads as set on a slow machine
    submitted = PROVIDER.submit(make_job(), creds)
    assert submitted.job_id.startswith("task_")
    seen = []
    for fraction in (0.01, 0.07, 0.12, 0.5):
        at_fraction(sandbox, submitted.job_id, fraction)
        progress = PROVIDER.poll(submitted.job_id, creds, model=PRO)
        seen.append((progress.provider_status, progress.state))
    assert seen == [("NOT_START", State.QUEUED), ("SUBMITTED", State.QUEUED), ("QUEUED", State.QUEUED),
                    ("IN_PROGRESS", State.RUNNING)]
    assert progress.percent == 50               # "50%" from the gateway
    done = finish(sandbox, creds, submitted.job_id)
    assert (done.state, done.provider_status, done.percent) == (State.SUCCEEDED, "SUCCESS", 100)
    [output] = done.outputs
    assert PROVIDER.download_headers(output.url, creds) == {}
    video = httpx.get(output.url)
    assert video.content[4:8] == b"ftyp"
    assert [e["auth"] for e in sandbox.requests() if e["path"].startswith("/media/")] == [False]


def test_text_to_video_sends_aspect_ratio_duration_and_extra_body(sandbox, creds):
    submitted = PROVIDER.submit(make_job(aspect_ratio="9:16", duration=8, audio=True, seed=42), creds)
    sent = sandbox.job(submitted.job_id)["params"]
    assert sent == {"model": "viduq3p-720p", "prompt": "camera, slow push-in", "aspect_ratio": "9:16",
                    "duration": 8, "extra_body": {"audio": True, "bgm": False, "seed": 42},
                    "has_image": False, "has_last_image": False, "references": 0}


def test_image_to_video_sends_the_start_frame(sandbox, creds):
    submitted = PROVIDER.submit(make_job(operation="image-to-video", inputs=[frame("first_frame")]), creds)
    sent = sandbox.job(submitted.job_id)
    assert (sent["params"]["has_image"], sent["params"]["has_last_image"]) == (True, False)
    assert "aspect_ratio" not in sent["params"]
    assert sent["extra"]["action"] == "generate"
    assert finish(sandbox, creds, submitted.job_id).state == State.SUCCEEDED


def test_first_and_last_frames_go_together(sandbox, creds):
    submitted = PROVIDER.submit(make_job(operation="first-last-frame",
                                         inputs=[frame("first_frame"), frame("last_frame", JPEG, "image/jpeg")]),
                                creds)
    sent = sandbox.job(submitted.job_id)
    assert (sent["params"]["has_image"], sent["params"]["has_last_image"]) == (True, True)
    assert sent["extra"]["action"] == "firstTailGenerate"


def test_a_last_frame_alone_cannot_be_sent():
    # The form cannot offer it: the last-frame slot exists only where the first frame is required too.
    assert [s.role for s in PRO.inputs_for("image-to-video")] == ["first_frame"]
    slots = {s.role: s.required for s in PRO.inputs_for("first-last-frame")}
    assert slots == {"first_frame": True, "last_frame": True}


def test_the_adapter_refuses_a_last_frame_alone_before_calling_the_gateway(sandbox, creds):
    with pytest.raises(ProviderError) as refused:
        PROVIDER.submit(make_job(operation="first-last-frame", inputs=[frame("last_frame")]), creds)
    assert "last frame needs a first frame" in refused.value.message
    assert sandbox.requests() == []


def test_the_gateway_itself_refuses_last_image_alone(sandbox, creds):
    response = httpx.post(f"{creds.base_url}/v1/video/generations",
                          json={"model": "viduq3p-720p", "prompt": "x", "last_image": "https://example.com/t.png"},
                          headers={"Authorization": f"Bearer {creds.api_key}"})
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("last_image requires image")


def test_reference_images_go_as_a_list_for_the_mix_models(sandbox, creds):
    references = [frame("reference"), frame("reference", JPEG, "image/jpeg"), frame("reference")]
    submitted = PROVIDER.submit(make_job(model=MIX, operation="reference-to-video",
                                         prompt="A @Image1 walking on a beach in the style of @Image2 and @Image3",
                                         inputs=references, aspect_ratio="1:1"), creds)
    sent = sandbox.job(submitted.job_id)
    assert sent["params"]["references"] == 3
    assert sent["params"]["aspect_ratio"] == "1:1"
    assert sent["extra"]["action"] == "referenceGenerate"
    assert MIX.inputs_for("reference-to-video")[0].max_count == 7
    assert finish(sandbox, creds, submitted.job_id, MIX).state == State.SUCCEEDED


def test_inputs_go_as_short_lived_urls_when_kiln_has_them(sandbox, creds):
    body = PROVIDER.request_body(make_job(operation="image-to-video", inputs=[
        JobInput("first_frame", "image/png", PNG, url="https://kiln.example/in/abc")]))
    assert body["image"] == "https://kiln.example/in/abc"
    inline = PROVIDER.request_body(make_job(operation="image-to-video", inputs=[frame("first_frame")]))
    assert inline["image"].startswith("data:image/png;base64,")


def test_the_openai_video_shape_is_understood(sandbox, creds):
    sandbox.control(gateway_shape="openai", duration=600)  # 1 % = 6 s: the 30 % still reads 30 % under load
    submitted = PROVIDER.submit(make_job(), creds)
    at_fraction(sandbox, submitted.job_id, 0.01)
    queued = PROVIDER.poll(submitted.job_id, creds, model=PRO)
    at_fraction(sandbox, submitted.job_id, 0.3)
    running = PROVIDER.poll(submitted.job_id, creds, model=PRO)
    done = finish(sandbox, creds, submitted.job_id)
    assert (queued.state, queued.provider_status) == (State.QUEUED, "queued")
    assert (running.state, running.provider_status, running.percent) == (State.RUNNING, "in_progress", 30)
    assert (done.state, done.provider_status) == (State.SUCCEEDED, "completed")
    assert "/media/" in done.outputs[0].url


@pytest.mark.parametrize("progress", ["Infinity", "-Infinity", "NaN", "1e400", "", None, "soon"])
def test_a_progress_that_is_no_number_is_read_as_none_and_the_poll_goes_on(sandbox, creds, progress):
    submitted = PROVIDER.submit(make_job(), creds)
    sandbox.fault(f"^/gateway/v1/video/generations/{submitted.job_id}$", count=1, json={
        "code": "success", "data": {"task_id": submitted.job_id, "status": "IN_PROGRESS", "progress": progress}})
    running = PROVIDER.poll(submitted.job_id, creds, model=PRO)
    assert (running.state, running.percent) == (State.RUNNING, None)


def test_without_the_wrapped_route_it_falls_back_to_v1_videos(sandbox, creds):
    sandbox.control(gateway_wrapped_route=False)
    submitted = PROVIDER.submit(make_job(), creds)
    done = finish(sandbox, creds, submitted.job_id)
    assert (done.state, done.provider_status) == (State.SUCCEEDED, "completed")
    paths = [e["path"] for e in sandbox.requests() if e["method"] == "GET"]
    assert paths == [f"/gateway/v1/video/generations/{submitted.job_id}", f"/gateway/v1/videos/{submitted.job_id}"]


@pytest.mark.parametrize("shape", ["wrapped", "openai"])
def test_a_failure_shows_the_gateways_reason(sandbox, creds, shape):
    sandbox.control(gateway_shape=shape)
    submitted = PROVIDER.submit(make_job(prompt="a beach [unsafe]"), creds)
    done = finish(sandbox, creds, submitted.job_id)
    assert done.state == State.FAILED
    assert done.error.startswith("The generated video did not pass content moderation.")
    assert done.provider_status == ("FAILURE" if shape == "wrapped" else "failed")


def test_a_task_the_gateway_forgot_fails_with_task_not_exist(sandbox, creds):
    submitted = PROVIDER.submit(make_job(), creds)
    sandbox.job(submitted.job_id, state="vanished")
    progress = PROVIDER.poll(submitted.job_id, creds, model=PRO)
    assert progress.state == State.FAILED
    assert progress.error == "The gateway no longer knows this task (task_not_exist)."


def test_an_unknown_id_on_v1_videos_is_task_not_exist_too(sandbox, creds):
    sandbox.control(gateway_wrapped_route=False)
    progress = PROVIDER.poll("task_never_seen", creds, model=PRO)
    assert (progress.state, progress.provider_status) == (State.FAILED, "task_not_exist")


def test_an_older_gateway_that_forgets_a_task_with_a_404_says_so_in_its_words(sandbox, creds):
    """The wrapped route answers 404 task_not_exist and the gateway has no /v1/videos to ask."""
    submitted = PROVIDER.submit(make_job(), creds)
    sandbox.fault(f"^/gateway/v1/video/generations/{submitted.job_id}$", count=1, status=404,
                  json={"code": "task_not_exist", "message": "task_not_exist", "data": None})
    sandbox.fault(f"^/gateway/v1/videos/{submitted.job_id}$", count=1, status=404,
                  message="Invalid URL (GET /v1/videos/...)")
    progress = PROVIDER.poll(submitted.job_id, creds, model=PRO)
    assert (progress.state, progress.provider_status) == (State.FAILED, "task_not_exist")
    assert progress.error == "The gateway no longer knows this task (task_not_exist)."


def test_an_unknown_upstream_status_keeps_the_task_running(sandbox, creds):
    sandbox.control(gateway_vanished="unknown")
    submitted = PROVIDER.submit(make_job(), creds)
    sandbox.job(submitted.job_id, state="vanished")
    progress = PROVIDER.poll(submitted.job_id, creds, model=PRO)
    assert (progress.state, progress.provider_status) == (State.RUNNING, "UNKNOWN")


def test_a_new_status_word_keeps_the_task_running(sandbox, creds):
    submitted = PROVIDER.submit(make_job(), creds)
    sandbox.job(submitted.job_id, raw_status="POST_PROCESSING")
    assert PROVIDER.poll(submitted.job_id, creds, model=PRO).state == State.RUNNING


def test_a_model_without_a_channel_is_a_permanent_refusal_in_the_gateways_words(sandbox, creds):
    """new-api answers 503 ``model_not_found``: the gateway did answer, and trying again will not help."""
    house = PROVIDER.models(["house-video-v2"])[0]
    with pytest.raises(ProviderError) as refused:
        PROVIDER.submit(make_job(model=house), creds)
    assert refused.value.status_code == 503
    assert refused.value.message.startswith("No available channel for model house-video-v2")
    assert refused.value.retryable is False
    assert refused.value.code == MODEL_UNAVAILABLE


def test_a_plain_503_from_the_gateway_is_still_retryable(sandbox, creds):
    sandbox.fault("^/gateway/v1/video/generations$", status=503, message="Service temporarily unavailable.")
    with pytest.raises(ProviderError) as busy:
        PROVIDER.submit(make_job(), creds)
    assert (busy.value.status_code, busy.value.retryable) == (503, True)
    assert busy.value.code != MODEL_UNAVAILABLE


@pytest.mark.parametrize("how", ["a key's model list", "a documented model the gateway has no channel for"])
def test_the_engine_ends_a_job_whose_model_has_no_channel_at_once_refunded(owner, team, sandbox, sandbox_key,
                                                                           caplog, how):
    import logging

    from accounts.credits import services as credits
    from accounts.models import Membership
    from generations.engine.submit import submit
    from generations.models import Generation
    from generations.services import create_generation

    if how == "a key's model list":
        sandbox_key(team, "gateway", models_override="house-video-v2")
        model_id = "house-video-v2"
    else:
        sandbox_key(team, "gateway")
        model_id = "viduq3t-1080p"
        sandbox.control(gateway_no_channel=[model_id])
    membership = Membership.objects.get(user=owner, team=team)
    before = credits.wallet_for(membership).available
    generation = create_generation(membership=membership, provider_id="gateway", model_id=model_id,
                                   operation="text-to-video", prompt="a lighthouse at dusk", params={"duration": 5})
    assert credits.wallet_for(membership).available < before

    with caplog.at_level(logging.INFO, logger="generations.engine"):
        outcome = submit(generation.pk)

    generation = Generation.objects.get(pk=generation.pk)
    assert outcome == "refused"
    assert generation.status == "failed" and generation.next_poll_at is None
    assert f"No available channel for model {model_id}" in generation.error
    assert credits.wallet_for(membership).available == before        # refunded
    posts = [r for r in sandbox.requests() if r["method"] == "POST"]
    assert len(posts) == 1                                              # sent once, never retried
    assert any(f"refused the model {model_id}" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records), [r.getMessage() for r in caplog.records]
    assert not any("not reached" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("key", "status"), [("invalid", 401), ("broke", 402)])
def test_key_problems_are_permanent(sandbox, key, status):
    with pytest.raises(ProviderError) as refused:
        PROVIDER.submit(make_job(), Credentials(key, sandbox.base_url("gateway")))
    assert (refused.value.status_code, refused.value.retryable) == (status, False)


def test_a_429_carries_retry_after(sandbox, creds):
    sandbox.fault("^/gateway/v1/video/generations$", status=429, message="Too many requests: slow down.",
                  headers={"Retry-After": "12"})
    with pytest.raises(ProviderError) as refused:
        PROVIDER.submit(make_job(), creds)
    assert (refused.value.message, refused.value.retryable, refused.value.retry_after) == (
        "Too many requests: slow down.", True, 12)


def test_a_gateway_cannot_cancel_and_says_so(sandbox, creds):
    submitted = PROVIDER.submit(make_job(), creds)
    outcome = PROVIDER.cancel(submitted.job_id, creds, model=PRO)
    assert outcome.result == CancelResult.NOT_SUPPORTED
    assert "cannot cancel" in outcome.message
    assert PROVIDER.supports_cancel is False


def test_a_base_url_ending_in_v1_is_accepted(sandbox):
    assert PROVIDER.base_url(Credentials("k", "https://relay.example.com/v1/")) == "https://relay.example.com"


# -- end to end: the engine, from the service to stored media --------------------------




def test_the_engine_makes_a_reference_video_from_uploads_with_a_keys_model_list(owner, team, sandbox, sandbox_key):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from accounts.models import Membership
    from generations.services import InputSpec, create_generation, team_catalog

    sandbox.control(duration=0.3)
    sandbox_key(team, "gateway", models_override="viduq3p-mix-540p\nviduq3t-720p-offpeak")
    assert [e.model.id for e in team_catalog(team) if e.provider_id == "gateway"] == [
        "viduq3p-mix-540p", "viduq3t-720p-offpeak"]
    membership = Membership.objects.get(user=owner, team=team)
    uploads = [InputSpec(role="reference", upload=SimpleUploadedFile(f"ref{i}.png", PNG, "image/png"))
               for i in range(2)]
    generation = create_generation(membership=membership, provider_id="gateway", model_id="viduq3p-mix-540p",
                                   operation="reference-to-video", prompt="@Image1 meets @Image2 on a pier",
                                   params={"duration": 2, "aspect_ratio": "9:16"}, inputs=uploads)
    generation = drive(generation.pk)
    assert generation.status == "succeeded", generation.error
    assert sandbox.job(generation.provider_job_id)["params"]["references"] == 2
    video = generation.media.get()
    assert (video.width, video.height) == (540, 960)
    assert not any(e["auth"] for e in sandbox.requests() if e["path"].startswith("/media/"))


def test_a_failed_job_keeps_no_progress_and_no_page_shows_a_bar(owner, owner_client, team, sandbox, sandbox_key):
    """The gateway reports FAILURE with progress "100%": the job is over, so it has no progress
    at all, and neither its card, its detail page nor the status partials draw a bar."""
    import re

    from django.urls import reverse

    from accounts.models import Membership
    from generations.engine.poll import poll_one
    from generations.engine.submit import submit
    from generations.services import create_generation

    sandbox.control(duration=600)  # 1 % = 6 s: the 30 % still reads 30 % on a slow machine
    sandbox_key(team, "gateway")
    membership = Membership.objects.get(user=owner, team=team)
    generation = create_generation(membership=membership, provider_id="gateway", model_id="viduq3p-720p",
                                   operation="text-to-video", prompt="a lighthouse at dusk", params={"duration": 5})
    submit(generation.pk)
    generation.refresh_from_db()
    at_fraction(sandbox, generation.provider_job_id, 0.3)
    poll_one(generation.pk)
    generation.refresh_from_db()
    assert (generation.status, generation.progress) == ("running", 30)
    gallery = owner_client.get(reverse("generations:gallery")).content.decode()
    assert "30%" in gallery and "<progress" in gallery           # a running card does show it

    sandbox.job(generation.provider_job_id, state="failed", error="Upstream task failed: quota of the channel.")
    assert sandbox.job(generation.provider_job_id)["phase"] == "failed"
    assert poll_one(generation.pk) == "failed"
    generation.refresh_from_db()
    assert generation.raw_payload["data"]["progress"] == "100%"  # what the gateway said
    assert generation.progress is None
    assert "quota of the channel" in generation.error

    token = f"{generation.public_id}:running-30-0"
    pages = {
        "gallery": owner_client.get(reverse("generations:gallery")),
        "detail": owner_client.get(reverse("generations:detail", args=[generation.public_id])),
        "card status": owner_client.get(reverse("generations:card_status", args=[generation.public_id]),
                                        headers={"HX-Request": "true"}),
        "detail status": owner_client.get(reverse("generations:card_status", args=[generation.public_id]),
                                          {"panel": "detail"}, headers={"HX-Request": "true"}),
        "status batch": owner_client.get(reverse("generations:status_batch"), {"ids": token},
                                         headers={"HX-Request": "true"}),
    }
    for name, response in pages.items():
        html = response.content.decode()
        assert response.status_code in (200, 286), name
        assert "<progress" not in html and not re.search(r"\b(30|100)%", html), name
        assert "Failed" in html, name
