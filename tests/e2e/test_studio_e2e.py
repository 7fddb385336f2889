"""Browser: from the studio, submit an image (GPT Image 2) and a video (Wan 2.7) to the
sandbox providers; both cards appear without a page reload and finish; the video plays.

The engine runs in-process, for real: submit and download tasks run eagerly (on
commit, as a worker would run them), and the test calls the engine's ``poll_due()``
every half second in place of the beat. Screenshots go to
/tmp/shots-r5/ (KILN_SHOTS_DIR to change it).
"""

import logging
import os
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from playwright.sync_api import expect

from accounts.credits.models import Wallet
from generations.engine.poll import poll_due
from generations.models import Generation, Status
from tests.generations.studio.conftest import GPT_IMAGE, WAN

pytestmark = pytest.mark.e2e

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
logger = logging.getLogger(__name__)

SHOTS = Path(os.environ.get("KILN_SHOTS_DIR", "/tmp/shots-r5"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="session", autouse=True)
def _live_server_media_url():
    """The live server's static handler cannot take MEDIA_URL=None (Kiln never serves
    media from a directory): give it a path no URL uses."""
    if django_settings.MEDIA_URL is None:
        django_settings.MEDIA_URL = "/__media-is-never-served-from-a-directory__/"


@pytest.fixture(scope="module")
def studio_browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(executable).exists():
        pytest.skip(f"no Chromium at {executable}")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def eager_tasks():
    """Submit and download run eagerly, on commit, as a worker would run them at once."""
    from tests.brokers import celery_conf

    with celery_conf(task_always_eager=True):
        yield


def run_engine_until(page, script, timeout=120_000):
    """Be the beat: call the engine's ``poll_due()`` every half second until ``script`` (a JS
    function evaluated in the page) is true. From the test's own thread, so SQLite's
    in-memory test database is shared with the live server as Django arranges it."""
    deadline = time.monotonic() + timeout / 1000
    while True:
        poll_due()
        if page.evaluate(script):
            return
        if time.monotonic() > deadline:
            states = list(Generation.objects.values_list("model", "status", "error", "next_poll_at"))
            raise AssertionError(f"timed out waiting for {script}; generations: {states}")
        page.wait_for_timeout(500)


@pytest.fixture
def member_page(studio_browser, live_server, transactional_db, owner):
    client = Client()
    client.force_login(owner)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
    context = studio_browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 920})
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    page = context.new_page()
    problems = []
    page.on("console", lambda msg: problems.append(msg.text)
            if msg.type == "error" and "status of 422" not in msg.text else None)  # 422: a form with errors
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and r.status != 422 and "favicon" not in r.url else None)
    page.problems = problems  # console errors (CSP violations included) and failed requests
    yield page
    context.close()


def shot(page, name):
    """A screenshot. caret="initial": Playwright's caret hiding leaves style="" on inputs,
    which htmx then copies while settling a swap, and the CSP rightly reports."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False, caret="initial")


def wait_until(page, script, timeout=10_000):
    """Poll ``script`` (a JS function) with page.evaluate: CSP forbids the eval behind wait_for_function."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(script):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {script}")
        page.wait_for_timeout(200)


def choose_model(page, value, expect_field):
    """Pick a model as a person does and wait for its fields (``expect_field`` is one the
    model shown before lacks). The model already shown is left alone: picking it again
    re-renders the same fields, and under load the test typed into a prompt that the late
    answer then replaced."""
    if page.input_value("#studio-model") != value:
        page.select_option("#studio-model", value)
    page.wait_for_selector(f"#studio-fieldset [name={expect_field}]")
    page.wait_for_load_state("networkidle")


def test_an_image_and_a_video_from_the_studio_finish_and_the_video_plays(member_page, sandbox_key, team, owner,
                                                                         eager_tasks, sandbox):
    sandbox.control(duration=1.5)
    sandbox_key(team, "shark")
    page = member_page
    page.goto("/")
    page.wait_for_selector("#studio-form")
    page.evaluate("window.__sameDocument = true")
    shot(page, "01-studio")

    # The image: GPT Image 2, two results, high quality.
    choose_model(page, GPT_IMAGE, "quality")
    page.fill("#id_prompt", "A ceramic teapot with a celadon glaze, studio light")
    page.fill("#id_n", "2")
    page.select_option("#id_quality", "high")
    wait_until(page, "() => document.querySelector('#studio-estimate .estimate-credits').textContent.trim() !== ''")
    shot(page, "02-image-filled")
    page.click(".studio-submit")
    page.wait_for_selector("#gallery-grid [data-card]", timeout=10_000)

    # The video: Wan 2.7, text to video.
    choose_model(page, WAN, "resolution")
    assert page.input_value("#id_prompt") == "A ceramic teapot with a celadon glaze, studio light"  # kept across models
    page.fill("#id_prompt", "Waves rolling onto a black sand beach at dusk")
    page.select_option("#id_resolution", "480p")
    shot(page, "03-video-filled")
    page.click(".studio-submit")
    expect(page.locator("#gallery-grid [data-card]")).to_have_count(2)
    shot(page, "04-submitted")

    assert page.evaluate("window.__sameDocument") is True  # no page reload
    assert Generation.objects.count() == 2
    wallet = Wallet.objects.get(membership__user=owner, membership__team=team)
    assert wallet.reserved + wallet.available < 1_000_000 or wallet.reserved > 0

    # Both finish, live.
    run_engine_until(page, "() => document.querySelectorAll('#gallery-grid [data-card].status-succeeded').length === 2")
    page.wait_for_selector("#gallery-grid [data-card] img", timeout=10_000)
    page.wait_for_load_state("networkidle")
    shot(page, "05-finished")
    assert set(Generation.objects.values_list("status", flat=True)) == {Status.SUCCEEDED}
    assert page.evaluate("window.__sameDocument") is True

    # Open the video and play it.
    video = Generation.objects.get(model="alibaba/wan-2.7")
    page.goto(f"/g/{video.public_id}/")
    page.wait_for_selector("video")
    page.evaluate("() => { const v = document.querySelector('video'); v.muted = true; return v.play(); }")
    wait_until(page, "() => document.querySelector('video').currentTime > 0.3", timeout=15_000)
    shot(page, "06-video-playing")
    assert not page.problems, page.problems


def test_errors_show_in_the_form_before_anything_is_spent(member_page, sandbox_key, team, owner, sandbox):
    sandbox_key(team, "shark")
    page = member_page
    page.goto("/")
    choose_model(page, GPT_IMAGE, "quality")
    page.fill("#id_prompt", "")
    page.fill("#id_n", "9")
    page.click(".studio-submit")
    page.wait_for_selector("#studio-form .field.has-error")
    text = page.inner_text("#studio-form")
    assert "Must be at most 4." in text
    assert "This field is required." in text
    shot(page, "07-errors")
    assert Generation.objects.count() == 0

    # Fixed, it goes through with the same form.
    page.fill("#id_prompt", "A lantern in the fog")
    page.fill("#id_n", "1")
    page.click(".studio-submit")
    page.wait_for_selector("#gallery-grid [data-card]", timeout=10_000)
    assert Generation.objects.count() == 1
    assert not page.problems, page.problems


def test_enter_in_a_field_generates_again_after_the_first_result(member_page, sandbox_key, team, owner, sandbox):
    """After a submit the form comes back through htmx. Its no-JS "Use this model" fallback
    (a <noscript> submit button) must not come back live: Enter would press it and GET the
    whole page, token and prompt in the URL, into the results grid."""
    sandbox_key(team, "shark")
    page = member_page
    page.goto("/")
    choose_model(page, GPT_IMAGE, "quality")
    page.fill("#id_prompt", "A paper lantern")
    page.click(".studio-submit")
    page.wait_for_selector("#gallery-grid [data-card]")
    page.wait_for_load_state("networkidle")
    assert page.locator("#studio-form noscript, #studio-form button[formmethod=get]").count() == 0

    page.fill("#id_prompt", "A paper lantern, at night")
    page.focus("#id_n")
    page.keyboard.press("Enter")
    expect(page.locator("#gallery-grid [data-card]")).to_have_count(2)
    page.wait_for_load_state("networkidle")
    assert "csrfmiddlewaretoken" not in page.url and "prompt=" not in page.url
    assert page.locator("#gallery-grid header, #gallery-grid #studio-form").count() == 0
    assert sorted(Generation.objects.values_list("prompt__text", flat=True)) == [
        "A paper lantern", "A paper lantern, at night"]
    assert not page.problems, page.problems


def test_a_resized_prompt_box_comes_back_without_a_csp_violation(member_page, sandbox_key, team, owner, sandbox):
    """Dragging a textarea's corner gives it a style attribute; htmx used to copy such
    attributes onto the swapped-in form while it settled, which the CSP (no inline styles)
    refuses, with a console error per field and per submit."""
    sandbox_key(team, "shark")
    page = member_page
    page.goto("/")
    choose_model(page, GPT_IMAGE, "quality")
    page.fill("#id_prompt", "A paper lantern")
    page.evaluate("() => { document.querySelector('#id_prompt').style.height = '220px'; }")  # as a drag does
    page.click(".studio-submit")
    page.wait_for_selector("#gallery-grid [data-card]")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)  # past htmx's settle delay
    assert not page.problems, page.problems


def test_the_model_and_mode_are_locked_while_a_submit_is_in_flight(member_page, sandbox_key, team, owner, sandbox):
    """Changing the model while the POST is out would be undone by its answer (which re-renders the
    form for the submitted model): the picker and the button are disabled until the answer is in."""
    sandbox_key(team, "shark")
    page = member_page
    page.goto("/")
    choose_model(page, WAN, "resolution")
    page.fill("#id_prompt", "A kite over the dunes")
    held = []
    page.route("**/studio/generate/", lambda route: held.append(route))
    page.click(".studio-submit")
    deadline = time.monotonic() + 10
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert held, "the submit never left"
    assert page.is_disabled(".studio-submit")
    assert page.is_disabled("#studio-model")
    assert page.locator(".op-tabs input").count() >= 2
    assert all(page.locator(".op-tabs input").nth(i).is_disabled() for i in range(page.locator(".op-tabs input").count()))

    held[0].continue_()
    page.wait_for_selector("#gallery-grid [data-card]", timeout=10_000)
    page.wait_for_load_state("networkidle")
    assert not page.is_disabled("#studio-model") and not page.is_disabled(".studio-submit")
    assert page.input_value("#studio-model") == WAN
    assert Generation.objects.get().model == WAN.split(":", 1)[1]
    assert not page.problems, page.problems


def test_the_picker_fills_the_first_frame_from_the_gallery(member_page, sandbox_key, team, owner, sandbox):
    from tests.generations.studio.conftest import make_gallery_media

    sandbox_key(team, "shark")
    media = make_gallery_media(team, owner)
    page = member_page
    page.goto("/")
    choose_model(page, WAN, "resolution")
    page.click(".op-tab:has-text('Image to video')")
    page.wait_for_selector("#slot-first_frame")
    page.click("#slot-first_frame >> text=Pick from the gallery")
    page.wait_for_selector("#studio-picker[open] .picker-item")
    shot(page, "08-picker")
    page.click(".picker-item")
    page.wait_for_selector("#slot-first_frame .slot-picked img")
    wait_until(page, "() => !document.querySelector('#studio-picker').open")
    assert page.input_value("#id_first_frame_media") == str(media.public_id)
    page.fill("#id_prompt", "The pot starts to spin on the wheel")
    shot(page, "09-first-frame-picked")
    page.click(".studio-submit")
    expect(page.locator("#gallery-grid [data-card]")).to_have_count(2)
    made = Generation.objects.exclude(pk=media.generation_id).get()
    assert made.operation == "image-to-video"
    assert made.inputs.get().source_media == media
    assert not page.problems, page.problems


@pytest.mark.parametrize("model, field", [
    ("shuttleai:sora", "n_seconds"),
    ("sealink:wan2.6-t2v", "size"),
    ("gateway:viduq3p-540p", "aspect_ratio"),
])
def test_each_provider_runs_a_job_from_the_studio_to_the_gallery(member_page, sandbox_key, team, eager_tasks, sandbox,
                                                                 model, field):
    sandbox.control(duration=1.0)
    provider_id = model.split(":")[0]
    sandbox_key(team, provider_id)
    page = member_page
    page.goto("/")
    choose_model(page, model, field)
    page.fill("#id_prompt", f"A paper boat on a pond, made with {provider_id}")
    page.click(".studio-submit")
    expect(page.locator("#gallery-grid [data-card]")).to_have_count(1)
    run_engine_until(page, "() => document.querySelector('#gallery-grid [data-card].status-succeeded') !== null")
    shot(page, f"10-{provider_id}-finished")
    generation = Generation.objects.get()
    assert (generation.provider, generation.status) == (provider_id, Status.SUCCEEDED)
    assert generation.media.exists()
    assert not page.problems, page.problems


def test_remix_opens_the_studio_prefilled_and_the_new_result_remembers_its_origin(
        member_page, sandbox_key, team, owner, eager_tasks, sandbox):
    """Remix round trip: detail page → studio prefilled with the same model, prompt and
    parameters → submit a change → the new result's lineage names the original, and
    the original's lists the remix."""
    sandbox.control(duration=1.0)
    sandbox_key(team, "shark")
    page = member_page
    page.goto("/")
    choose_model(page, WAN, "resolution")
    page.fill("#id_prompt", "A lighthouse in a storm, waves crashing")
    page.select_option("#id_resolution", "480p")
    page.click(".studio-submit")
    expect(page.locator("#gallery-grid [data-card]")).to_have_count(1)
    run_engine_until(page, "() => document.querySelectorAll('#gallery-grid [data-card].status-succeeded').length === 1")
    original = Generation.objects.get()

    page.goto(f"/g/{original.public_id}/")
    page.click("a.button:has-text('Remix')")
    page.wait_for_selector("#studio-form")
    assert page.input_value("#studio-model") == WAN
    assert page.input_value("#id_prompt") == "A lighthouse in a storm, waves crashing"
    assert page.input_value("#id_resolution") == "480p"
    shot(page, "11-remix-prefilled")

    page.fill("#id_prompt", "A lighthouse in a storm, waves crashing, at night")
    page.click(".studio-submit")
    expect(page.locator("#gallery-grid [data-card]")).to_have_count(2)
    run_engine_until(page, "() => document.querySelectorAll('#gallery-grid [data-card].status-succeeded').length >= 2")
    remix = Generation.objects.exclude(pk=original.pk).get()
    assert (remix.parent_id, remix.parent_relation, remix.model) == (original.pk, "remix", original.model)
    assert remix.params["resolution"] == "480p"

    page.goto(f"/g/{remix.public_id}/")
    lineage = page.locator(".lineage")
    expect(lineage).to_contain_text("A lighthouse in a storm, waves crashing")
    page.goto(f"/g/{original.public_id}/")
    expect(page.locator(".lineage")).to_contain_text("at night")
    shot(page, "12-remix-lineage")
    assert not page.problems, page.problems
