"""Browser: a studio that keeps your work (issue 16, points 6-8).

- A prompt pasted longer than the model takes is kept whole, the counter says by how much it
  is over, and Generate is answered with a message (nothing cut, nothing lost).
- The draft (model, mode, prompt, parameters, files picked from the gallery, compare ticks)
  survives a reload, a model switch and a submit; what is typed while the fields are being
  swapped is kept; an upload survives every swap, and after a reload the slot says it must be
  chosen again. Ctrl/Cmd+Enter generates. Signing out forgets the draft.
- A member with 0 credits sees Generate off, why, and the owners and admins to ask.

Screenshots at 1280 px and 390 px go to /tmp/shots-studio16/ (KILN_SHOTS_DIR to change it).
"""

import os
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from accounts.credits.services import grant, wallet_for
from accounts.models import Membership, Role
from generations.models import Generation, InputMedia
from generations.services import create_generation
from tests.conftest import PASSWORD, make_member
from tests.e2e.test_studio_e2e import choose_model
from tests.generations.studio.conftest import GPT_IMAGE, WAN, make_gallery_media, png_bytes

SHOTS = Path(os.environ.get("KILN_SHOTS_DIR", "/tmp/shots-studio16"))
GATEWAY = "gateway:viduq3p-540p"
SEALINK_I2V = "sealink:wan2.6-i2v"
SEALINK_FLASH = "sealink:wan2.6-i2v-flash"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}


def problems(page) -> list[str]:
    """Console errors and failed requests, but for the 422 of a form sent back with its errors."""
    return [p for p in page.problems if "422" not in p]


def take(page, name: str) -> None:
    """A full-page screenshot. caret="initial": Playwright's caret hiding leaves style="" on the
    fields, which htmx's history cache then keeps and the CSP refuses when Back restores it."""
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True, caret="initial")


def both_shots(page, name: str, show: str = "") -> None:
    """At 1280 px (the form's panel scrolled to ``show``, if given) and at 390 px."""
    if show:  # to the middle of the panel: its foot (estimate, Generate) stays over its bottom
        page.locator(show).evaluate("el => { el.scrollIntoView({block: 'center'}); window.scrollTo(0, 0); }")
    take(page, f"{name}-1280")
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(150)
    take(page, f"{name}-390")
    page.set_viewport_size(DESKTOP)


class Hold:
    """Requests whose URL contains ``part`` wait until ``release()``, which lets the first one go
    and stops holding."""

    def __init__(self, page, part: str):
        self.page, self.part, self.routes = page, part, []
        page.route(self.matches, self.hold)

    def hold(self, route) -> None:
        self.routes.append(route)

    def matches(self, url: str) -> bool:
        return self.part in url

    def wait(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not self.routes and time.monotonic() < deadline:
            self.page.wait_for_timeout(50)
        assert self.routes, f"no request to {self.part} left"

    def release(self) -> None:
        self.routes[0].continue_()
        self.page.unroute(self.matches, self.hold)


def open_studio(page, live_server, login, email: str = "owner@acme.test", path: str = "/") -> None:
    login(page, live_server, email, PASSWORD)
    page.goto(path)
    page.wait_for_selector("#studio-form")
    page.wait_for_load_state("networkidle")


# ---------------------------------------------------------------------------
# 6. Nothing is cut silently


def test_a_pasted_prompt_longer_than_the_model_takes_is_kept_counted_and_refused(
        page, live_server, login, team, owner, sandbox, sandbox_key):
    sandbox_key(team, "gateway")
    open_studio(page, live_server, login, path=f"/?model={GATEWAY}")
    count = page.locator('.char-count[data-count-for="id_prompt"]')
    expect(count).to_have_text("0 / 2,000 characters")

    pasted = ("lantern " * 6250)[:-1] + "s"  # 50,000 characters
    page.focus("#id_prompt")
    page.keyboard.insert_text(pasted)  # as a paste: a maxlength would have cut it to 2,000
    assert len(page.input_value("#id_prompt")) == 50_000
    expect(count).to_have_text("50,000 / 2,000 characters: 48,000 too many")
    expect(count).to_have_class("char-count is-over")
    assert page.get_attribute("#id_prompt", "aria-invalid") == "true"
    both_shots(page, "06-1-prompt-over-the-limit")

    page.click(".studio-submit")
    page.wait_for_selector("#studio-form .field.has-error")
    error = page.inner_text("#studio-form .field.has-error .error")
    assert error == ("Vidu Q3 Pro 540p takes a prompt of at most 2,000 characters; this one has 50,000 "
                     "(48,000 too many). Nothing was cut: shorten it and generate again.")
    assert page.input_value("#id_prompt") == pasted  # everything the member entered is still there
    expect(count).to_have_text("50,000 / 2,000 characters: 48,000 too many")
    assert Generation.objects.count() == 0
    both_shots(page, "06-2-prompt-refused")

    page.fill("#id_prompt", pasted[:1999] + "s")
    expect(count).to_have_text("2,000 / 2,000 characters")
    page.click(".studio-submit")
    page.wait_for_selector("#gallery-grid [data-card]")
    assert len(Generation.objects.get().prompt.text) == 2000
    assert problems(page) == []


def test_switching_to_a_model_with_a_smaller_limit_keeps_the_prompt_and_says_it_is_over(
        page, live_server, login, team, owner, sandbox, sandbox_key):
    sandbox_key(team, "shark")
    sandbox_key(team, "gateway")
    open_studio(page, live_server, login, path=f"/?model={WAN}")
    prompt = "A slow pan across a potter's studio. " * 80  # 2,960 characters: fine for Wan (4,000)
    page.fill("#id_prompt", prompt)
    count = page.locator('.char-count[data-count-for="id_prompt"]')
    expect(count).to_have_text("2,959 / 4,000 characters")
    choose_model(page, GATEWAY, "aspect_ratio")
    assert page.input_value("#id_prompt") == prompt
    expect(count).to_have_text("2,959 / 2,000 characters: 959 too many")
    assert problems(page) == []


# ---------------------------------------------------------------------------
# 7. The draft survives


def expect_the_draft(page, media, *, model=WAN, compare=SEALINK_FLASH) -> None:
    """The draft is on the page (waiting, as a person would, for the fields to arrive)."""
    expect(page.locator("#studio-model")).to_have_value(model)
    expect(page.locator("input[name=operation]:checked, input[name=operation][type=hidden]")).to_have_value(
        "image-to-video")
    expect(page.locator("#slot-first_frame .slot-picked img")).to_be_visible()
    expect(page.locator("#id_first_frame_media")).to_have_value(str(media.public_id))
    expect(page.locator("#id_prompt")).to_have_value("The pot starts to spin on the wheel, slow push-in")
    expect(page.locator("#id_negative_prompt")).to_have_value("blur, text")
    expect(page.locator(f'input[name=compare_models][value="{compare}"]')).to_be_checked()
    expect(page.locator("details.compare")).to_have_attribute("open", "")


def expect_wan_settings(page) -> None:
    expect(page.locator("#id_resolution")).to_have_value("480p")
    expect(page.locator("#id_duration")).to_have_value("10")


def test_the_draft_survives_a_reload_a_model_switch_and_a_submit(page, live_server, login, team, owner,
                                                                 sandbox, sandbox_key):
    sandbox_key(team, "shark")
    sandbox_key(team, "sealink")
    media = make_gallery_media(team, owner)
    open_studio(page, live_server, login)

    choose_model(page, WAN, "resolution")
    page.click(".op-tab:has-text('Image to video')")
    page.wait_for_selector("#slot-first_frame")
    page.click("#slot-first_frame >> text=Pick from the gallery")
    page.click("#studio-picker[open] .picker-item")
    page.wait_for_selector("#slot-first_frame .slot-picked img")
    page.fill("#id_prompt", "The pot starts to spin on the wheel, slow push-in")
    page.fill("#id_negative_prompt", "blur, text")
    page.select_option("#id_resolution", "480p")
    page.select_option("#id_duration", "10")
    page.click("details.compare summary")
    page.check(f'input[name=compare_models][value="{SEALINK_FLASH}"]')
    page.wait_for_load_state("networkidle")

    # A reload.
    page.reload()
    page.wait_for_selector("#studio-form")
    expect_the_draft(page, media)
    expect_wan_settings(page)
    page.wait_for_load_state("networkidle")
    expect(page.locator("#studio-estimate .estimate-models")).to_have_text("for 2 models")
    both_shots(page, "07-1-draft-after-reload", show="details.compare")

    # A submit: the next try starts from everything sent.
    page.click(".studio-submit")
    expect(page.locator("#gallery-grid [data-card]")).to_have_count(3)  # the gallery image, Wan and Flash
    page.wait_for_load_state("networkidle")
    expect_the_draft(page, media)
    expect_wan_settings(page)
    made = Generation.objects.exclude(pk=media.generation_id)
    assert sorted(made.values_list("model", flat=True)) == ["alibaba/wan-2.7", "wan2.6-i2v-flash"]
    assert {i.source_media_id for i in InputMedia.objects.filter(generation__in=made)} == {media.pk}

    # A model switch: the other model takes a first frame too, and can still be compared with Flash.
    choose_model(page, SEALINK_I2V, "size")
    expect_the_draft(page, media, model=SEALINK_I2V)
    expect(page.locator("#studio-estimate .estimate-models")).to_have_text("for 2 models")

    # Coming back to the plain studio address another day: the draft's model and all.
    page.goto("/")
    page.wait_for_selector("#studio-form")
    expect_the_draft(page, media, model=SEALINK_I2V)
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/?model=sealink%3Awan2.6-i2v")
    both_shots(page, "07-2-draft-on-coming-back")
    # The draft given back replaced the address (no step was added): back is the switch before it.
    page.go_back()
    page.wait_for_selector("#studio-form")
    assert page.url.endswith("/?model=sealink%3Awan2.6-i2v")
    page.go_back()
    page.wait_for_selector("#studio-form")
    assert page.url.endswith("?model=shark%3Aalibaba%2Fwan-2.7&operation=image-to-video")
    assert problems(page) == []


def test_what_is_typed_while_the_fields_or_a_submit_are_out_is_kept(page, live_server, login, team, owner,
                                                                    sandbox, sandbox_key):
    sandbox_key(team, "shark")
    open_studio(page, live_server, login, path=f"/?model={GPT_IMAGE}")
    page.fill("#id_prompt", "A teapot")

    hold = Hold(page, "/studio/fields/")
    page.select_option("#studio-model", WAN)
    hold.wait()
    page.focus("#id_prompt")
    page.keyboard.press("End")
    page.keyboard.type(" on a windowsill")  # typed into the old fields while the new ones are on their way
    hold.release()
    page.wait_for_selector("#studio-fieldset [name=resolution]")
    page.wait_for_load_state("networkidle")
    expect(page.locator("#id_prompt")).to_have_value("A teapot on a windowsill")

    hold = Hold(page, "/studio/generate/")
    page.click(".studio-submit")
    hold.wait()
    page.focus("#id_prompt")
    page.keyboard.press("End")
    page.keyboard.type(", at dawn")
    page.select_option("#id_resolution", "1080p")
    hold.release()
    page.wait_for_selector("#gallery-grid [data-card]")
    page.wait_for_load_state("networkidle")
    expect(page.locator("#id_prompt")).to_have_value("A teapot on a windowsill, at dawn")
    expect(page.locator("#id_resolution")).to_have_value("1080p")
    generation = Generation.objects.get()
    assert generation.prompt.text == "A teapot on a windowsill"  # what was sent, as sent
    assert generation.params["resolution"] == "720p"
    page.reload()
    page.wait_for_selector("#studio-form")
    expect(page.locator("#id_prompt")).to_have_value("A teapot on a windowsill, at dawn")
    assert problems(page) == []


def test_an_upload_survives_submits_and_switches_and_a_reload_asks_for_it_again(
        page, live_server, login, tmp_path, team, owner, sandbox, sandbox_key):
    sandbox_key(team, "shark")
    sandbox_key(team, "sealink")
    frame = tmp_path / "kiln-at-dusk.png"
    frame.write_bytes(png_bytes((96, 64)))
    open_studio(page, live_server, login, path=f"/?model={WAN}&operation=image-to-video")
    page.set_input_files("#id_first_frame", str(frame))
    expect(page.locator("#slot-first_frame .upload-button span")).to_have_text("kiln-at-dusk.png")
    page.fill("#id_prompt", "The kiln door opens, sparks fly")

    # Ctrl+Enter in the prompt generates (Enter alone is a new line).
    page.focus("#id_prompt")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#gallery-grid [data-card]")).to_have_count(1)
    page.wait_for_load_state("networkidle")
    expect(page.locator("#id_prompt")).to_have_value("The kiln door opens, sparks fly")
    expect(page.locator("#slot-first_frame .upload-button span")).to_have_text("kiln-at-dusk.png")
    assert page.evaluate("document.querySelector('#id_first_frame').files.length") == 1

    # A model switch keeps it too (the other model has a first frame), and Cmd+Enter generates again.
    choose_model(page, SEALINK_I2V, "size")
    expect(page.locator("#slot-first_frame .upload-button span")).to_have_text("kiln-at-dusk.png")
    page.focus("#id_prompt")
    page.keyboard.press("Meta+Enter")
    expect(page.locator("#gallery-grid [data-card]")).to_have_count(2)
    uploads = InputMedia.objects.filter(source_media=None).order_by("pk")
    assert [i.generation.model for i in uploads] == ["alibaba/wan-2.7", "wan2.6-i2v"]
    assert all(i.file.name.endswith(".png") and i.bytes == frame.stat().st_size for i in uploads)

    # A reload cannot keep a chosen file: the slot says which one to choose again.
    page.reload()
    page.wait_for_selector("#studio-form")
    note = page.locator("#slot-first_frame .slot-lost")
    expect(note).to_have_text("kiln-at-dusk.png was chosen here before the page reloaded. A browser cannot keep "
                              "a chosen file across a reload, so it is not attached: upload it again or pick it "
                              "from the gallery. Dismiss")
    expect(page.locator("#id_prompt")).to_have_value("The kiln door opens, sparks fly")
    both_shots(page, "07-3-upload-lost-on-reload", show="#slot-first_frame .slot-lost")
    page.set_input_files("#id_first_frame", str(frame))
    expect(note).to_have_count(0)
    page.reload()
    page.wait_for_selector("#studio-form")
    page.click("#slot-first_frame .slot-lost button:has-text('Dismiss')")
    expect(note).to_have_count(0)
    page.reload()
    page.wait_for_selector("#studio-form")
    page.wait_for_load_state("networkidle")
    expect(note).to_have_count(0)
    assert problems(page) == []


def test_a_remix_link_fills_the_form_and_a_reload_then_keeps_the_edits(page, live_server, login, team, owner,
                                                                       sandbox, sandbox_key):
    sandbox_key(team, "shark")
    original = create_generation(membership=Membership.objects.get(user=owner, team=team), provider_id="shark",
                                 model_id="openai/gpt-image-2", operation="text-to-image",
                                 prompt="A teapot of blue glaze", params={"quality": "low"})
    open_studio(page, live_server, login, path=f"/?model={WAN}")
    page.fill("#id_prompt", "An older draft")
    page.goto(f"/?remix={original.public_id}")
    page.wait_for_selector("#studio-form")
    expect(page.locator("#id_prompt")).to_have_value("A teapot of blue glaze")  # the link, not the draft
    assert page.input_value("#id_quality") == "low"
    assert "remix=" not in page.url
    page.fill("#id_prompt", "A teapot of red glaze")
    page.reload()
    page.wait_for_selector("#studio-form")
    expect(page.locator("#id_prompt")).to_have_value("A teapot of red glaze")
    expect(page.locator(".remix-banner")).to_be_visible()
    page.click(".studio-submit")
    page.wait_for_selector(f"#gallery-grid [data-card]:not([data-card='{original.public_id}'])")
    remix = Generation.objects.exclude(pk=original.pk).get()
    assert (remix.parent_id, remix.prompt.text) == (original.pk, "A teapot of red glaze")
    assert problems(page) == []


def test_signing_out_forgets_the_draft(page, live_server, login, team, owner, sandbox, sandbox_key):
    sandbox_key(team, "shark")
    open_studio(page, live_server, login)
    page.fill("#id_prompt", "Something private")
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('kiln:studio-draft:')).length") == 1
    page.click(".account button:has-text('Sign out')")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('kiln:studio-draft:')).length") == 0
    open_studio(page, live_server, login)
    assert page.input_value("#id_prompt") == ""


# ---------------------------------------------------------------------------
# 8. A member with 0 credits


def test_a_member_with_no_credits_sees_why_generate_is_off_and_whom_to_ask(page, live_server, login, team,
                                                                           owner, sandbox, sandbox_key):
    sandbox_key(team, "shark")
    admin = make_member(team, "ada@acme.test", Role.ADMIN)
    admin.name = "Ada Admin"
    admin.save(update_fields=["name"])
    new = make_member(team, "new@acme.test", Role.MEMBER)
    open_studio(page, live_server, login, email="new@acme.test")
    page.fill("#id_prompt", "A lighthouse in a storm")
    page.wait_for_load_state("networkidle")

    button = page.locator(".studio-submit")
    expect(button).to_be_disabled()
    help_box = page.locator("#credit-help")
    needed = page.inner_text("#studio-estimate .estimate-credits").split()[0]
    expect(help_box).to_have_text(
        f"Generate is off: this needs {needed} credits and you have 0. Credits come from Acme Studio's owners and "
        "admins: ask owner@acme.test (owner) or Ada Admin (admin) to grant you some; they do it on the team's "
        "Credits page.", use_inner_text=True)
    assert help_box.locator("a").evaluate_all("links => links.map(a => a.href)") == [
        "mailto:owner@acme.test", "mailto:ada@acme.test"]
    both_shots(page, "08-1-no-credits")

    page.focus("#id_prompt")
    page.keyboard.press("Control+Enter")  # does nothing either
    page.wait_for_timeout(300)
    assert Generation.objects.count() == 0

    # Ada grants credits; the next change to the form finds them and turns Generate on.
    grant(wallet_for(Membership.objects.get(user=new)), 500_000, reason="Welcome")
    page.fill("#id_prompt", "A lighthouse in a storm, at night")
    expect(button).to_be_enabled()
    expect(help_box).to_have_count(0)
    page.click(".studio-submit")
    page.wait_for_selector("#gallery-grid [data-card]")
    assert Generation.objects.count() == 1
    assert problems(page) == []


def test_an_admin_with_no_credits_is_sent_to_the_credits_page(page, live_server, login, team, owner,
                                                             sandbox, sandbox_key):
    sandbox_key(team, "shark")
    make_member(team, "ada@acme.test", Role.ADMIN)
    open_studio(page, live_server, login, email="ada@acme.test")
    expect(page.locator(".studio-submit")).to_be_disabled()
    expect(page.locator("#credit-help")).to_contain_text(
        "As an admin of Acme Studio you can grant yourself credits on the Credits page.")
    page.set_viewport_size(PHONE)
    take(page, "08-2-admin-no-credits-390")
    page.click("#credit-help a:has-text('Credits page')")
    page.wait_for_url("**/accounts/team/credits/")
    assert problems(page) == []


@pytest.fixture(autouse=True)
def _shots_folder_and_patience():
    """Assertions wait as long as the page's own actions may (15 s, not 5): a draft given back
    waits for the fields from the server, slow on a busy two-core machine."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=15_000)
    yield
    expect.set_options(timeout=5_000)
