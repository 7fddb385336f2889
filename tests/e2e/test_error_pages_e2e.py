"""Browser: the error pages are Kiln's pages, not Django's bare ones.

404, 403 (a member on a manager's page), 403 after a refused CSRF check, 500 and the storage's
503 each show Kiln's header (its name linking home), the skip link, one h1, words a member
can act on and a way back; each has no WCAG 2.2 A/AA violation (axe) in the light theme or the
dark one, under the CSP, with no console error.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD, make_member
from tests.e2e.axe import axe_available, describe, violations

pytestmark = pytest.mark.e2e


@pytest.fixture
def failing_urls(settings):
    settings.ROOT_URLCONF = "tests.e2e.error_urls"


def looks_like_kiln(page, status: int, response, heading: str) -> dict:
    found = {}
    if response.status != status:
        found["status"] = response.status
    if page.locator("header.topbar a.brand").count() != 1:
        found["header"] = "no Kiln header"
    if page.locator("a.skip-link[href='#main']").count() != 1:
        found["skip link"] = "missing"
    if page.locator("h1").count() != 1:
        found["h1"] = page.locator("h1").count()
    elif heading.lower() not in page.locator("h1").inner_text().lower():
        found["h1 text"] = page.locator("h1").inner_text()
    # Kiln's stylesheet applies: the page's background is the theme's, not the browser's white.
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    scheme = page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
    if scheme and background in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)"):
        found["dark background"] = background
    if page.locator(".skip-link").evaluate("a => getComputedStyle(a).position") != "absolute":
        found["stylesheet"] = "kiln.css not applied"
    if page.locator("main a[href='/']").count() < 1:
        found["way back"] = "no link home in <main>"
    items = violations(page)
    if items:
        found["axe"] = describe(items)
    return found


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_error_pages_are_kiln_pages_without_violations(page, live_server, login, transactional_db, team, owner,
                                                       failing_urls, scheme):
    axe_available()
    page.emulate_media(color_scheme=scheme)
    found = {}

    response = page.goto("/does-not-exist/")
    found["404"] = looks_like_kiln(page, 404, response, "not found")

    # A refused CSRF check: the sign-in form posted without its token (an expired page, say).
    page.goto("/accounts/login/")
    page.locator("input[name=csrfmiddlewaretoken]").evaluate("i => i.remove()")
    page.fill("input[name=username]", owner.email)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation() as nav:
        page.click("button[type=submit]")
    found["403 csrf"] = looks_like_kiln(page, 403, nav.value, "expired")

    mate = make_member(team, "mate@kiln.test")
    login(page, live_server, mate.email, PASSWORD)
    response = page.goto("/accounts/team/keys/")
    found["403"] = looks_like_kiln(page, 403, response, "not allowed")
    # The reason PermissionDenied gives is shown: it was written for the member.
    expect(page.locator("main")).to_contain_text("Only team owners and admins can do this.")

    response = page.goto("/__boom__/")
    found["500"] = looks_like_kiln(page, 500, response, "went wrong")
    response = page.goto("/__storage_down__/")
    found["503 storage"] = looks_like_kiln(page, 503, response, "Media unavailable")

    found = {label: items for label, items in found.items() if items}
    assert not found, found
    # Each error status is also a console line ("Failed to load resource"); anything else (a CSP
    # refusal, a script error) is a problem. A stylesheet that failed is caught above.
    assert [p for p in page.problems if "Failed to load resource" not in p
            and "/__boom__/" not in p and "/__storage_down__/" not in p] == []

