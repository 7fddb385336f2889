"""Browser: select several cards in the gallery (click, Shift+click, the keyboard, select all)
and act on them together: favourite, archive, share, download as one zip; on a phone too.

Screenshots go to /tmp/shots-bulk/ (KILN_SHOTS_DIR to change it).
"""

import datetime as dt
import os
import zipfile
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from generations.models import Favourite, Generation, Kind, Status
from tests.conftest import PASSWORD
from tests.e2e.test_gallery_e2e import colourful
from tests.generations.gallery.conftest import add_media, make_generation

pytestmark = pytest.mark.e2e

SHOTS = Path(os.environ.get("KILN_SHOTS_DIR", "/tmp/shots-bulk"))
PROMPTS = ["a lighthouse at dusk", "a red fox in fresh snow", "neon street in the rain", "desert dunes, violet sky",
           "an astronaut's greenhouse", "macro dew drop on a leaf", "cozy cabin in pines", "old fisherman portrait"]


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)  # the cards' rings ease in over 0.2 s
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def fill(team, owner, teammate, count=12):
    """``count`` finished results, newest last; every third by the teammate, one a video."""
    start = timezone.now() - dt.timedelta(hours=2)
    made = []
    for i in range(count):
        video = i == count - 3  # third on the page
        g = make_generation(team, teammate if i % 3 == 0 else owner, prompt=f"{PROMPTS[i % len(PROMPTS)]} #{i}",
                            kind=Kind.VIDEO if video else Kind.IMAGE, model="alibaba/wan-2.7" if video else "openai/gpt-image-2",
                            created=start + dt.timedelta(minutes=i), finished_at=start + dt.timedelta(minutes=i, seconds=30),
                            actual_cost=400)
        add_media(g, png=None if video else colourful(i))
        made.append(g)
    return list(reversed(made))  # as the gallery shows them: newest first


def box(page, g):
    return page.locator(f"#card-{g.public_id} input[data-select]")


def count(page):
    return page.locator("[data-bulk-count]").inner_text()


def test_select_with_click_shift_click_and_act_on_the_selection(signed_in, team, owner, teammate, tmp_path):
    page = signed_in
    cards = fill(team, owner, teammate)
    page.goto("/gallery/")
    bar = page.locator("#bulk-form")
    assert not bar.is_visible()  # nothing selected, no bar

    # A click ticks one card; Shift+click ticks the range from it.
    page.locator(f"#card-{cards[0].public_id}").hover()
    box(page, cards[0]).click()
    bar.wait_for(state="visible")
    assert count(page) == "1"
    box(page, cards[4]).click(modifiers=["Shift"])
    assert count(page) == "5"
    assert all(box(page, g).is_checked() for g in cards[:5]) and not box(page, cards[5]).is_checked()
    page.mouse.move(5, 5)
    shot(page, "bulk-selected-desktop")

    # Favourite all five at once: each card's star lights up in place, the selection stays.
    with page.expect_response(lambda r: "/gallery/selection/favourite/" in r.url) as answer:
        bar.get_by_role("button", name="Favourite", exact=True).click()
    assert answer.value.request.method == "POST"
    page.get_by_text("Added 5 results to your favourites.").wait_for()
    for g in cards[:5]:
        assert page.locator(f"#card-{g.public_id} .fav").get_attribute("aria-pressed") == "true"
        assert box(page, g).is_checked()
    assert Favourite.objects.filter(user=owner).count() == 5

    # Download them as one zip.
    with page.expect_download() as download:
        bar.get_by_role("button", name="Download .zip").click()
    path = tmp_path / "selection.zip"
    download.value.save_as(path)
    assert download.value.suggested_filename.endswith("-5-results.zip")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert archive.testzip() is None
    assert len(names) == 5 and sum(n.endswith(".mp4") for n in names) == 1

    # Archive: the cards turn into tombstones with an undo, the selection empties.
    bar.get_by_role("button", name="Archive").click()
    page.get_by_text("Archived 5 results.").wait_for()
    expect(page.locator(".gcard-tombstone")).to_have_count(5)
    assert count(page) == "0"
    shot(page, "bulk-archived-desktop")
    assert Generation.objects.filter(archived=True).count() == 5
    # One comes back with its undo.
    page.locator(f"#card-{cards[2].public_id}").get_by_role("button", name="Undo").click()
    page.locator(f"#card-{cards[2].public_id} input[data-select]").wait_for(state="attached")
    assert Generation.objects.filter(archived=True).count() == 4

    # Select all on the page, then Clear: the bar goes.
    bar.get_by_role("button", name="Clear").click()
    page.locator(f"#card-{cards[6].public_id}").hover()
    box(page, cards[6]).click()
    bar.get_by_role("button", name="Select all on page").click()
    assert count(page) == str(page.locator("[data-select]").count()) == "8"
    bar.get_by_role("button", name="Clear").click()
    bar.wait_for(state="hidden")
    assert page.locator("[data-select]:checked").count() == 0
    assert page.problems == []


def test_the_selection_works_from_the_keyboard(signed_in, team, owner, teammate):
    page = signed_in
    cards = fill(team, owner, teammate, count=6)
    page.goto("/gallery/")
    first = box(page, cards[0])
    first.focus()
    assert first.is_visible()  # a focused box shows even without a pointer over its card
    page.keyboard.press("Space")
    assert count(page) == "1"
    box(page, cards[3]).focus()
    page.keyboard.press("Shift+Space")  # the range, as Shift+click
    assert count(page) == "4"
    shot(page, "bulk-keyboard-desktop")
    # The bar's buttons are reachable and answer Enter.
    page.locator("#bulk-form").get_by_role("button", name="Favourite", exact=True).focus()
    page.keyboard.press("Enter")
    page.get_by_text("Added 4 results to your favourites.").wait_for()
    # Esc clears the selection.
    page.keyboard.press("Escape")
    page.locator("#bulk-form").wait_for(state="visible")  # the answer stays readable...
    assert count(page) == "0" and page.locator("[data-select]:checked").count() == 0
    assert page.problems == []


def test_a_selected_card_stays_selected_when_its_status_changes(signed_in, team, owner, teammate):
    page = signed_in
    cards = fill(team, owner, teammate, count=3)
    running = make_generation(team, owner, prompt="a slow pan across a canyon", kind=Kind.VIDEO, model="alibaba/wan-2.7",
                              status=Status.RUNNING, progress=20)
    page.goto("/gallery/")
    box(page, running).focus()
    page.keyboard.press("Space")
    box(page, cards[0]).focus()
    page.keyboard.press("Space")
    assert count(page) == "2"
    # The job moves on: the live status swaps its card; its box stays ticked.
    Generation.objects.filter(pk=running.pk).update(progress=80, provider_status="rendering")
    page.locator(f"#card-{running.public_id} .progress-text").get_by_text("80%").wait_for(timeout=10_000)
    assert box(page, running).is_checked() and count(page) == "2"
    assert page.problems == []


def test_share_the_selection_and_the_zip_limit(signed_in, team, owner, teammate, monkeypatch):
    from generations.gallery import views

    page = signed_in
    cards = fill(team, owner, teammate, count=4)
    failed = make_generation(team, owner, prompt="a glass teapot", status=Status.FAILED, error="Refused by the provider.")
    monkeypatch.setattr(views, "ZIP_MAX_RESULTS", 3)
    page.goto("/gallery/")
    page.locator(f"#card-{failed.public_id}").hover()
    box(page, failed).click()
    page.locator("#bulk-form").get_by_role("button", name="Select all on page").click()
    assert count(page) == "5"
    # More than a zip holds: the button says no before the server has to.
    download = page.locator("#bulk-form").get_by_role("button", name="Download .zip")
    assert download.is_disabled()
    assert "A zip holds at most 3 results" in page.locator("[data-bulk-hint]").inner_text()
    page.locator("#bulk-form").get_by_role("button", name="Share…").click()
    page.wait_for_url("**/shares/new/**")
    assert page.get_by_text("Share 4 results").is_visible()
    assert page.get_by_text("1 result of the selection is left out: only finished results can be shared.").is_visible()
    assert page.locator(".share-thumb").count() == 4
    assert {g.public_id.hex for g in cards} == {
        v.replace("-", "") for v in page.eval_on_selector_all("input[name=ids]", "els => els.map(e => e.value)")}
    assert page.problems == []


def test_on_a_phone_the_boxes_show_and_the_bar_spans_the_foot(browser, live_server, login, transactional_db,
                                                                team, owner, teammate):
    cards = fill(team, owner, teammate, count=8)
    # A phone: touch, no hover, so every card shows its box.
    context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844},
                                  is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    login(page, live_server, owner.email, PASSWORD)
    page.goto("/gallery/")
    assert box(page, cards[1]).evaluate("el => getComputedStyle(el.closest('.card-select')).opacity") == "1"
    box(page, cards[0]).tap()
    box(page, cards[1]).tap()
    box(page, cards[2]).tap()
    assert count(page) == "3"
    bar = page.locator("#bulk-form")
    geometry = bar.bounding_box()
    assert geometry["x"] == 0 and geometry["width"] == 390 and round(geometry["y"] + geometry["height"]) == 844
    # Nothing spills out sideways.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    shot(page, "bulk-selected-phone")
    bar.get_by_role("button", name="Archive").tap()
    page.get_by_text("Archived 3 results.").wait_for()
    shot(page, "bulk-archived-phone")
    assert errors == []
    context.close()
