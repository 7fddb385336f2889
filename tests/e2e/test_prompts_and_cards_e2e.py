"""Browser: reusing earlier work and a gallery that fits (issue 16, points 12 and 13).

- Copy prompt, from a card's menu and from the detail page: the whole prompt reaches the
  clipboard and the button says "Copied".
- Reuse seed opens the studio with the result's model, prompt and settings and its seed fixed;
  a result made with a random seed nobody reported says so and leaves the seed random.
- Recent prompts in the studio: the team's prompts, newest first and once each, searched as
  one types; choosing one (by keyboard) fills the prompt, and the draft keeps it.
- Model and author names are whole on every card, in a compare group too, at 1280 and 390 px
  and at every card size.
- Filters apply as they change and the address follows (back and reload keep them).
- The card size changes the grid and is still chosen after a reload.
- At 390 px the header's Team link is on screen and works, and the filters fold away behind
  "Filters", which counts the active ones.

Screenshots at 1280 px and 390 px go to /tmp/shots-prompts16/ (KILN_SHOTS_DIR to change it).
"""

import datetime as dt
import os
import re
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import User
from generations.models import Batch, Generation, Kind, Operation, Prompt
from tests.conftest import PASSWORD, make_member
from tests.generations.gallery.conftest import add_media, make_generation

pytestmark = pytest.mark.e2e

SHOTS = Path(os.environ.get("KILN_SHOTS_DIR", "/tmp/shots-prompts16"))
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}
LONG_NAME = "Dorothea Wilhelmina Featherstonehaugh-Cholmondeley"
PROMPT = ("A potter's kiln at dusk, embers glowing through the spy hole,\n"
          "slow push-in, warm light on the brick; no text, no people. " + "Fine ash drifts. " * 12).strip()


def take(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True, caret="initial")


def signed_in(page, live_server, login, email="owner@acme.test", path="/gallery/"):
    login(page, live_server, email, PASSWORD)
    page.goto(path)
    page.wait_for_load_state("networkidle")
    return page


def problems(page) -> list[str]:
    return list(page.problems)


def wan_result(team, author, *, prompt=PROMPT, seed=4242, **fields):
    g = make_generation(team, author, prompt=prompt, kind=Kind.VIDEO, model="alibaba/wan-2.7",
                        params={"duration": 10, "resolution": "480p", "aspect_ratio": "9:16", "seed": seed},
                        finished_at=timezone.now(), actual_cost=1500, **fields)
    add_media(g)
    return g


# ---------------------------------------------------------------------------
# 12. Copy prompt


def test_copy_prompt_from_the_card_menu_and_the_detail_page(page, live_server, login, team, owner):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    g = wan_result(team, owner)
    signed_in(page, live_server, login)

    card = page.locator(f"#card-{g.public_id}")
    card.locator(".card-menu summary").click()
    copy = card.locator(".card-menu button[data-copy-text]")
    expect(copy).to_have_text("Copy prompt")
    copy.click()
    expect(copy).to_have_text("Copied")
    take(page, "12-1-copy-prompt-card-1280")
    assert page.evaluate("navigator.clipboard.readText()") == PROMPT  # whole, line break and all
    expect(copy).to_have_text("Copy prompt", timeout=4000)  # and back

    page.evaluate("navigator.clipboard.writeText('')")
    page.goto(card.locator(".card-menu a:has-text('Details')").get_attribute("href"))
    button = page.locator(".detail-prompt button[data-copy-text]")
    expect(button).to_have_text("Copy prompt")
    button.click()
    expect(button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == PROMPT
    take(page, "12-2-copy-prompt-detail-1280")
    page.set_viewport_size(PHONE)
    take(page, "12-2-copy-prompt-detail-390")
    assert problems(page) == []


def test_copy_prompt_on_a_plain_http_host_copies_through_a_selection(page, live_server, login, team, owner):
    """Served over plain http from a host name (not localhost), a page has no clipboard API:
    the prompt goes through a selected, hidden textarea instead."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.add_init_script("Object.defineProperty(window, 'isSecureContext', {get: () => false})")
    g = wan_result(team, owner)
    signed_in(page, live_server, login)
    assert page.evaluate("window.isSecureContext") is False
    card = page.locator(f"#card-{g.public_id}")
    card.locator(".card-menu summary").click()
    copy = card.locator(".card-menu button[data-copy-text]")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == PROMPT
    assert page.locator(".copy-buffer").count() == 0  # the textarea is gone again
    assert problems(page) == []


# ---------------------------------------------------------------------------
# 12. Reuse seed


def test_reuse_seed_opens_the_studio_with_the_model_prompt_settings_and_seed(
        page, live_server, login, team, owner, sandbox, sandbox_key):
    sandbox_key(team, "shark")
    g = wan_result(team, owner)
    signed_in(page, live_server, login, path=f"/g/{g.public_id}/")
    expect(page.locator(".facts")).to_contain_text("Seed")
    expect(page.locator(".facts")).to_contain_text("4242 (as asked for)")
    take(page, "12-3-detail-seed-1280")

    page.click(".detail-actions a:has-text('Reuse seed')")
    page.wait_for_selector("#studio-form")
    page.wait_for_load_state("networkidle")
    expect(page.locator("#studio-model")).to_have_value("shark:alibaba/wan-2.7")
    expect(page.locator("#id_prompt")).to_have_value(PROMPT)
    expect(page.locator("#id_duration")).to_have_value("10")
    expect(page.locator("#id_resolution")).to_have_value("480p")
    expect(page.locator("details.advanced")).to_have_attribute("open", "")
    expect(page.locator("#id_seed")).to_have_value("4242")
    expect(page.locator("#studio-form .notice")).to_have_text(
        "Seed 4242 is fixed: the seed it was made with. Same model, prompt and settings as the result.")
    take(page, "12-4-reuse-seed-studio-1280")
    page.set_viewport_size(PHONE)
    take(page, "12-4-reuse-seed-studio-390")
    page.set_viewport_size(DESKTOP)

    page.click(".studio-submit")
    page.wait_for_function("() => document.querySelectorAll('#gallery-grid [data-card]').length === 2")
    made = Generation.objects.exclude(pk=g.pk).get()
    assert made.params["seed"] == 4242 and made.prompt.text == PROMPT and made.model == "alibaba/wan-2.7"
    assert made.parent_id == g.pk  # a remix of it, in its lineage
    assert problems(page) == []


def test_reuse_seed_of_a_random_seed_says_it_cannot_be_repeated(page, live_server, login, team, owner,
                                                                 sandbox, sandbox_key):
    sandbox_key(team, "shark")
    g = wan_result(team, owner, seed=-1)
    signed_in(page, live_server, login)
    card = page.locator(f"#card-{g.public_id}")
    card.locator(".card-menu summary").click()
    card.locator(".card-menu a:has-text('Reuse seed')").click()
    page.wait_for_selector("#studio-form")
    expect(page.locator("#studio-form .notice")).to_contain_text(
        "asked for a random seed and Shark AI did not report the one it used")
    expect(page.locator("#id_seed")).to_have_value("-1")
    take(page, "12-5-reuse-random-seed-1280")


# ---------------------------------------------------------------------------
# 12. Recent prompts in the studio


def test_recent_prompts_are_searched_as_one_types_and_fill_the_prompt(
        page, live_server, login, team, owner, teammate, other_team, outsider, sandbox, sandbox_key):
    sandbox_key(team, "shark")
    start = timezone.now() - dt.timedelta(hours=2)
    texts = ["a red fox running through fresh snow", "neon city street in the rain",
             "a red fox running through fresh snow",  # the same again: listed once, as the newest
             "macro shot of a dew drop on a leaf", "A FOX cub asleep in the ferns"]
    for i, text in enumerate(texts):
        make_generation(team, owner if i % 2 else teammate, prompt=text, created=start + dt.timedelta(minutes=i))
    make_generation(other_team, outsider, prompt="a fox in the rival team's secret plans")

    signed_in(page, live_server, login, path="/")
    page.click("details.prompt-history summary")
    items = page.locator(".history-item .history-text")
    expect(items).to_have_count(4)
    assert items.all_inner_texts() == ["A FOX cub asleep in the ferns", "macro shot of a dew drop on a leaf",
                                       "a red fox running through fresh snow", "neon city street in the rain"]
    expect(page.locator(".history-item").first).to_contain_text("GPT Image 2 · mate · just now")
    take(page, "12-6-recent-prompts-1280")

    expect(page.locator("#history-q")).to_be_focused()
    page.keyboard.type("fox")
    expect(items).to_have_count(2)  # case-insensitive, and nothing of the other team
    assert items.all_inner_texts() == ["A FOX cub asleep in the ferns", "a red fox running through fresh snow"]
    take(page, "12-7-recent-prompts-search-1280")
    page.set_viewport_size(PHONE)
    take(page, "12-7-recent-prompts-search-390")
    page.set_viewport_size(DESKTOP)

    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(page.locator(".history-item").nth(1)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#id_prompt")).to_have_value("a red fox running through fresh snow")
    expect(page.locator("#id_prompt")).to_be_focused()
    expect(page.locator("details.prompt-history")).not_to_have_attribute("open", "")
    expect(page.locator('.char-count[data-count-for="id_prompt"]')).to_have_text("36 / 4,000 characters")

    page.keyboard.type(", at dawn")
    page.wait_for_load_state("networkidle")
    page.reload()
    page.wait_for_load_state("networkidle")
    expect(page.locator("#id_prompt")).to_have_value("a red fox running through fresh snow, at dawn")  # the draft

    page.click("details.prompt-history summary")
    expect(page.locator("#history-q")).to_be_focused()  # or the first letters go elsewhere
    page.keyboard.type("nothing like this")
    expect(page.locator(".history-list")).to_contain_text("No recent prompt of the team contains “nothing like this”.")

    # A search the server refuses says why, in the list (a 400 would not be swapped in).
    page.fill("#history-q", "fox\x01")
    expect(page.locator(".history-list .error")).to_have_text("Control characters are not allowed.")
    take(page, "12-8-recent-prompts-refused-1280")
    page.fill("#history-q", "fox " * 51)  # 203 characters: not cut by the browser, refused with a message
    expect(page.locator(".history-list .error")).to_have_text("Search for at most 200 characters.")
    page.set_viewport_size(PHONE)
    take(page, "12-8-recent-prompts-refused-390")
    page.set_viewport_size(DESKTOP)
    assert problems(page) == []


# ---------------------------------------------------------------------------
# 13. Full names on cards


def assert_whole(page, selector: str) -> None:
    """Every element matching ``selector`` shows all of its text: nothing overflows its box."""
    cut = page.eval_on_selector_all(selector, """els => els.filter(e => e.offsetParent !== null)
        .filter(e => e.scrollWidth > e.clientWidth + 1 || getComputedStyle(e).textOverflow === 'ellipsis')
        .map(e => e.textContent.trim())""")
    assert cut == [], f"cut: {cut}"


def compare_group(team, author):
    batch = Batch.objects.create(team=team, author=author)
    prompt = Prompt.objects.create(team=team, author=author, text="A lighthouse in a storm, waves over the rail")
    for model in ("viduq3t-1080p", "viduq3p-1080p-offpeak", "viduq3p-mix-720p", "viduq3t-720p"):
        g = Generation.objects.create(team=team, author=author, prompt=prompt, provider="gateway", model=model,
                                      kind=Kind.VIDEO, operation=Operation.TEXT_TO_VIDEO, status="succeeded",
                                      batch=batch, estimated_cost=9000, actual_cost=9000,
                                      finished_at=timezone.now())
        add_media(g)


def test_model_and_author_names_are_whole_on_cards_and_in_compare_groups(page, live_server, login, team, owner):
    author = make_member(team, "dorothea@acme.test", credits=0)
    User.objects.filter(pk=author.pk).update(name=LONG_NAME)
    for i in range(3):
        wan_result(team, owner, prompt=f"a kiln at dusk #{i}")
    compare_group(team, author)
    signed_in(page, live_server, login)
    labels = page.locator(".batch .card-model").all_inner_texts()
    assert sorted(labels) == sorted(["Vidu Q3 Turbo 1080p", "Vidu Q3 Pro 1080p (off-peak)", "Vidu Q3 Pro mix 720p",
                             "Vidu Q3 Turbo 720p"])
    expect(page.locator(".batch .card-author").first).to_have_text(LONG_NAME)
    for size in ("small", "medium", "large"):
        page.check(f"input[data-card-size][value={size}]", force=True)
        for viewport, width in ((DESKTOP, 1280), (PHONE, 390)):
            page.set_viewport_size(viewport)
            page.wait_for_timeout(100)
            assert_whole(page, ".card-model")
            assert_whole(page, ".card-author")
            expect(page.locator(".batch .card-author").first).to_be_visible()
            if size == "medium":
                take(page, f"13-1-names-whole-{width}")
    page.set_viewport_size(DESKTOP)
    page.check("input[data-card-size][value=medium]", force=True)
    assert problems(page) == []


# ---------------------------------------------------------------------------
# 13. Filters that apply as they change


def test_filters_apply_as_they_change_and_the_address_follows(page, live_server, login, team, owner):
    for i in range(3):
        wan_result(team, owner, prompt=f"a fox in the snow #{i}")
    still = make_generation(team, owner, prompt="a still life with pears")
    add_media(still)
    signed_in(page, live_server, login)
    expect(page.locator(".gcard")).to_have_count(4)
    expect(page.locator(".filter-actions button[type=submit]")).to_be_hidden()  # no Apply needed

    page.select_option("select[name=kind]", "image")
    page.wait_for_url(re.compile(r"kind=image"))
    expect(page.locator(".gcard")).to_have_count(1)
    expect(page.locator("#filter-clear a")).to_be_visible()

    page.select_option("select[name=kind]", "")
    page.wait_for_url(lambda url: url.endswith("/gallery/"))
    expect(page.locator(".gcard")).to_have_count(4)
    page.fill("input[name=q]", "fox")  # a pause after typing, and the search applies
    page.wait_for_url(re.compile(r"q=fox"))
    expect(page.locator(".gcard")).to_have_count(3)
    take(page, "13-2-filters-live-1280")

    page.go_back()
    expect(page.locator(".gcard")).to_have_count(4)
    page.go_forward()
    expect(page.locator(".gcard")).to_have_count(3)
    page.reload()
    expect(page.locator("input[name=q]")).to_have_value("fox")
    expect(page.locator(".gcard")).to_have_count(3)

    page.check("input[name=fav]")  # the view follows: the favourites (none yet)
    expect(page.locator("#gallery-title")).to_have_text("Favourites")
    expect(page.locator(".gallery-empty")).to_contain_text("Nothing matches these filters.")
    page.uncheck("input[name=fav]")
    expect(page.locator("#gallery-title")).to_have_text("Gallery")
    expect(page.locator(".gcard")).to_have_count(3)

    page.fill("input[name=from]", "2999-01-02")
    page.fill("input[name=to]", "2999-01-01")  # refused, and the page says why
    expect(page.locator(".gallery-errors")).to_contain_text("To: The end date is before the start date.")
    # The control is marked as the answer says (the form itself is not swapped): a screen reader
    # hears "invalid" and the reason on reaching it; the other date is not marked.
    to, since = page.locator("input[name=to]"), page.locator("input[name=from]")
    expect(to).to_have_attribute("aria-invalid", "true")
    expect(to).to_have_accessible_description("To: The end date is before the start date.")
    expect(since).not_to_have_attribute("aria-invalid", "true")
    page.fill("input[name=to]", "2999-01-03")  # put right: the mark goes with the reason
    expect(page.locator(".gallery-errors")).to_have_count(0)
    expect(to).not_to_have_attribute("aria-invalid", "true")
    expect(to).to_have_accessible_description("")
    assert [p for p in problems(page) if " 400 " not in f" {p} "] == [], problems(page)



def test_back_to_a_filtered_view_htmx_no_longer_holds_is_the_whole_page(page, live_server, login, team, owner):
    """htmx keeps the last views in sessionStorage; past them (or when storage is full or cleared)
    it asks the server. That request must get the whole page: it got the cards alone, and the
    page lost its header, title and filters."""
    for i in range(3):
        wan_result(team, owner, prompt=f"a fox in the snow #{i}")
    add_media(make_generation(team, owner, prompt="a still life with pears"))
    signed_in(page, live_server, login)
    page.select_option("select[name=kind]", "image")
    page.wait_for_url(re.compile(r"kind=image"))
    expect(page.locator(".gcard")).to_have_count(1)
    page.select_option("select[name=kind]", "video")
    page.wait_for_url(re.compile(r"kind=video"))
    expect(page.locator(".gcard")).to_have_count(3)
    page.evaluate("() => sessionStorage.removeItem('htmx-history-cache')")  # as after the 10 it keeps
    page.go_back()
    page.wait_for_url(re.compile(r"kind=image"))
    expect(page.locator(".gcard")).to_have_count(1)
    expect(page.locator("header.topbar")).to_have_count(1)
    expect(page.locator("h1")).to_have_text("Gallery")
    expect(page.locator("select[name=kind]")).to_have_value("image")
    page.select_option("select[name=kind]", "")  # and the page still works
    expect(page.locator(".gcard")).to_have_count(4)
    assert problems(page) == []

# ---------------------------------------------------------------------------
# 13. Card size


def columns(page) -> int:
    return page.eval_on_selector("#gallery-grid", "g => getComputedStyle(g).gridTemplateColumns.split(' ').length")


def test_the_card_size_changes_the_grid_and_survives_a_reload(page, live_server, login, team, owner):
    for i in range(8):
        wan_result(team, owner, prompt=f"tile {i}")
    signed_in(page, live_server, login)
    medium = columns(page)
    page.click("label.card-size-option[title='Small cards']")
    small = columns(page)
    page.click("label.card-size-option[title='Large cards']")
    large = columns(page)
    assert small > medium > large >= 1, (small, medium, large)
    take(page, "13-3-card-size-large-1280")

    page.reload()
    # Set before the grid is drawn: the first frame already has the large grid.
    assert page.evaluate("document.documentElement.getAttribute('data-card-size')") == "large"
    assert columns(page) == large
    expect(page.locator("input[data-card-size][value=large]")).to_be_checked()

    page.click("label.card-size-option[title='Small cards']")
    page.set_viewport_size(PHONE)
    assert columns(page) == 3
    take(page, "13-3-card-size-small-390")
    page.click("label.card-size-option[title='Large cards']")
    assert columns(page) == 1
    assert problems(page) == []


# ---------------------------------------------------------------------------
# 13. A phone: the Team link in reach, the filters folded


def test_on_a_phone_the_team_link_is_in_reach_and_the_filters_fold_away(page, live_server, login, team, owner):
    page.set_viewport_size(PHONE)
    wan_result(team, owner)
    signed_in(page, live_server, login, path="/gallery/?kind=video&status=succeeded")
    take(page, "13-4-phone-gallery-folded-390")

    team_link = page.locator(".mainnav a:has-text('Team')")
    box = team_link.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert page.evaluate("""() => { const a = [...document.querySelectorAll('.mainnav a')].find(a => a.textContent.trim() === 'Team');
                                   const r = a.getBoundingClientRect();
                                   return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === a; }""")

    toggle = page.locator("[data-filters-toggle]")
    expect(toggle).to_be_visible()
    expect(toggle).to_have_text(re.compile(r"Filters\s*2"))
    expect(page.locator("select[name=kind]")).to_be_hidden()
    expect(page.locator("input[name=q]")).to_be_visible()  # the search stays at hand
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.locator("select[name=kind]")).to_be_visible()
    page.select_option("select[name=status]", "")
    page.wait_for_url(lambda url: "status=" not in url)
    expect(toggle).to_have_text(re.compile(r"Filters\s*1"))
    take(page, "13-5-phone-gallery-filters-open-390")
    toggle.click()
    expect(page.locator("select[name=kind]")).to_be_hidden()

    team_link.click()
    page.wait_for_url(re.compile(r"/accounts/team/"))
    last_tab = page.locator("nav.tabs a").last  # the team pages' own tabs fit the screen too
    expect(last_tab).to_have_text("API tokens")
    box = last_tab.bounding_box()
    assert box["x"] + box["width"] <= PHONE["width"] - 16, box
    take(page, "13-6-phone-team-page-390")
    page.set_viewport_size(DESKTOP)
    page.goto("/gallery/")
    expect(page.locator("[data-filters-toggle]")).to_be_hidden()  # on a desktop the filters are simply there
    expect(page.locator("select[name=kind]")).to_be_visible()
    take(page, "13-7-gallery-1280")
    assert problems(page) == []


@pytest.mark.parametrize("width", [320, 360])
def test_the_team_link_is_in_reach_on_a_small_phone_too(page, live_server, login, team, owner, width):
    page.set_viewport_size({"width": width, "height": 740})
    signed_in(page, live_server, login, path="/")
    link = page.locator(".mainnav a:has-text('Team')")
    box = link.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
    link.click()
    page.wait_for_url(re.compile(r"/accounts/team/"))
    take(page, f"13-8-phone-team-link-{width}")
