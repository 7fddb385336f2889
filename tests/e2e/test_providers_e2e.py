"""Browser: one job per provider (Shark, ShuttleAI, Sealink, gateway), submitted from the
studio against the sandbox providers, each reaching "Succeeded" in the gallery with its
video shown: a thumbnail on the card, a poster on the detail page, and it plays.

Each provider runs an operation of its own, so the studio's inputs are exercised too:
Shark image-to-video with an uploaded first frame, ShuttleAI Sora text-to-video, a
Sealink prompt template with variables, and a gateway Vidu first-and-last-frame job
with two uploads.

Signed in through the real form (R1's ``page``/``login``/``shot`` fixtures); the engine
runs as in the studio's browser test (``eager_tasks`` + ``run_engine_until``: submit and
download on commit, the test being the beat). Screenshots go to $KILN_SHOTS_DIR
(default /tmp/shots-e2e).
"""

import io

import pytest
from django.utils import timezone
from PIL import Image

from generations.models import IN_FLIGHT, Generation, Status
from tests.conftest import PASSWORD
from tests.e2e.test_studio_e2e import choose_model, eager_tasks, run_engine_until, wait_until  # noqa: F401 (fixture)

pytestmark = pytest.mark.e2e


def frame(color: tuple[int, int, int]) -> dict:
    """A real PNG, as a file chooser would hand it to the page."""
    buffer = io.BytesIO()
    Image.new("RGB", (640, 360), color).save(buffer, format="PNG")
    return {"name": f"frame-{color[0]}.png", "mimeType": "image/png", "buffer": buffer.getvalue()}


JOBS = {
    "shark": {"model": "shark:alibaba/wan-2.7", "operation": "image-to-video", "field": "resolution",
              "prompt": "The teapot turns slowly on the wheel", "select": {"resolution": "480p"},
              "files": {"first_frame": [frame((200, 90, 40))]}, "label": "Wan 2.7", "inputs": 1},
    "shuttleai": {"model": "shuttleai:sora", "operation": "text-to-video", "field": "n_seconds",
                  "prompt": "A paper boat drifting on a pond, morning mist", "label": "Sora", "inputs": 0},
    "sealink": {"model": "sealink:wan2.6-t2v", "operation": "template-to-video", "field": "template_id",
                "prompt": "", "fill": {"template_id": "tpl_sunset", "variables": "place=Lisbon"},
                "label": "Wan 2.6", "inputs": 0},
    "gateway": {"model": "gateway:viduq3p-540p", "operation": "first-last-frame", "field": "first_frame",
                "prompt": "From a sunset orange to an ocean blue",
                "files": {"first_frame": [frame((230, 120, 40))], "last_frame": [frame((40, 90, 200))]},
                "label": "Vidu", "inputs": 2},
}


@pytest.mark.parametrize("provider_id", list(JOBS))
def test_a_job_from_the_studio_succeeds_in_the_gallery_and_its_video_plays(
        page, live_server, login, shot, transactional_db, team, owner, sandbox, sandbox_key, eager_tasks,  # noqa: F811
        provider_id):
    job = JOBS[provider_id]
    sandbox.control(duration=1.0)
    sandbox_key(team, provider_id)
    login(page, live_server, owner.email, PASSWORD)

    # The studio: the model, its mode, the prompt, the settings and the uploads.
    page.goto("/")
    page.wait_for_selector("#studio-form")
    if page.input_value("#studio-model") != job["model"]:  # see choose_model
        page.select_option("#studio-model", job["model"])
    model_id = job["model"].split(":", 1)[1]
    page.wait_for_selector(f"#studio-fieldset .model-meta code:text-is('{model_id}')")
    if page.locator(f".op-tab input[value='{job['operation']}']").count():
        page.click(f".op-tab:has(input[value='{job['operation']}'])")
    page.wait_for_selector(f"#studio-fieldset [name={job['field']}]")
    page.wait_for_load_state("networkidle")
    page.fill("#id_prompt", job["prompt"])
    for name, value in job.get("fill", {}).items():
        page.fill(f"#studio-form [name={name}]", value)
    for name, value in job.get("select", {}).items():
        page.select_option(f"#studio-form [name={name}]", value)
    for name, files in job.get("files", {}).items():
        page.set_input_files(f"#studio-form input[type=file][name={name}]", files)
    page.click(".studio-submit")
    page.wait_for_selector("#gallery-grid [data-card]")
    assert not page.locator("#studio-form .error, #studio-form .form-errors").count(), \
        page.locator("#studio-form .error, #studio-form .form-errors").all_inner_texts()

    # The card goes live and finishes without a reload. The sandbox job takes 1 s, but
    # a video model's first poll is 5-10 s away: once it is done, make the poll due now,
    # as a provider's webhook would, so the test does not sit out the interval.
    page.wait_for_timeout(1_200)
    Generation.objects.filter(status__in=IN_FLIGHT).update(next_poll_at=timezone.now())
    run_engine_until(page, "() => document.querySelector('#gallery-grid [data-card].status-succeeded') !== null",
                     timeout=60_000)
    generation = Generation.objects.get()
    assert (generation.provider, generation.operation, generation.status) == (
        provider_id, job["operation"], Status.SUCCEEDED)
    assert generation.inputs.count() == job["inputs"]
    media = generation.media.get()
    assert media.kind == "video"

    # The gallery: the card of this provider, succeeded, its thumbnail loaded, marked as a video.
    page.goto(f"/gallery/?provider={provider_id}")
    card = page.locator(f"#card-{generation.public_id}")
    assert "status-succeeded" in card.get_attribute("class")
    assert job["label"] in card.locator(".card-model").inner_text()
    assert card.locator(".play-badge").count() == 1
    wait_until(page, f"() => document.querySelector('#card-{generation.public_id} .card-media img').naturalWidth > 0")
    shot(page, f"providers-{provider_id}-gallery")

    # The detail page: a poster, and the video plays.
    page.goto(f"/g/{generation.public_id}/")
    video = page.locator("video.player")
    poster = video.get_attribute("poster")
    assert poster
    answer = page.request.get(poster)
    assert answer.ok and answer.headers["content-type"].startswith("image/")
    page.evaluate("() => { const v = document.querySelector('video.player'); v.muted = true; return v.play(); }")
    wait_until(page, "() => document.querySelector('video.player').currentTime > 0.3", timeout=15_000)
    shot(page, f"providers-{provider_id}-playing")
    assert not page.problems, page.problems
