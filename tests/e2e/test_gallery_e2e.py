"""Browser: the gallery filters, searches and scrolls; the lightbox answers the keyboard;
a video plays and seeks on the detail page; pending cards update through one status poll.

Screenshots go to /tmp/shots-r6/ (KILN_SHOTS_DIR to change it).
"""

import colorsys
import datetime as dt
import os
import re
from pathlib import Path

import pytest
from django.utils import timezone

from generations.models import Generation, Kind, Status
from tests.conftest import PASSWORD
from tests.generations.gallery.conftest import add_media, make_generation, png_bytes

pytestmark = pytest.mark.e2e

SHOTS = Path(os.environ.get("KILN_SHOTS_DIR", "/tmp/shots-r6"))
PROMPTS = [
    "a serene lake at sunset, mist over the water", "neon city street in the rain, reflections",
    "portrait of an old fisherman, dramatic light", "a red fox running through fresh snow",
    "isometric cozy cabin in a pine forest", "macro shot of a dew drop on a leaf",
    "desert dunes under a violet sky", "an astronaut tending a greenhouse on Mars",
]


@pytest.fixture
def member_page(page, live_server, login, transactional_db, owner):
    """R1's ``page`` (console errors and 5xx in ``page.problems``), signed in as the owner
    through the real login form, wider, and also noting 4xx answers."""
    page.set_viewport_size({"width": 1360, "height": 900})
    page.on("response", lambda r: page.problems.append(f"{r.status} {r.url}")
            if 400 <= r.status < 500 and "favicon" not in r.url else None)
    login(page, live_server, owner.email, PASSWORD)
    return page


def problems(page) -> list[str]:
    return list(page.problems)


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def colourful(i):
    r, g, b = colorsys.hsv_to_rgb((i * 0.137) % 1, 0.55, 0.95)
    r2, g2, b2 = colorsys.hsv_to_rgb((i * 0.137 + 0.3) % 1, 0.7, 0.45)
    return png_bytes((96, 96), (int(r * 255), int(g * 255), int(b * 255)), (int(r2 * 255), int(g2 * 255), int(b2 * 255)))


def fill_gallery(team, owner, teammate, count=60):
    start = timezone.now() - dt.timedelta(hours=3)
    made = []
    for i in range(count):
        video = i % 9 == 4
        g = make_generation(team, owner if i % 3 else teammate, prompt=f"{PROMPTS[i % len(PROMPTS)]} #{i}",
                            kind=Kind.VIDEO if video else Kind.IMAGE,
                            model="alibaba/wan-2.7" if video else "openai/gpt-image-2",
                            created=start + dt.timedelta(minutes=i), finished_at=start + dt.timedelta(minutes=i, seconds=40),
                            actual_cost=1500 if video else 400)
        add_media(g, png=None if video else colourful(i))
        made.append(g)
    return made


def test_filter_search_and_infinite_scroll(member_page, live_server, team, owner, teammate):
    page = member_page
    fill_gallery(team, owner, teammate)
    failed = make_generation(team, owner, prompt="a glass teapot [moderate]", status=Status.FAILED,
                             error="Your request was rejected by our safety system.")
    make_generation(team, owner, prompt="a slow pan across a canyon", kind=Kind.VIDEO, model="alibaba/wan-2.7",
                    status=Status.RUNNING, progress=42, provider_status="in_progress")

    page.goto("/gallery/")
    assert page.locator(".gcard").count() == 48
    shot(page, "gallery-top")
    assert failed.error in page.locator(f"#card-{failed.public_id}").inner_text()

    # Scrolling to the end loads the next page in place (htmx "revealed")...
    page.locator(".gallery-more a").scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelectorAll('.gcard').length === 62")
    # ...with no duplicates, and the "Next page" link is gone at the end.
    ids = page.eval_on_selector_all(".gcard", "els => els.map(e => e.id)")
    assert len(ids) == len(set(ids)) == 62
    assert page.locator(".gallery-more").count() == 0
    shot(page, "gallery-scrolled")

    # Filters combine and stay in the URL: search + kind (they apply as they change: no Apply).
    page.fill("input[name=q]", "fox")
    page.select_option("select[name=kind]", "image")
    page.wait_for_url(re.compile(r"q=fox.*kind=image|kind=image.*q=fox"))
    page.wait_for_load_state("networkidle")
    cards = page.locator(".gcard")
    assert cards.count() > 0
    for text in cards.all_inner_texts():
        assert "fox" in text
    assert "kind=image" in page.url
    shot(page, "gallery-filtered")

    page.select_option("select[name=by]", "me")
    page.wait_for_url(re.compile(r"by=me"))
    page.wait_for_load_state("networkidle")
    assert 0 < page.locator(".gcard").count() < cards.count() + 1
    assert problems(page) == []


def test_the_lightbox_moves_with_the_arrow_keys_and_closes_with_escape(member_page, team, owner, teammate):
    page = member_page
    fill_gallery(team, owner, teammate, count=12)
    page.goto("/gallery/")
    total = page.locator("[data-lightbox]").count()
    page.locator(".gcard .card-media").first.click()
    box = page.locator(".lightbox")
    box.wait_for(state="visible")
    assert box.locator(".lb-count").inner_text() == f"1 / {total}"
    first_src = box.locator(".lb-media").get_attribute("src")
    shot(page, "lightbox")
    page.keyboard.press("ArrowRight")
    assert box.locator(".lb-count").inner_text() == f"2 / {total}"
    assert box.locator(".lb-media").get_attribute("src") != first_src
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert box.locator(".lb-count").inner_text() == f"{total} / {total}"  # wraps around
    # Videos play inline in the lightbox.
    page.keyboard.press("ArrowRight")
    for _ in range(total):
        if box.locator("video.lb-media").count():
            break
        page.keyboard.press("ArrowRight")
    assert box.locator("video.lb-media").count() == 1
    shot(page, "lightbox-video")
    page.keyboard.press("Escape")
    box.wait_for(state="hidden")
    assert page.locator(".lb-media").count() == 0
    assert problems(page) == []


def test_a_video_plays_and_seeks_on_the_detail_page(member_page, team, owner):
    page = member_page
    g = make_generation(team, owner, prompt="A fox running through snow, slow motion", kind=Kind.VIDEO,
                        model="alibaba/wan-2.7", finished_at=timezone.now(), actual_cost=2500,
                        params={"duration": 5, "resolution": "720p", "seed": 42},
                        created=timezone.now() - dt.timedelta(seconds=52),
                        submitted_at=timezone.now() - dt.timedelta(seconds=50),
                        started_at=timezone.now() - dt.timedelta(seconds=45))
    add_media(g)
    page.goto(f"/g/{g.public_id}/")
    video = page.locator("video.player")
    assert video.get_attribute("preload") == "metadata"
    page.wait_for_function("() => document.querySelector('video.player').readyState >= 1")
    assert page.evaluate("() => document.querySelector('video.player').duration") > 1.5
    page.evaluate("""() => new Promise(resolve => {
        const v = document.querySelector('video.player');
        v.muted = true;
        v.addEventListener('seeked', resolve, {once: true});
        v.currentTime = 1.2;
    })""")
    assert page.evaluate("() => document.querySelector('video.player').currentTime") == pytest.approx(1.2, abs=0.15)
    page.evaluate("() => document.querySelector('video.player').play()")
    page.wait_for_function("() => document.querySelector('video.player').currentTime > 1.3")
    page.evaluate("() => document.querySelector('video.player').pause()")
    shot(page, "detail-video")
    assert "Charged 2,500 cr" in page.locator(".facts").inner_text()
    assert problems(page) == []


def test_pending_cards_update_through_one_status_request_per_tick(member_page, team, owner):
    page = member_page
    pending = [make_generation(team, owner, prompt=f"pending job {i}", status=Status.RUNNING, progress=10 * i)
               for i in range(6)]
    status_requests = []
    page.on("request", lambda r: status_requests.append(r.url) if "/gallery/status/" in r.url else None)
    page.goto("/gallery/")
    page.wait_for_timeout(4500)
    # One aggregate request per 2-second tick for all six cards, never one per card.
    assert 1 <= len(status_requests) <= 3
    assert all(r.count("%3A") + r.count(":") >= 6 for r in status_requests)

    done = pending[0]
    Generation.objects.filter(pk=done.pk).update(status=Status.SUCCEEDED, progress=100, finished_at=timezone.now(),
                                                 actual_cost=900)
    add_media(done, png=colourful(3))
    card = page.locator(f"#card-{done.public_id}")
    card.locator(".badge-succeeded").wait_for(timeout=6000)
    assert card.locator("img").count() == 1
    assert card.get_attribute("data-pending") is None
    shot(page, "gallery-live")

    # A hidden tab stops asking.
    page.evaluate("""() => {
        Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    page.wait_for_timeout(500)
    before = len(status_requests)
    page.wait_for_timeout(4500)
    assert len(status_requests) == before


def test_the_detail_page_shows_lineage_and_goes_live_when_the_job_finishes(member_page, team, owner):
    page = member_page
    failed = make_generation(team, owner, prompt="A lighthouse in a storm, waves crashing", kind=Kind.VIDEO,
                             model="alibaba/wan-2.7", status=Status.FAILED, provider_status="FAILED",
                             error="The upstream model timed out (code 504). Please try again later.",
                             created=timezone.now() - dt.timedelta(minutes=5),
                             finished_at=timezone.now() - dt.timedelta(minutes=4))
    retry = make_generation(team, owner, prompt=failed.prompt.text, kind=Kind.VIDEO, model="alibaba/wan-2.7",
                            status=Status.RUNNING, progress=35, provider_status="running", parent=failed,
                            parent_relation="retry", submitted_at=timezone.now())
    page.goto(f"/g/{failed.public_id}/")
    assert "The upstream model timed out (code 504)." in page.locator(".detail-error").inner_text()
    assert "RETRY" in page.locator(".lineage").inner_text().upper()
    shot(page, "detail-failed")

    page.goto(f"/g/{retry.public_id}/")
    assert page.locator("#detail-live progress").get_attribute("value") == "35"
    shot(page, "detail-running")
    Generation.objects.filter(pk=retry.pk).update(status=Status.SUCCEEDED, progress=100, finished_at=timezone.now(),
                                                  actual_cost=2100, provider_status="succeeded")
    add_media(retry)
    page.locator("#detail-live video.player").wait_for(timeout=6000)
    assert page.locator("#detail-live progress").count() == 0
    assert "Charged 2,100 cr" in page.locator(".facts").inner_text()
    shot(page, "detail-live-done")
    assert problems(page) == []


def test_compare_batches_sit_side_by_side(member_page, team, owner):
    from generations.models import Batch

    page = member_page
    batch = Batch.objects.create(team=team, author=owner)
    now = timezone.now()
    for i, model in enumerate(["openai/gpt-image-2", "alibaba/wan-2.7", "openai/gpt-image-2"]):
        g = make_generation(team, owner, prompt="a paper boat on a puddle, golden hour", model=model, batch=batch,
                            created=now - dt.timedelta(milliseconds=i), finished_at=now)
        add_media(g, png=colourful(i + 20))
    fill_gallery(team, owner, owner, count=4)
    page.goto("/gallery/")
    group = page.locator("section.batch")
    assert group.locator(".gcard").count() == 3
    boxes = [group.locator(".gcard").nth(i).bounding_box() for i in range(3)]
    assert boxes[0]["y"] == boxes[1]["y"] == boxes[2]["y"]  # one row
    shot(page, "gallery-batch")


def test_the_gallery_and_detail_page_fit_a_phone(member_page, team, owner, teammate):
    page = member_page
    made = fill_gallery(team, owner, teammate, count=6)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/gallery/")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    shot(page, "phone-gallery")
    page.goto(f"/g/{made[-1].public_id}/")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    shot(page, "phone-detail")


@pytest.mark.parametrize("width", [320, 360, 390])
def test_the_header_is_two_rows_on_a_small_phone(member_page, team, width):
    """Sections on one row, the team, balance, Account and Sign out on the other (a long team
    name gives way), so the sticky header does not eat a third of a small screen."""
    page = member_page
    page.set_viewport_size({"width": width, "height": 740})
    page.goto("/gallery/")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    centres = [box["y"] + box["height"] / 2 for box in (
        page.locator(sel).bounding_box() for sel in
        (".account .team-name", ".account .credits-balance", ".account .user-email", ".account form.inline"))]
    assert max(centres) - min(centres) < 6, centres
    nav = page.locator(".mainnav").bounding_box()
    assert nav["y"] + nav["height"] <= min(centres)  # the sections above, not beside
    assert page.locator("header.topbar").bounding_box()["height"] < 90
    shot(page, f"phone-header-{width}")


def test_the_card_menu_of_the_left_column_stays_on_a_phone_screen(member_page, team, owner, teammate):
    """The "⋯" menu of a card in the left column used to open off the left edge of a phone."""
    page = member_page
    fill_gallery(team, owner, teammate, count=6)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/gallery/")
    cards = page.locator("#gallery-grid article.gcard")
    left = min((cards.nth(i) for i in range(cards.count())), key=lambda c: c.bounding_box()["x"])
    left.scroll_into_view_if_needed()
    left.locator(".card-menu > summary").click()
    menu = left.locator(".card-menu .menu")
    menu.get_by_text("Details").wait_for()
    box = menu.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    for item in ("Details", "Remix", "Archive", "Delete"):
        item_box = menu.get_by_text(item, exact=True).bounding_box()
        assert item_box["x"] >= 0 and item_box["x"] + item_box["width"] <= 390, (item, item_box)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    shot(page, "phone-card-menu-left")
    assert problems(page) == []


@pytest.mark.parametrize("width", [360, 390])
def test_the_team_and_share_tables_fit_a_phone(member_page, team, owner, teammate, width):
    """Members, provider keys, share links and credits: the page never scrolls sideways on a
    phone, and each row's action buttons are on the screen."""
    from generations.keys.models import ProviderKey
    from generations.share import services as sharing

    page = member_page
    made = fill_gallery(team, owner, teammate, count=4)
    for i, provider in enumerate(["shark", "shark"]):
        key = ProviderKey(team=team, provider=provider, label=f"Production key {i}", is_active=bool(i),
                          base_url=f"https://api.{provider}.example/v1/a-rather-long/path/{i}")
        key.set_api_key(f"sk-live-{provider}-{i:04d}")
        key.save()
    membership = owner.memberships.get(team=team)
    sharing.create_share(membership, made[:3], title="Preview for the client, take two")
    page.set_viewport_size({"width": width, "height": 800})
    for path, action in [("/accounts/team/", "Remove"), ("/accounts/team/keys/", "Delete"),
                         ("/shares/", "Revoke"), ("/accounts/team/credits/", "Ledger")]:
        page.goto(path)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width, path
        # By the words shown: the buttons' names go on (visually hidden) to say what they act on.
        buttons = page.locator("button, a").filter(has_text=re.compile(rf"^\s*{action}(\s|$)"))
        assert buttons.count() > 0, (path, action)
        for i in range(buttons.count()):
            box = buttons.nth(i).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (path, action, box)
        shot(page, f"phone-{width}-{path.strip('/').replace('/', '-')}")
    assert problems(page) == []
