"""Browser: the sticky header never covers the control the keyboard moved to, however many rows
it wraps to (a long team name, a long e-mail address, 200 % zoom on a 1280 px screen).

The scroll padding that keeps a focused control clear of the header follows the header's
measured height (kiln.js sets --header-measured), not a fixed estimate in rem.
"""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, make_member
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e

LONG_EMAIL = "alexandra.montgomery-fitzgerald.contractor@northern-lights-coastal-photography.example.com"
LONG_TEAM = "Northern Lights Coastal Photography, Motion Design and Post-Production Collective"


@pytest.mark.parametrize("width", [640, 390, 1280])
def test_a_focused_control_is_not_under_a_tall_header(browser, live_server, transactional_db, team, owner, width):
    from accounts.models import Role, Team

    team.name = LONG_TEAM
    team.save()
    # Two teams: the header shows the team switcher (a select as wide as the longest name).
    other = Team.objects.create(slug="other", name="Another team, also with a long name: Coastal Motion")
    user = make_member(team, LONG_EMAIL, role=Role.ADMIN)
    make_member(other, LONG_EMAIL, role=Role.ADMIN)
    for i in range(25):
        make_member(team, f"member{i}@acme.test")
        make_member(other, f"member{i}@acme.test")

    # 640 css px at a device scale of 2: a 1280 px screen at 200 % zoom.
    context = browser.new_context(base_url=live_server.url, viewport={"width": width, "height": 600},
                                  device_scale_factor=2)
    page = context.new_page()
    sign_in(page, live_server, user.email, PASSWORD)
    page.goto("/accounts/team/")
    header = page.locator("header.topbar")
    header_height = header.evaluate("h => h.getBoundingClientRect().height")
    # Nothing of the header is cut off at the right edge (the team switcher was as wide as its
    # longest name).
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), header.evaluate(
        "h => [...h.querySelectorAll('*')].filter(e => e.getBoundingClientRect().right > innerWidth)"
        ".map(e => e.outerHTML.slice(0, 60))")
    # Long enough to scroll by more than the header, so a control can end up under it.
    assert page.evaluate("h => document.documentElement.scrollHeight > innerHeight + 2 * h", header_height)

    # From the bottom of the page, each control of <main> focused in turn going up (as Shift+Tab
    # does): each one, scrolled into view, stops below the header, not under it.
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    controls = page.locator("main a[href], main button:visible, main input:visible:not([type=hidden]), main select")
    count = controls.count()
    assert count > 5
    covered = []
    for i in reversed(range(count)):
        control = controls.nth(i)
        if not control.is_visible():
            continue
        control.focus()
        top = control.evaluate("c => c.getBoundingClientRect().top")
        bottom = header.evaluate("h => h.getBoundingClientRect().bottom")
        if top < bottom:
            covered.append((control.evaluate("c => c.outerHTML.slice(0, 80)"), round(top), round(bottom)))
    context.close()
    assert covered == [], f"header {header_height:.0f} px tall covers: {covered}"


@pytest.mark.parametrize("viewport, scale, sticky", [
    ({"width": 640, "height": 430}, 2, False),   # 1280 x 860 at 200 % zoom
    ({"width": 844, "height": 390}, 3, False),   # a phone on its side
    ({"width": 1280, "height": 800}, 1, True),
    ({"width": 640, "height": 600}, 2, True),    # 200 % zoom on a taller screen
    ({"width": 390, "height": 844}, 3, True),    # a phone upright
])
def test_a_short_window_lets_the_header_scroll_away(browser, live_server, transactional_db, team, owner,
                                                    viewport, scale, sticky):
    """Where the window is short the header is not kept in view (at 200 % zoom on a laptop it took
    some 40 % of the screen); where there is room it stays, as before."""
    for i in range(25):
        make_member(team, f"member{i}@acme.test")
    context = browser.new_context(base_url=live_server.url, viewport=viewport, device_scale_factor=scale)
    page = context.new_page()
    sign_in(page, live_server, owner.email, PASSWORD)
    page.goto("/accounts/team/")
    header = page.locator("header.topbar")
    height = header.evaluate("h => h.getBoundingClientRect().height")
    page.evaluate("h => window.scrollTo(0, 3 * h)", height)
    page.wait_for_function("() => window.scrollY > 0")
    top = header.evaluate("h => h.getBoundingClientRect().top")
    # The scroll padding follows: a focused control stops just under the header where it stays,
    # near the top where it has scrolled away.
    padding = page.evaluate("parseFloat(getComputedStyle(document.documentElement).scrollPaddingTop)")
    context.close()
    if sticky:
        assert top == 0 and padding > height, (top, padding, height)
    else:
        assert top < -height and padding < height / 2, (top, padding, height)


@pytest.mark.parametrize("height, header_stays, team_name", [
    (540, False, "Acme Studio"), (800, True, "Acme Studio"), (800, True, LONG_TEAM)])
def test_the_studio_panel_stops_where_the_header_ends(browser, live_server, transactional_db, team, owner,
                                                      height, header_stays, team_name):
    """The studio's form panel sticks below the header while the header stays (however many rows
    a long team name wraps it to), and at the top of a short window (where the header scrolls
    away), its height the window's less margins."""
    team.name = team_name
    team.save()
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": height})
    page = context.new_page()
    sign_in(page, live_server, owner.email, PASSWORD)
    page.goto("/")
    panel = page.locator(".studio-panel")
    if header_stays:  # kiln.js measures the header once it is drawn (a frame after the load)
        page.wait_for_function("""() => {
            const drawn = Math.ceil(document.querySelector("header.topbar").getBoundingClientRect().height);
            return getComputedStyle(document.querySelector(".studio-panel")).top === `${drawn + 16}px`;
        }""", timeout=5000)
    top, max_height = panel.evaluate(
        "p => [parseFloat(getComputedStyle(p).top), parseFloat(getComputedStyle(p).maxHeight)]")
    header, drawn = page.locator("header.topbar").evaluate(
        "h => [getComputedStyle(h).position, Math.ceil(h.getBoundingClientRect().height)]")
    context.close()
    rem = 16
    if header_stays:
        assert header == "sticky" and top == drawn + rem and max_height == height - drawn - 2 * rem, (
            top, max_height, drawn)
        assert drawn > 4 * rem or team_name != LONG_TEAM  # the long name wraps it to a second row
    else:
        assert header == "static" and top == 1 * rem and max_height == height - 2 * rem
