"""Browser: Kiln at 200 % zoom, with large text and on a small phone (issue 20, WCAG 1.4.4,
1.4.10, 2.4.1, 2.4.11).

- Text follows the reader's own font size: Chromium's default font size raised to 32 px (the
  setting "Font size" of chrome://settings, through DevTools' ``Page.setFontSizes``; a page
  zoom would also move the breakpoints, this moves only the text) doubles the body text and
  the headings together.
- Nothing passes the right edge and nothing needs a sideways scroll, on the main pages, at
  200 % browser zoom on a 1280 px screen (a 640 px CSS viewport at device pixel ratio 2), at
  320 px and at 200 % text on 1280: every element's box is checked, those inside a
  horizontal scroller too (a scroller hides what it holds just the same).
- The skip link is the first Tab of every page and moves the focus to the page's content.
- The sticky header (and the studio's Generate row) never covers the control that has the
  keyboard focus.

Screenshots go to $KILN_SHOTS_DIR (default /tmp/shots-e2e)/zoom/.
"""

import pytest
from playwright.sync_api import expect

from accounts.models import Membership
from accounts.tokens.services import create_token
from generations.boards.models import Board, BoardItem
from generations.keys.models import ProviderKey
from generations.share import services as sharing
from generations.team_webhooks.models import WebhookEndpoint
from tests.conftest import PASSWORD
from tests.e2e.conftest import SHOTS, sign_in
from tests.e2e.test_gallery_e2e import fill_gallery

pytestmark = pytest.mark.e2e

ZOOM_SHOTS = SHOTS / "zoom"

# name: (viewport, device scale factor, browser default font size in px)
VIEWS = {
    "desktop": ({"width": 1280, "height": 860}, 1, 16),
    "phone-390": ({"width": 390, "height": 844}, 2, 16),
    "zoom-200": ({"width": 640, "height": 430}, 2, 16),     # 1280 x 860 at 200 % browser zoom
    "phone-320": ({"width": 320, "height": 640}, 2, 16),
    "text-200": ({"width": 1280, "height": 860}, 1, 32),    # 200 % text only
}


def new_page(browser, live_server, view):
    viewport, scale, font = VIEWS[view]
    context = browser.new_context(base_url=live_server.url, viewport=viewport, device_scale_factor=scale)
    page = context.new_page()
    page.set_default_timeout(15_000)
    if font != 16:
        context.new_cdp_session(page).send("Page.setFontSizes", {"fontSizes": {"standard": font, "fixed": font * 13 // 16}})
    problems = []
    page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and "favicon" not in r.url else None)
    page.problems = problems
    page.view = view
    return page


def snap(page, name):
    """A screenshot of the whole page. With large text, a viewport as tall as the page instead of
    ``full_page``: Chromium draws a full-page capture with the default font size."""
    ZOOM_SHOTS.mkdir(parents=True, exist_ok=True)
    path = str(ZOOM_SHOTS / f"{name}.png")
    if VIEWS[page.view][2] == 16:
        page.screenshot(path=path, full_page=True)
        return
    viewport = page.viewport_size
    height = page.evaluate("() => document.documentElement.scrollHeight")
    page.set_viewport_size({"width": viewport["width"], "height": min(height, 8000)})
    page.screenshot(path=path)
    page.set_viewport_size(viewport)


# Every rendered element whose box passes the viewport's right (or left) edge, those inside
# a scroller included. Left out: what is not drawn (no box, a closed menu's items), what is
# hidden from everyone (visibility) and the visually-hidden pattern (1 px boxes, clipped: for screen readers).
PAST_THE_EDGE = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (!el.checkVisibility({visibilityProperty: true, contentVisibilityAuto: true})) continue;  // closed <details> too
    if (r.width <= 1 && r.height <= 1) continue;
    if (el.closest(".visually-hidden, dialog:not([open]), template")) continue;
    if (r.right > width + 0.5 || r.left < -0.5) {
      const text = (el.innerText || el.value || el.getAttribute("aria-label") || "").trim().slice(0, 40);
      out.push(`${el.tagName.toLowerCase()}${el.className && typeof el.className === "string" ? "." + el.className.trim().replace(/\\s+/g, ".") : ""} `
               + `[${Math.round(r.left)}..${Math.round(r.right)} of ${width}] ${JSON.stringify(text)}`);
    }
  }
  return out;
}"""


def misfits(page, label) -> list[str]:
    """What does not fit the screen: a sideways scroll of the page, elements past its edge."""
    found = []
    sideways = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    if sideways > 0:
        found.append(f"{label}: the page scrolls {sideways} px sideways")
    found += [f"{label}: {what}" for what in page.evaluate(PAST_THE_EDGE)[:12]]
    return found


@pytest.fixture
def content(transactional_db, team, owner, teammate):
    """A team with something on every page: results, keys, a share, a board, a webhook, tokens."""
    made = fill_gallery(team, owner, teammate, count=12)
    for i in range(2):
        key = ProviderKey(team=team, provider="shark", label=f"Production key {i}", is_active=bool(i),
                          base_url=f"https://api.shark.example/v1/a-rather-long/path/{i}")
        key.set_api_key(f"sk-live-shark-{i:04d}")
        key.save()
    membership = Membership.objects.get(user=owner, team=team)
    sharing.create_share(membership, made[:3], title="Preview for the client, take two")
    board = Board.objects.create(team=team, name="Coastal moodboard for the spring campaign", created_by=owner)
    for g in made[:4]:
        BoardItem.objects.create(board=board, generation=g, added_by=owner)
    endpoint = WebhookEndpoint(team=team, url="https://hooks.example.com/kiln/a-rather-long-path/receive",
                               description="Slack relay", events=["generation.succeeded"], created_by=owner)
    endpoint.set_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    endpoint.save()
    create_token(membership, "Nightly export from the render farm", ["read", "share"])
    create_token(Membership.objects.get(user=teammate, team=team), "Slack bot", ["generate"])
    return {"result": made[-1], "board": board}


def pages(content):
    return [("studio", "/"), ("gallery", "/gallery/"), ("result", f"/g/{content['result'].public_id}/"),
            ("usage", "/accounts/usage/"), ("team-usage", "/accounts/team/usage/"), ("members", "/accounts/team/"),
            ("keys", "/accounts/team/keys/"), ("tokens", "/accounts/tokens/"), ("team-tokens", "/accounts/team/tokens/"),
            ("webhooks", "/accounts/team/webhooks/"), ("credits", "/accounts/team/credits/"), ("shares", "/shares/"),
            ("boards", "/boards/"), ("board", f"/gallery/?board={content['board'].public_id}"),
            ("share-board", f"/boards/{content['board'].public_id}/share/")]


@pytest.mark.parametrize("view", list(VIEWS))
def test_nothing_passes_the_right_edge(browser, live_server, content, owner, view):
    page = new_page(browser, live_server, view)
    page.goto("/accounts/login/")
    found = misfits(page, f"{view} sign-in")
    snap(page, f"{view}-sign-in")
    sign_in(page, live_server, owner.email, PASSWORD)
    for name, path in pages(content):
        page.goto(path)
        found += misfits(page, f"{view} {name} {path}")
        snap(page, f"{view}-{name}")
    assert found == [], "\n".join(found)
    # The row actions the issue found behind the tables' edge are on the screen.
    for path, action in [("/accounts/team/keys/", "Delete"), ("/accounts/team/keys/", "Disable"),
                         ("/accounts/tokens/", "Revoke"), ("/accounts/team/", "Remove"), ("/shares/", "Revoke")]:
        page.goto(path)
        buttons = page.locator("main button:visible").filter(has_text=action)
        assert buttons.count() > 0, (view, path, action)
        width = page.viewport_size["width"]
        for i in range(buttons.count()):
            box = buttons.nth(i).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, (view, path, action, box)
    assert page.problems == []
    page.context.close()


def test_text_follows_the_readers_font_size(browser, live_server, content, owner):
    """Body text, headings, labels, table cells and buttons all double when the reader doubles
    the default font size (the body text stayed at 15 px while the headings grew). Compared at
    the same width in em (640 px at 16 px, 1280 px at 32 px), so the same layout rules apply."""
    sizes = {}
    for view in ("zoom-200", "text-200"):
        page = new_page(browser, live_server, view)
        sign_in(page, live_server, owner.email, PASSWORD)
        page.goto("/accounts/team/keys/")
        sizes[view] = page.evaluate("""() => Object.fromEntries(
            ["body", "h1", "h2", "main p", "main button", ".table td", ".mainnav a", ".account"].map(sel => {
              const el = document.querySelector(sel);
              return [sel, el ? parseFloat(getComputedStyle(el).fontSize) : null];
            }))""")
        page.context.close()
    normal, large = sizes["zoom-200"], sizes["text-200"]
    assert normal["body"] == 15
    for selector, size in normal.items():
        assert size, selector
        assert large[selector] == pytest.approx(2 * size, abs=0.6), (selector, size, large[selector])


def tab_to(page, key="Tab"):
    page.keyboard.press(key)
    return page.evaluate("""() => {
      const el = document.activeElement;
      return {tag: el.tagName.toLowerCase(), id: el.id, cls: String(el.className || ""),
              text: (el.innerText || el.value || el.getAttribute("aria-label") || "").trim().slice(0, 30),
              inMain: !!el.closest("main"), inHeader: !!el.closest("header.topbar")};
    }""")


@pytest.mark.parametrize("path", ["/", "/gallery/", "/accounts/team/keys/", "/shares/", "/accounts/tokens/"])
def test_the_skip_link_is_the_first_tab_and_leads_to_the_content(browser, live_server, content, owner, path):
    page = new_page(browser, live_server, "desktop")
    sign_in(page, live_server, owner.email, PASSWORD)
    page.goto(path)
    skip = page.get_by_role("link", name="Skip to content")
    assert skip.bounding_box()["y"] + skip.bounding_box()["height"] <= 0  # out of sight until focused
    first = tab_to(page)
    assert (first["tag"], first["cls"], first["text"]) == ("a", "skip-link", "Skip to content"), first
    box = skip.bounding_box()
    assert box["y"] >= 0 and box["x"] >= 0 and box["x"] + box["width"] <= 1280, box
    snap(page, f"skip-link-{path.strip('/').replace('/', '-') or 'studio'}")
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()
    # The next Tab is the content's first control (on the gallery: its first filter), not the header's.
    expected = page.evaluate("""() => {
      const all = document.querySelectorAll("main a[href], main button, main input:not([type=hidden]), main select, main textarea, main summary, main [tabindex]:not(main)");
      const el = [...all].find(e => e.tabIndex >= 0 && !e.disabled && e.checkVisibility({visibilityProperty: true}));
      return (el.innerText || el.value || el.getAttribute("aria-label") || el.name || "").trim().slice(0, 30);
    }""")
    after = tab_to(page)
    assert after["inMain"] and not after["inHeader"], after
    assert after["text"] == expected, (after, expected)
    assert page.problems == []
    page.context.close()


# The focused element, where it is, and what is drawn at its centre: a sticky bar (the header,
# the studio's Generate row) over it is a control the keyboard user cannot see.
FOCUS_SEEN = """() => {
  const el = document.activeElement;
  if (!el || el === document.body || el.closest("header.topbar, .skip-link")) return null;
  const box = el.getBoundingClientRect();
  if (box.width === 0 && box.height === 0) return null;
  // A textarea is scrolled to its caret: its first lines must show, not all of it.
  const rem = parseFloat(getComputedStyle(document.documentElement).fontSize);
  const r = el.tagName === "TEXTAREA"
    ? {top: box.top, bottom: Math.min(box.bottom, box.top + 2.5 * rem), left: box.left, right: box.right,
       width: box.width, height: Math.min(box.height, 2.5 * rem)}
    : box;
  const name = `${el.tagName.toLowerCase()} ${JSON.stringify((el.innerText || el.getAttribute("aria-label") || el.name || "").trim().slice(0, 30))}`;
  const bars = [document.querySelector("header.topbar"), ...document.querySelectorAll(".submit-row")]
    .filter(b => b && !b.contains(el) && getComputedStyle(b).position === "sticky");
  for (const bar of bars) {
    const b = bar.getBoundingClientRect();
    if (r.top < b.bottom - 1 && r.bottom > b.top + 1 && r.left < b.right && r.right > b.left)
      return `${name} [${Math.round(r.top)}..${Math.round(r.bottom)}] under ${bar.className} [${Math.round(b.top)}..${Math.round(b.bottom)}]`;
  }
  const x = Math.min(Math.max(r.left + r.width / 2, 0), innerWidth - 1);
  const y = Math.min(Math.max(r.top + r.height / 2, 0), innerHeight - 1);
  const hit = document.elementFromPoint(x, y);
  if (hit && hit !== el && !el.contains(hit) && bars.some(b => b.contains(hit)))
    return `${name}: its centre shows ${hit.tagName.toLowerCase()}.${hit.className}`;
  return "";
}"""


@pytest.mark.parametrize("view", ["desktop", "zoom-200", "text-200"])
@pytest.mark.parametrize("path", ["/gallery/", "/"])
def test_the_focused_control_is_never_under_the_sticky_bars(browser, live_server, content, owner, view, path):
    """Tab forward through the page, then Shift+Tab back up: each control the focus lands on is
    in full view, not under the sticky header (nor, in the studio, its sticky Generate row)."""
    page = new_page(browser, live_server, view)
    if view == "desktop":
        page.set_viewport_size({"width": 1280, "height": 600})  # more to scroll, and the studio's form too
    sign_in(page, live_server, owner.email, PASSWORD)
    page.goto(path)
    hidden, checked = [], 0
    for key in ["Tab"] * 70 + ["Shift+Tab"] * 70:
        page.keyboard.press(key)
        problem = page.evaluate(FOCUS_SEEN)  # None: nothing to check (the header, the skip link)
        checked += problem is not None
        if problem:
            hidden.append(f"{key}: {problem}")
    assert hidden == [], "\n".join(hidden[:20])
    assert checked > 100  # the walk went through the page's controls, not round the header
    assert page.problems == []
    page.context.close()
