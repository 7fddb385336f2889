"""Browser: the sticky header never covers the control the keyboard moved to, however many rows
it wraps to (a long team name, a long e-mail address, 200 % zoom on a 1280 px screen).

The scroll padding that keeps a focused control clear of the header follows the header's
measured height (kiln.js sets --header-h), not a fixed estimate in rem.
"""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, make_member

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
    page.goto("/accounts/login/")
    page.fill("input[name=username]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
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
