"""Browser: a member creates a share link from a result's detail page; a visitor with no
session opens it in a fresh browser context and seeks the video. Fixtures from tests/e2e/conftest.py."""

import os
import re
from pathlib import Path

import pytest

from generations.models import Kind
from tests.conftest import PASSWORD
from tests.generations.share.conftest import make_result

SHOTS = Path(os.environ.get("KILN_SHOTS_DIR", "/tmp/shots-r8"))


def stranger_page(browser, **options):
    """A brand-new context with no cookies at all; console errors other than HTTP statuses
    (CSP violations, script errors) are collected."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, **options)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.problems = []
    page.on("console", lambda msg: page.problems.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    return page


def test_a_link_opens_in_a_fresh_browser_without_a_session_and_its_video_seeks(
        browser, page, login, live_server, transactional_db, team, owner):
    SHOTS.mkdir(parents=True, exist_ok=True)
    video = make_result(team, owner, kind=Kind.VIDEO, prompt="waves rolling over black sand, slow dolly")

    login(page, live_server, owner.email, PASSWORD)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(f"/g/{video.public_id}/")
    page.click("summary.share-form-title")  # the share form sits folded on the detail page
    page.fill("#share-title", "Black sand, take 2")
    page.check("input[name=show_prompt]")
    page.check("input[name=expiry][value='7d']")
    page.screenshot(path=str(SHOTS / "01-create-form.png"), full_page=True)
    page.click("button.share-submit")

    page.wait_for_selector("#share-url")
    share_url = page.input_value("#share-url")
    assert re.fullmatch(rf"{re.escape(live_server.url)}/s/[A-Za-z0-9_-]{{43}}/", share_url)
    assert page.get_by_text("it will not be shown again").is_visible()
    page.click("button[data-copy]")
    page.wait_for_selector("button.is-copied")
    assert page.evaluate("navigator.clipboard.readText()") == share_url
    page.screenshot(path=str(SHOTS / "02-created.png"), full_page=True)

    # A stranger: a brand-new context with no cookies at all.
    public = stranger_page(browser)
    ranges = []
    public.on("request", lambda r: ranges.append(r.headers.get("range")) if "/m/" in r.url else None)
    response = public.goto(share_url)
    assert response.status == 200
    assert response.headers["referrer-policy"] == "no-referrer"
    assert public.locator("h1").inner_text() == "Black sand, take 2"
    assert public.get_by_text("waves rolling over black sand, slow dolly").is_visible()
    assert public.locator("a.sp-download").is_visible()

    player = public.locator("video.sp-media")
    public.wait_for_function("() => document.querySelector('video').readyState >= 1", timeout=15_000)
    assert public.evaluate("document.querySelector('video').duration") == pytest.approx(4.0, abs=0.3)
    public.evaluate("""() => new Promise(resolve => {
        const v = document.querySelector('video');
        v.addEventListener('seeked', resolve, {once: true});
        v.currentTime = 2.5;
    })""")
    public.wait_for_function("() => document.querySelector('video').readyState >= 2", timeout=15_000)
    assert public.evaluate("document.querySelector('video').currentTime") == pytest.approx(2.5, abs=0.15)
    assert public.evaluate("document.querySelector('video').error") is None
    assert any(r and r.startswith("bytes=") for r in ranges), ranges
    player.scroll_into_view_if_needed()
    public.screenshot(path=str(SHOTS / "03-public-video.png"), full_page=True)

    # The team revokes it; the stranger's next request gets the plain "gone" page.
    page.goto("/shares/")
    page.screenshot(path=str(SHOTS / "04-share-list.png"), full_page=True)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button.share-revoke")
    page.wait_for_selector("tr.share-revoked")
    page.screenshot(path=str(SHOTS / "05-share-list-revoked.png"), full_page=True)

    gone = public.goto(share_url)
    assert gone.status == 410
    assert public.get_by_text("This link is no longer available.").is_visible()
    public.screenshot(path=str(SHOTS / "06-gone.png"), full_page=True)
    assert public.problems == [] and page.problems == []
    public.context.close()


def test_an_image_share_and_a_selection_look_right(browser, live_server, transactional_db, team, owner, teammate):
    """Screenshots of an image link and of a three-result link, for a human to look at."""
    from generations.share import services as sharing

    SHOTS.mkdir(parents=True, exist_ok=True)
    membership = owner.memberships.get(team=team)
    image = make_result(team, owner, prompt="a lighthouse at dusk, cinematic, volumetric light")
    _, token = sharing.create_share(membership, [image], show_prompt=True)
    results = [image, make_result(team, teammate, kind=Kind.VIDEO), make_result(team, owner)]
    _, many = sharing.create_share(membership, results, title="Three takes")

    page = stranger_page(browser)
    assert page.goto(f"{live_server.url}/s/{token}/").status == 200
    assert page.locator("img.sp-media").evaluate("img => img.naturalWidth") == 64
    page.screenshot(path=str(SHOTS / "07-public-image.png"), full_page=True)
    assert page.goto(f"{live_server.url}/s/{many}/").status == 200
    assert page.locator("figure.sp-item").count() == 3
    page.screenshot(path=str(SHOTS / "08-public-many.png"), full_page=True)
    phone = stranger_page(browser, is_mobile=True)
    phone.set_viewport_size({"width": 390, "height": 800})
    phone.goto(f"{live_server.url}/s/{token}/")
    phone.screenshot(path=str(SHOTS / "09-public-phone.png"), full_page=True)
    assert page.problems == [] and phone.problems == []
    phone.context.close()
    page.context.close()
