"""The Sealink adapter against its sandbox, over real HTTP on loopback."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from generations.providers.base import (
    CancelResult,
    Credentials,
    Job,
    JobInput,
    ProviderError,
    State,
)
from generations.providers.registry import get_provider
from generations.sandbox import media
from tests.generations.engine.conftest import drive

PROVIDER = get_provider("sealink")
T2V = PROVIDER.get_model("wan2.6-t2v")
I2V = PROVIDER.get_model("wan2.6-i2v")
FLASH = PROVIDER.get_model("wan2.6-i2v-flash")
EDIT = PROVIDER.get_model("happyhorse-1.0-video-edit")
PNG = media.image_bytes(96, 64, "first frame")
MP4 = media.video_bytes(96, 64, "source", 0.5)


@pytest.fixture
def creds(sandbox):
    return Credentials("sk-sealink-test-5678", sandbox.base_url("sealink"))


def make_job(model=T2V, operation="text-to-video", prompt="A serene lake at sunset", inputs=(), webhook_url=None,
             negative_prompt="", **raw):
    params, errors = model.clean_params(operation, raw)
    assert errors == {}
    return Job("gen-1", model, operation, prompt, negative_prompt=negative_prompt, params=params,
               inputs=tuple(inputs), webhook_url=webhook_url)


def at_fraction(sandbox, job_id, fraction):
    found = sandbox.sandbox.jobs.find(job_id)
    found.created_at = time.time() - found.duration * fraction


def finish(sandbox, creds, job_id, model=T2V):
    at_fraction(sandbox, job_id, 1.01)
    return PROVIDER.poll(job_id, creds, model=model)


def test_a_task_walks_pending_running_completed(sandbox, creds):
    submitted = PROVIDER.submit(make_job(), creds)
    assert submitted.job_id.startswith("task_")
    at_fraction(sandbox, submitted.job_id, 0.05)
    pending = PROVIDER.poll(submitted.job_id, creds, model=T2V)
    at_fraction(sandbox, submitted.job_id, 0.5)
    running = PROVIDER.poll(submitted.job_id, creds, model=T2V)
    done = finish(sandbox, creds, submitted.job_id)
    assert (pending.state, pending.provider_status) == (State.QUEUED, "pending (PENDING)")
    assert (running.state, running.provider_status) == (State.RUNNING, "running (RUNNING)")
    assert 0 < running.percent < 100
    assert done.state == State.SUCCEEDED
    assert done.provider_status.startswith("completed")
    assert len(done.outputs) == 1


@pytest.mark.parametrize("placement", ["data", "upstream", "both"])
@pytest.mark.parametrize("shape", ["video_url", "urls", "videos", "list"])
def test_several_outputs_are_read_wherever_sealink_puts_them(sandbox, creds, placement, shape):
    sandbox.control(sealink_result_in=placement, sealink_data_shape=shape)
    submitted = PROVIDER.submit(make_job(n=3, size="640x480", duration=4), creds)
    done = finish(sandbox, creds, submitted.job_id)
    assert done.state == State.SUCCEEDED
    assert len(done.outputs) == 3
    assert len({o.url for o in done.outputs}) == 3
    assert all(o.kind == "video" and "/media/" in o.url for o in done.outputs)
    if placement == "data":
        assert done.cost is None            # no usage: the estimate stands
    else:
        assert done.cost == T2V.estimate({"n": 3, "size": "640x480", "duration": 4}, "text-to-video") == 6_000


def test_a_result_in_both_data_and_upstream_response_is_one_video_charged_once(sandbox, creds):
    """The seed reads ``task.get("data") or task.get("upstream_response")``: when Sealink sends both, with its
    own copy's URL in ``data`` and DashScope's in ``upstream_response``, that is one video, not two."""
    submitted = PROVIDER.submit(make_job(size="1280x720", duration=5), creds)
    sandbox.fault(f"^/sealink/v1/tasks/{submitted.job_id}$", json={
        "id": submitted.job_id, "status": "completed",
        "data": {"video_url": "https://cdn.sealink.example/v/task.mp4"},
        "upstream_response": {"request_id": "r-1", "output": {
            "task_id": "u-1", "task_status": "SUCCEEDED",
            "video_url": "https://dashscope-result.oss.example/u-1.mp4?Expires=1&Signature=x"},
            "usage": {"duration": 5, "size": "1280*720"}}})
    done = PROVIDER.poll(submitted.job_id, creds, model=T2V)
    assert done.state == State.SUCCEEDED
    assert [o.url for o in done.outputs] == ["https://cdn.sealink.example/v/task.mp4"]
    assert done.cost == T2V.estimate({"size": "1280x720", "duration": 5}, "text-to-video") == 5_000


def test_the_videos_are_real_mp4s_on_a_cdn_host_fetched_without_the_key(sandbox, creds):
    submitted = PROVIDER.submit(make_job(size="480x640"), creds)
    [output] = finish(sandbox, creds, submitted.job_id).outputs
    assert PROVIDER.download_headers(output.url, creds) == {}
    response = httpx.get(output.url)
    assert response.status_code == 200
    assert response.content[4:8] == b"ftyp"
    assert response.headers["content-type"] == "video/mp4"


def test_the_request_carries_every_parameter(sandbox, creds):
    submitted = PROVIDER.submit(make_job(n=2, size="1080x1920", duration=12, fps=24, seed=42, tags="sea, dusk",
                                         negative_prompt="blurry, text"), creds)
    params = sandbox.job(submitted.job_id)["params"]
    assert params == {"model": "wan2.6-t2v", "prompt": "A serene lake at sunset", "negative_prompt": "blurry, text",
                      "n": 2, "size": "1080x1920", "duration": 12, "fps": 24, "seed": 42, "tags": ["sea", "dusk"],
                      "has_image": False}


def test_the_price_is_per_second_by_size_times_n():
    assert T2V.estimate({"size": "1920x1080", "duration": 10, "n": 2}, "text-to-video") == 30_000
    assert T2V.estimate({"size": "1280x720", "duration": 5, "n": 1}, "text-to-video") == 5_000
    assert FLASH.estimate({"size": "1280x720", "duration": 5, "n": 1}, "image-to-video") == 2_500
    assert EDIT.estimate({"resolution": "640x480", "duration": 5}, "video-edit") == 3_000


def test_the_schema_refuses_what_sealink_does_not_offer():
    _, errors = T2V.clean_params("text-to-video", {"n": 5, "size": "800x600", "duration": 61, "fps": 0})
    assert errors == {"n": "Must be at most 4.", "size": errors["size"], "duration": "Must be at most 60.",
                      "fps": "Must be at least 1."}
    assert errors["size"].startswith("Choose one of: 1920x1080")
    assert T2V.negative_prompt_max_length == 1024


def test_a_too_long_negative_prompt_never_reaches_sealink(sandbox, creds):
    with pytest.raises(ProviderError) as refused:
        PROVIDER.submit(make_job(negative_prompt="x" * 1025), creds)
    assert "1024 characters" in refused.value.message
    assert sandbox.requests() == []


# -- templates ----------------------------------------------------------------


def test_a_template_needs_no_prompt_and_renders_with_its_variables(sandbox, creds):
    assert T2V.prompt_required_for("text-to-video") is True
    assert T2V.prompt_required_for("template-to-video") is False
    job = make_job(operation="template-to-video", prompt="", template_id="tpl_sunset",
                   variables="place = mountain lake\nmood=violet")
    assert job.params["variables"] == "place=mountain lake\nmood=violet"
    submitted = PROVIDER.submit(job, creds)
    sent = sandbox.job(submitted.job_id)
    assert sent["params"]["template_id"] == "tpl_sunset"
    assert sent["params"]["variables"] == {"place": "mountain lake", "mood": "violet"}
    assert "prompt" not in sent["params"]
    assert sent["prompt"] == "A serene mountain lake at sunset, camera slowly panning across the water, violet light"
    assert finish(sandbox, creds, submitted.job_id).state == State.SUCCEEDED


def test_template_variables_may_be_json(sandbox, creds):
    job = make_job(operation="template-to-video", prompt="", template_id="tpl_product",
                   variables='{"product": "teapot", "surface": 3}')
    assert job.params["variables"] == "product=teapot\nsurface=3"
    submitted = PROVIDER.submit(job, creds)
    assert sandbox.job(submitted.job_id)["prompt"].startswith("A teapot rotating slowly on a 3 turntable")


@pytest.mark.parametrize(("raw", "message"), [
    ("place lake", "Line 1 is not name=value: 'place lake'."),
    ('{"place": ', "This looks like JSON but is not valid"),
    ('["place"]', "Give a JSON object of name: value pairs."),
    ("9lives=yes", "'9lives' is not a variable name"),
    ("a=1\na=2", "The variable 'a' is given twice."),
    ('{"place": {"deep": 1}}', "The value of 'place' must be text or a number."),
])
def test_bad_template_variables_are_explained(raw, message):
    _, errors = T2V.clean_params("template-to-video", {"template_id": "tpl_sunset", "variables": raw})
    assert errors["variables"].startswith(message)


def test_an_unknown_template_is_a_404_that_names_it(sandbox, creds):
    with pytest.raises(ProviderError) as refused:
        PROVIDER.submit(make_job(operation="template-to-video", prompt="", template_id="tpl_nowhere",
                                 variables="place=x"), creds)
    assert refused.value.status_code == 404
    assert refused.value.retryable is False
    assert "tpl_nowhere" in refused.value.message
    assert refused.value.message.startswith("Sealink has no prompt template 'tpl_nowhere'")


def test_a_missing_template_variable_comes_back_in_sealinks_words(sandbox, creds):
    with pytest.raises(ProviderError) as refused:
        PROVIDER.submit(make_job(operation="template-to-video", prompt="", template_id="tpl_sunset",
                                 variables="mood=blue"), creds)
    assert (refused.value.status_code, refused.value.message) == (
        400, "Template 'tpl_sunset' needs the variable 'place'.")


# -- image to video, video edit -----------------------------------------------


@pytest.mark.parametrize("model", [I2V, FLASH])
def test_image_to_video_sends_the_first_frame_inline(sandbox, creds, model):
    assert [slot.role for slot in model.inputs_for("image-to-video")] == ["first_frame"]
    submitted = PROVIDER.submit(make_job(model=model, operation="image-to-video", prompt="the boat drifts",
                                         inputs=[JobInput("first_frame", "image/png", PNG)]), creds)
    sent = sandbox.job(submitted.job_id)
    assert sent["params"]["model"] == model.id
    assert sent["params"]["has_image"] is True
    assert finish(sandbox, creds, submitted.job_id, model).state == State.SUCCEEDED


def test_a_frame_that_is_not_an_image_is_refused_in_sealinks_words(sandbox, creds):
    with pytest.raises(ProviderError) as refused:
        PROVIDER.submit(make_job(model=I2V, operation="image-to-video",
                                 inputs=[JobInput("first_frame", "image/png", b"GIF89a not really")]), creds)
    assert (refused.value.status_code, refused.value.message) == (400, "image is not a PNG, JPEG or WebP image.")


def test_a_video_edit_sends_the_source_video_and_the_instruction(sandbox, creds):
    assert [slot.role for slot in EDIT.inputs_for("video-edit")] == ["source_video"]
    submitted = PROVIDER.submit(make_job(model=EDIT, operation="video-edit", prompt="Change the background to a beach",
                                         resolution="640x480", duration=3, seed=7,
                                         inputs=[JobInput("source_video", "video/mp4", MP4)]), creds)
    sent = sandbox.job(submitted.job_id)
    assert sent["params"] == {"model": "happyhorse-1.0-video-edit", "prompt": "Change the background to a beach",
                              "resolution": "640x480", "duration": 3, "seed": 7, "video_bytes": len(MP4)}
    done = finish(sandbox, creds, submitted.job_id, EDIT)
    assert done.state == State.SUCCEEDED
    assert len(done.outputs) == 1
    assert any(entry["path"] == "/sealink/v1/video/edits" for entry in sandbox.requests())


# -- failures, the UNKNOWN task, cancel ---------------------------------------


def test_moderation_fails_with_dashscopes_words(sandbox, creds):
    submitted = PROVIDER.submit(make_job(prompt="a lake [moderate]"), creds)
    done = finish(sandbox, creds, submitted.job_id)
    assert done.state == State.FAILED
    assert done.error == "Input data may contain inappropriate content."
    assert done.provider_status == "failed (FAILED)"


def test_a_task_dashscope_lost_keeps_running_until_the_deadline(sandbox, creds):
    submitted = PROVIDER.submit(make_job(), creds)
    sandbox.job(submitted.job_id, state="vanished")
    progress = PROVIDER.poll(submitted.job_id, creds, model=T2V)
    assert (progress.state, progress.provider_status) == (State.RUNNING, "running (UNKNOWN)")


def test_a_task_dashscope_lost_fails_honestly_when_sealink_says_failed(sandbox, creds):
    sandbox.control(sealink_unknown_status="failed")
    submitted = PROVIDER.submit(make_job(), creds)
    sandbox.job(submitted.job_id, state="vanished")
    progress = PROVIDER.poll(submitted.job_id, creds, model=T2V)
    assert progress.state == State.FAILED
    assert progress.error.startswith("DashScope no longer knows this task (UNKNOWN)")


def test_an_unknown_status_defers_to_dashscopes_task_status(sandbox, creds):
    submitted = PROVIDER.submit(make_job(), creds)
    sandbox.job(submitted.job_id, raw_status="warming_up")
    at_fraction(sandbox, submitted.job_id, 0.01)
    progress = PROVIDER.poll(submitted.job_id, creds, model=T2V)
    assert (progress.state, progress.provider_status) == (State.QUEUED, "warming_up (PENDING)")


def test_an_unknown_status_with_no_dashscope_word_keeps_the_task_running(sandbox, creds):
    sandbox.control(sealink_result_in="data")
    submitted = PROVIDER.submit(make_job(), creds)
    sandbox.job(submitted.job_id, raw_status="settling")
    progress = finish(sandbox, creds, submitted.job_id)
    assert (progress.state, progress.provider_status) == (State.RUNNING, "settling")


def test_a_pending_task_is_cancelled(sandbox, creds):
    submitted = PROVIDER.submit(make_job(), creds)
    at_fraction(sandbox, submitted.job_id, 0.01)
    outcome = PROVIDER.cancel(submitted.job_id, creds, model=T2V)
    assert outcome.result == CancelResult.CANCELLED
    progress = PROVIDER.poll(submitted.job_id, creds, model=T2V)
    assert progress.state == State.CANCELLED
    assert "CANCELED" in progress.provider_status


def test_a_running_task_is_too_late_to_cancel(sandbox, creds):
    submitted = PROVIDER.submit(make_job(), creds)
    at_fraction(sandbox, submitted.job_id, 0.5)
    outcome = PROVIDER.cancel(submitted.job_id, creds, model=T2V)
    assert outcome.result == CancelResult.TOO_LATE
    assert "already started" in outcome.message
    assert PROVIDER.poll(submitted.job_id, creds, model=T2V).state == State.RUNNING


def test_a_finished_task_answers_400_and_reads_too_late(sandbox, creds):
    submitted = PROVIDER.submit(make_job(), creds)
    finish(sandbox, creds, submitted.job_id)
    outcome = PROVIDER.cancel(submitted.job_id, creds, model=T2V)
    assert outcome.result == CancelResult.TOO_LATE
    assert "already completed" in outcome.message


def test_a_video_edit_cannot_be_cancelled_and_says_so(sandbox, creds):
    submitted = PROVIDER.submit(make_job(model=EDIT, operation="video-edit", prompt="make it blue",
                                         inputs=[JobInput("source_video", "video/mp4", MP4)]), creds)
    at_fraction(sandbox, submitted.job_id, 0.01)
    outcome = PROVIDER.cancel(submitted.job_id, creds, model=EDIT)
    assert outcome.result == CancelResult.NOT_SUPPORTED
    assert outcome.message.startswith("Sealink cannot cancel tasks of this model")


# -- errors and rate limits -----------------------------------------------------


@pytest.mark.parametrize(("key", "status"), [("invalid", 401), ("broke", 402)])
def test_key_problems_are_permanent_errors_in_sealinks_envelope(sandbox, key, status):
    with pytest.raises(ProviderError) as refused:
        PROVIDER.submit(make_job(), Credentials(key, sandbox.base_url("sealink")))
    assert (refused.value.status_code, refused.value.retryable) == (status, False)
    assert refused.value.code in ("authentication_error", "insufficient_quota")


def test_a_server_error_is_retryable(sandbox, creds):
    sandbox.fault("^/sealink/v1/tasks/", status=502, message="Upstream DashScope is unavailable.")
    submitted = PROVIDER.submit(make_job(), creds)
    with pytest.raises(ProviderError) as refused:
        PROVIDER.poll(submitted.job_id, creds, model=T2V)
    assert (refused.value.message, refused.value.retryable) == ("Upstream DashScope is unavailable.", True)


def test_the_rate_limit_answers_429_with_retry_after_and_ratelimit_headers(sandbox):
    sandbox.control(sealink_rpm=1)
    limited = Credentials("sk-sealink-limited", sandbox.base_url("sealink"))
    PROVIDER.submit(make_job(), limited)
    raw = httpx.post(f"{limited.base_url}/v1/video/generations", json={"model": "wan2.6-t2v", "prompt": "x"},
                     headers={"Authorization": f"Bearer {limited.api_key}"})
    assert raw.status_code == 429
    assert raw.headers["X-RateLimit-Limit-Requests"] == "1"
    assert raw.headers["X-RateLimit-Remaining-Requests"] == "0"
    assert int(raw.headers["Retry-After"]) > 0
    with pytest.raises(ProviderError) as refused:
        PROVIDER.submit(make_job(), limited)
    assert (refused.value.status_code, refused.value.retryable) == (429, True)
    assert 0 < refused.value.retry_after <= 61


def test_without_retry_after_the_ratelimit_reset_header_says_when(sandbox, creds):
    sandbox.fault("^/sealink/v1/video/generations$", status=429, message="Too many requests.",
                  headers={"X-RateLimit-Reset-Requests": "6m0s"})
    with pytest.raises(ProviderError) as refused:
        PROVIDER.submit(make_job(), creds)
    assert (refused.value.message, refused.value.retry_after) == ("Too many requests.", 360)


# -- webhooks -------------------------------------------------------------------


def test_an_https_webhook_url_is_sent_and_an_http_one_is_not(sandbox, creds):
    https = PROVIDER.submit(make_job(webhook_url="https://kiln.example/hooks/sealink/tok/"), creds)
    plain = PROVIDER.submit(make_job(webhook_url="http://kiln.example/hooks/sealink/tok/"), creds)
    assert sandbox.job(https.job_id)["params"]["webhook_url"] == "https://kiln.example/hooks/sealink/tok/"
    assert "webhook_url" not in sandbox.job(plain.job_id)["params"]


def test_the_sandbox_refuses_a_plain_http_webhook_like_sealink(sandbox, creds):
    response = httpx.post(f"{creds.base_url}/v1/video/generations",
                          json={"model": "wan2.6-t2v", "prompt": "x", "webhook_url": "http://example.com/hook"},
                          headers={"Authorization": f"Bearer {creds.api_key}"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "webhook_url must be an https URL."


def test_the_sandbox_calls_the_webhook_when_the_task_completes(sandbox, creds):
    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sandbox.control(sealink_http_webhooks=True, duration=0.3)
        hook = f"http://127.0.0.1:{server.server_address[1]}/hooks/sealink/abc/"
        response = httpx.post(f"{creds.base_url}/v1/video/generations",
                              json={"model": "wan2.6-t2v", "prompt": "x", "webhook_url": hook},
                              headers={"Authorization": f"Bearer {creds.api_key}"})
        task_id = response.json()["id"]
        stop = time.monotonic() + 5
        while not received and time.monotonic() < stop:
            time.sleep(0.05)
    finally:
        server.shutdown()
        server.server_close()
    assert received == [{"id": task_id, "object": "event", "type": "video.task.completed", "status": "completed",
                         "created_at": received[0]["created_at"]}]
    assert sandbox.job(task_id)["extra"]["webhook"]["status_code"] == 204


# -- end to end: the engine, from the service to stored media --------------------------




@pytest.fixture
def generate(owner, team, sandbox, sandbox_key):
    from accounts.models import Membership
    from generations.services import create_generation

    sandbox.control(duration=0.3)
    sandbox_key(team, "sealink")
    membership = Membership.objects.get(user=owner, team=team)

    def generate(model_id="wan2.6-t2v", operation="text-to-video", prompt="A serene lake at sunset", inputs=(),
                 **params):
        return create_generation(membership=membership, provider_id="sealink", model_id=model_id,
                                 operation=operation, prompt=prompt, params=params, inputs=inputs)
    return generate


def test_several_videos_attach_to_one_generation(generate):
    generation = drive(generate(n=3, size="640x480", duration=2).pk)
    assert generation.status == "succeeded", generation.error
    assert [(m.position, m.kind, m.width, m.height) for m in generation.media.all()] == [
        (0, "video", 640, 480), (1, "video", 640, 480), (2, "video", 640, 480)]


def test_a_template_generation_runs_without_a_prompt(generate):
    generation = drive(generate(operation="template-to-video", prompt="", template_id="tpl_sunset",
                                variables="place=fjord", duration=2).pk)
    assert generation.status == "succeeded", generation.error


def test_an_unknown_template_fails_the_generation_naming_it(generate):
    generation = drive(generate(operation="template-to-video", prompt="", template_id="tpl_gone",
                                variables="place=fjord").pk)
    assert generation.status == "failed"
    assert "tpl_gone" in generation.error


def test_a_gallery_video_is_edited_into_a_new_one(generate):
    from generations.services import InputSpec

    source = drive(generate(size="640x480", duration=2).pk)
    edit = drive(generate(model_id="happyhorse-1.0-video-edit", operation="video-edit",
                          prompt="Change the background to a beach sunset", resolution="480x640", duration=2,
                          inputs=[InputSpec(role="source_video", source_media=source.media.get())]).pk)
    assert edit.status == "succeeded", edit.error
    assert edit.inputs.get().source_media == source.media.get()
    assert edit.media.get().height == 640
