"""Browser: the main road by keyboard alone (issue 20, point 2).

Sign in, pick a model and a mode, type a prompt, pick an input from the gallery, generate, follow
the job to its end, cancel another, open the result, play its video, share it, copy the link, and
close every dialog and menu on the way: only Tab, Shift+Tab, Enter, Space, the arrows and Escape.
After every key, focus is on the control a person expects, never on <body> (only a new page, just
loaded, starts there, as it does for everyone).

The sandbox providers answer over loopback; the test is the beat (``run_engine_until``).
"""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from generations.models import Generation, Status
from tests.conftest import PASSWORD
from tests.e2e.test_studio_e2e import eager_tasks, run_engine_until, wait_until  # noqa: F401
from tests.generations.gallery.conftest import make_generation
from tests.generations.studio.conftest import WAN, make_gallery_media

pytestmark = pytest.mark.e2e


def active(page) -> str:
    return page.evaluate("() => { const a = document.activeElement;"
                         " return !a || a === document.body ? 'BODY' : a.outerHTML.slice(0, 160); }")


def at(page, selector: str) -> bool:
    return page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)", selector)


def press(page, key: str, expect_at: str | None = None) -> None:
    """One key; focus is never left on <body>, and is on ``expect_at`` when given."""
    page.keyboard.press(key)
    assert active(page) != "BODY", f"focus fell to <body> after {key}"
    if expect_at:
        assert at(page, expect_at), f"after {key} focus is on {active(page)}, not {expect_at}"


def tab_to(page, selector: str, back: bool = False, limit: int = 120) -> None:
    """Tab (or Shift+Tab) until focus is on ``selector``; every stop on the way is a control."""
    if at(page, selector):
        return
    for _ in range(limit):
        press(page, "Shift+Tab" if back else "Tab")
        if at(page, selector):
            return
    raise AssertionError(f"{selector} was never reached by {'Shift+Tab' if back else 'Tab'}; focus on {active(page)}")


def settle(page) -> None:
    page.wait_for_load_state("networkidle")


def test_the_main_road_by_keyboard_alone(page, live_server, transactional_db, team, owner, sandbox, sandbox_key,
                                         eager_tasks):  # noqa: F811
    sandbox.control(duration=2.0)
    sandbox_key(team, "shark")
    picture = make_gallery_media(team, owner)
    waiting = make_generation(team, owner, prompt="A job to call off", status=Status.QUEUED, created=timezone.now())
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)

    # Sign in.
    page.goto("/accounts/login/")
    assert at(page, "input[name=username]"), active(page)  # autofocus
    page.keyboard.type(owner.email)
    press(page, "Tab", "input[name=password]")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    page.wait_for_selector("#studio-form")
    settle(page)

    # The model (arrows on the list: each one draws its fields), then the mode.
    tab_to(page, "#studio-model")
    for _ in range(30):
        if page.input_value("#studio-model") == WAN:
            break
        press(page, "ArrowDown", "#studio-model")
    assert page.input_value("#studio-model") == WAN
    page.wait_for_selector("#studio-fieldset [name=resolution]")
    settle(page)
    assert at(page, "#studio-model")
    tab_to(page, ".op-tabs input:checked")
    press(page, "ArrowRight", ".op-tabs input:checked")
    page.wait_for_selector("#slot-first_frame")
    settle(page)
    assert at(page, ".op-tabs input[value=image-to-video]:checked"), active(page)

    # The prompt.
    tab_to(page, "#id_prompt")
    page.keyboard.type("The pot starts to spin on the wheel")

    # The gallery picker: opened and closed with Escape, then opened again for a pick.
    tab_to(page, "#slot-first_frame-pick")
    page.keyboard.press("Enter")
    page.wait_for_selector("#studio-picker[open] .picker-item")
    assert page.evaluate("() => document.querySelector('#studio-picker').contains(document.activeElement)"), active(page)
    press(page, "Escape", "#slot-first_frame-pick")
    page.keyboard.press("Enter")
    page.wait_for_selector("#studio-picker[open] .picker-item")
    tab_to(page, ".picker-item")
    page.keyboard.press("Enter")
    page.wait_for_selector("#slot-first_frame .slot-picked img")
    wait_until(page, "() => !document.querySelector('#studio-picker').open")
    assert at(page, "#slot-first_frame-pick"), active(page)
    assert page.input_value("#id_first_frame_media") == str(picture.public_id)

    # Generate: focus stays on Generate, and the new job is announced.
    tab_to(page, "#studio-submit")
    page.keyboard.press("Enter")
    expect(page.locator("#gallery-grid [data-card]")).to_have_count(3)
    wait_until(page, "() => document.querySelector('#live-status').textContent.includes('Wan 2.7:')")
    settle(page)
    assert at(page, "#studio-submit"), active(page)
    job = Generation.objects.get(prompt__text="The pot starts to spin on the wheel")

    # Follow it to its end, focus staying put.
    run_engine_until(page, f"() => !!document.querySelector('#card-{job.public_id}.status-succeeded')")
    wait_until(page, "() => document.querySelector('#live-status').textContent.includes('Wan 2.7: succeeded')")
    assert at(page, "#studio-submit"), active(page)

    # Cancel the other one: focus lands in its card, which now says so.
    tab_to(page, f"#card-{waiting.public_id} .card-actions button")
    page.keyboard.press("Enter")
    wait_until(page, f"() => !!document.querySelector('#card-{waiting.public_id}.status-cancelled')")
    settle(page)
    assert page.evaluate(f"() => document.querySelector('#card-{waiting.public_id}').contains(document.activeElement)"), \
        active(page)
    wait_until(page, "() => document.querySelector('#live-status').textContent.includes(': cancelled')")

    # The result's ⋯ menu: Escape closes it onto ⋯; then Details.
    menu = f"#card-{job.public_id} .card-menu summary"
    tab_to(page, menu, back=True)
    press(page, "Enter", menu)
    press(page, "Tab", f"#card-{job.public_id} .card-menu .menu a")
    press(page, "Escape", menu)
    assert page.locator(f"#card-{job.public_id} .card-menu[open]").count() == 0

    # The viewer (a dialog): opened from the card, closed with Escape back onto the card.
    opener = f"#card-{job.public_id} a.card-media"
    tab_to(page, opener, back=True)
    page.keyboard.press("Enter")
    page.wait_for_selector(".lightbox:not([hidden]) video")
    assert at(page, ".lightbox .lb-close"), active(page)
    press(page, "Escape", opener)

    tab_to(page, menu)
    press(page, "Enter", menu)
    tab_to(page, f"#card-{job.public_id} .card-menu .menu > a:first-child")  # Details
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/g/{job.public_id}/")
    settle(page)

    # Play its video with Space.
    tab_to(page, "video")
    page.keyboard.press(" ")
    wait_until(page, "() => { const v = document.querySelector('video'); return !v.paused && v.currentTime > 0; }", 15_000)
    assert at(page, "video")

    # Share it: the form unfolds, the link is made, copied.
    tab_to(page, "summary.share-form-title")
    press(page, "Enter", "summary.share-form-title")
    tab_to(page, ".share-form .share-submit")
    page.keyboard.press("Enter")
    page.wait_for_selector("#share-url")
    settle(page)
    tab_to(page, "[data-copy='#share-url']")
    page.keyboard.press("Enter")
    expect(page.locator(".share-status")).to_have_text("Copied to the clipboard.")
    assert at(page, "[data-copy='#share-url']"), active(page)
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied == page.input_value("#share-url") and "/s/" in copied
    assert not [p for p in page.problems if "favicon" not in p], page.problems
