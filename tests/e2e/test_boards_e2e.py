"""Browser: a team collects results on a board: one from a card's menu (making the board on
the way), several from the selection bar, then looks at the board in the gallery, shares it
and opens the link in a fresh browser with no session; on a phone too.

Screenshots go to /tmp/shots-boards/ (KILN_SHOTS_DIR to change it).
"""

import os
from pathlib import Path

import pytest

from generations.boards.models import Board, BoardItem
from generations.share.models import ShareLink
from tests.conftest import PASSWORD
from tests.e2e.test_gallery_bulk_e2e import box, fill

pytestmark = pytest.mark.e2e

SHOTS = Path(os.environ.get("KILN_SHOTS_DIR", "/tmp/shots-boards"))


def shot(page, name, full_page=False):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)  # the cards' rings ease in over 0.2 s
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def open_menu(page, g):
    card = page.locator(f"#card-{g.public_id}")
    card.hover()
    card.locator("summary[aria-label='More actions']").click()
    return card.locator(".menu")


def test_collect_on_a_board_filter_by_it_and_share_it(signed_in, browser, live_server, team, owner, teammate):
    page = signed_in
    cards = fill(team, owner, teammate, count=10)
    page.goto("/gallery/")

    # 1. From the first card's ⋯ menu: "Add to board…", name a new board, Add.
    menu = open_menu(page, cards[0])
    menu.get_by_role("link", name="Add to board…").click()
    menu.get_by_placeholder("New board…").fill("Lighthouse refs")
    shot(page, "card-menu-new-board-desktop")
    menu.get_by_role("button", name="Add", exact=True).click()
    menu.get_by_text("Added to “Lighthouse refs”.").wait_for()
    assert menu.get_by_role("button", name="Lighthouse refs").get_attribute("aria-pressed") == "true"
    shot(page, "card-menu-added-desktop")
    board = Board.objects.get(team=team)
    assert board.name == "Lighthouse refs" and board.created_by == owner
    page.keyboard.press("Escape")

    # 2. Several at once: select three more, pick the board in the bar (typed, any case).
    page.locator(f"#card-{cards[1].public_id}").hover()
    box(page, cards[1]).click()
    box(page, cards[3]).click(modifiers=["Shift"])
    bar = page.locator("#bulk-form")
    bar.get_by_label("Board: pick one or type a new name").fill("lighthouse refs")
    page.mouse.move(5, 5)
    shot(page, "bulk-add-to-board-desktop")
    bar.get_by_role("button", name="Add to board").click()
    page.get_by_text("Added 3 results to “Lighthouse refs”.").wait_for()
    assert BoardItem.objects.filter(board=board).count() == 4
    assert page.url.endswith("/gallery/")  # no reload: the bar answered in place

    # 3. The gallery's Board filter: just the board's four, under its name.
    page.locator(".gallery-filters select[name=board]").select_option(label="Lighthouse refs")  # applies at once
    page.wait_for_url(lambda url: f"board={board.public_id}" in url)
    assert page.locator("h1").inner_text() == "Lighthouse refs"
    assert page.locator("article.gcard").count() == 4
    assert {page.locator("article.gcard").nth(i).get_attribute("data-card") for i in range(4)} == {
        str(g.public_id) for g in cards[:4]}
    shot(page, "board-in-gallery-desktop")

    # Take one off from its menu: it makes way for a note with an undo; the others stay.
    menu = open_menu(page, cards[3])
    menu.get_by_role("button", name="Remove from this board").click()
    page.locator(f"#card-{cards[3].public_id}").get_by_text("Removed from “Lighthouse refs”.").wait_for()
    assert BoardItem.objects.filter(board=board).count() == 3

    # 4. Share the board: the dialog says the link follows the board.
    page.get_by_role("link", name="Share this board…").click()
    assert page.get_by_text("The link follows the board.").is_visible()
    shot(page, "share-board-form-desktop")
    page.get_by_role("button", name="Create share link").click()
    url = page.locator("#share-url").input_value()
    assert ShareLink.objects.get().board == board
    shot(page, "share-board-created-desktop")

    # 5. A fresh browser, no session: the board's three, nothing else; one added later shows too.
    stranger = browser.new_context(viewport={"width": 1280, "height": 860})
    public = stranger.new_page()
    errors = []
    public.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    public.goto(url)
    assert public.locator("h1").inner_text() == "Lighthouse refs"
    assert public.locator(".sp-item").count() == 3
    assert public.locator("img.sp-media").first.evaluate("img => img.complete && img.naturalWidth > 0")
    page.goto(f"/gallery/?board={board.public_id}")
    page.goto("/gallery/")
    menu = open_menu(page, cards[6])
    menu.get_by_role("link", name="Add to board…").click()
    menu.get_by_role("button", name="Lighthouse refs").click()
    menu.get_by_text("Added to “Lighthouse refs”.").wait_for()
    public.reload()
    assert public.locator(".sp-item").count() == 4
    shot(public, "shared-board-public-desktop", full_page=True)
    stranger.close()
    assert errors == []

    # 6. The boards page: the board with its count and a cover.
    page.goto("/boards/")
    tile = page.locator(f"#board-{board.public_id}")
    assert "4 results" in tile.inner_text()
    assert tile.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
    shot(page, "boards-page-desktop")
    assert page.problems == []


def test_boards_on_a_phone(browser, live_server, login, transactional_db, team, owner, teammate):
    cards = fill(team, owner, teammate, count=8)
    board = Board.objects.create(team=team, name="Coastal moodboard", created_by=teammate)
    BoardItem.objects.bulk_create(BoardItem(board=board, generation=g) for g in cards[:3])
    context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844},
                                  is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    login(page, live_server, owner.email, PASSWORD)

    page.goto(f"/gallery/?board={board.public_id}")
    assert page.locator("article.gcard").count() == 3
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    shot(page, "board-in-gallery-phone")

    # The picker in a card's menu fits the card.
    page.goto("/gallery/")
    card = page.locator(f"#card-{cards[5].public_id}")
    card.locator("summary[aria-label='More actions']").tap()
    card.get_by_role("link", name="Add to board…").tap()
    card.get_by_role("button", name="Coastal moodboard").tap()
    card.get_by_text("Added to “Coastal moodboard”.").wait_for()
    card.scroll_into_view_if_needed()
    shot(page, "card-menu-picker-phone")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    page.keyboard.press("Escape")

    # The bar's board field on a phone.
    box(page, cards[6]).tap()
    box(page, cards[7]).tap()
    bar = page.locator("#bulk-form")
    bar.get_by_label("Board: pick one or type a new name").fill("Coastal moodboard")
    bar.get_by_role("button", name="Add to board").tap()
    page.get_by_text("Added 2 results to “Coastal moodboard”.").wait_for()
    geometry = bar.bounding_box()
    assert geometry["x"] == 0 and geometry["width"] == 390
    shot(page, "bulk-add-to-board-phone")
    assert BoardItem.objects.filter(board=board).count() == 6

    page.goto("/boards/")
    assert "6 results" in page.locator(f"#board-{board.public_id}").inner_text()
    # Made by a teammate: the owner may still rename and delete it.
    assert page.locator(f"#board-{board.public_id}").get_by_text("Rename").is_visible()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    shot(page, "boards-page-phone", full_page=True)
    assert errors == []
    context.close()


def test_a_board_named_with_an_accent_is_found_again_by_its_name(signed_in, team, owner, teammate):
    page = signed_in
    cards = fill(team, owner, teammate, count=3)
    ete = Board.objects.create(team=team, name="Été", created_by=owner)
    page.goto("/gallery/")

    # Typing the board's name in a card's menu puts the card on it (no "already has" refusal).
    menu = open_menu(page, cards[0])
    menu.get_by_role("link", name="Add to board…").click()
    menu.get_by_placeholder("New board…").fill("Été")
    menu.get_by_role("button", name="Add", exact=True).click()
    menu.get_by_text("Added to “Été”.").wait_for()
    shot(page, "card-menu-accented-name-desktop")
    page.keyboard.press("Escape")

    # And in the selection bar: the two others join it, counted once each.
    page.locator(f"#card-{cards[1].public_id}").hover()
    box(page, cards[1]).click()
    box(page, cards[2]).click()
    page.locator("#bulk-form").get_by_label("Board: pick one or type a new name").fill("Été")
    page.locator("#bulk-form").get_by_role("button", name="Add to board").click()
    page.get_by_text("Added 2 results to “Été”.").wait_for()
    assert Board.objects.filter(team=team).count() == 1
    assert set(ete.generations.all()) == {cards[0], cards[1], cards[2]}
