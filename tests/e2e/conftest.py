"""Browser tests: Playwright (sync API) driving Debian's Chromium against pytest-django's live server.

Fixtures:
- ``browser`` (per module): Chromium at /usr/bin/chromium (or $CHROMIUM). Missing, the tests
  are skipped with the reason, except when ``CI`` is set: then they fail.
- ``page``: a fresh context per test with ``base_url`` = the live server; console errors
  (CSP violations included) and failed requests are collected in ``page.problems``.
- ``login``: ``login(page, live_server, email, password)`` signs in through the real form.
- ``shot(page, name)``: a screenshot under $KILN_SHOTS_DIR (default /tmp/shots-e2e).

Every test in this folder is marked ``e2e`` and needs ``transactional_db`` (the live
server runs in another thread and must see the test's rows).
"""

import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# themselves (fixtures, assertions) are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SHOTS = Path(os.environ.get("KILN_SHOTS_DIR", "/tmp/shots-e2e"))
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session", autouse=True)
def _live_server_media_url():
    """Django's live server wraps the app in a media handler that cannot take MEDIA_URL=None
    (Kiln never serves media from a directory): give it a path no URL uses."""
    if django_settings.MEDIA_URL is None:
        django_settings.MEDIA_URL = "/__media-is-never-served-from-a-directory__/"


@pytest.fixture(scope="module")
def browser():
    # Module scope, not session: Playwright's sync API cannot run twice at once in one
    # thread, so a module that starts its own must find this one stopped.
    if not Path(CHROMIUM).exists():
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 500 else None)
    page.problems = problems
    yield page
    context.close()


def sign_in(page, live_server, email: str, password: str, next_path: str = "") -> None:
    """Sign in through the real form and wait for the redirect away from it."""
    page.goto(f"{live_server.url}/accounts/login/" + (f"?next={next_path}" if next_path else ""))
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


@pytest.fixture
def login():
    return sign_in


@pytest.fixture
def signed_in(page, live_server, transactional_db, owner):
    """The team's owner signed in; any 4xx but the favicon's is counted among ``page.problems``."""
    from tests.conftest import PASSWORD

    page.on("response", lambda r: page.problems.append(f"{r.status} {r.url}")
            if 400 <= r.status < 500 and "favicon" not in r.url else None)
    sign_in(page, live_server, owner.email, PASSWORD)
    return page


def take_shot(page, name: str, directory: Path | str | None = None) -> Path:
    folder = Path(directory) if directory else SHOTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def shot():
    return take_shot
