"""3. Live status under load.

Throughput: gunicorn with 2 (sync) workers on loopback; a Python load
generator in this process (8 threads, ``http.client``, a new connection per
request as gunicorn's sync workers close them) sends signed-in GETs for a fixed
time to the aggregate status endpoint (``generations:status_batch`` with 48
pending ids and the state each card shows, as gallery.js sends them) and to
``/bench/trivial/`` (bench/urls.py: ``login_required``, then "ok"), through
the same middleware. The two alternate twice (trivial, status, trivial,
status) so background load on the host hits both alike; the figure is
requests per second over both rounds.

Browser: headless Chromium (Playwright) opens the gallery of a team with 40
pending cards, signed in with a session cookie, and counts the requests to any
status URL for 10 s while visible, then for 10 s after the page is made hidden
(``document.visibilityState`` overridden to "hidden" and a
``visibilitychange`` event dispatched, as when the tab goes to the background).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from bench import common
from bench.common import Row, log

THREADS = 8
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def _pending_cards(team, membership, key, count: int):
    from generations.models import Generation, Prompt, Status

    now = datetime.now(UTC)
    prompt = Prompt.objects.create(team=team, author=membership.user, text="a paper boat on a flooded street")
    Generation.objects.bulk_create([
        Generation(team=team, author=membership.user, prompt=prompt, provider="shark", model="alibaba/wan-2.7",
                   kind="video", operation="text-to-video", params={"resolution": "480p", "duration": "5"},
                   provider_key=key, status=Status.RUNNING, provider_job_id=f"bench-{i}", provider_status="running",
                   progress=40, created=now - timedelta(seconds=i), submitted_at=now, started_at=now,
                   next_poll_at=now + timedelta(days=1), estimated_cost=1500)
        for i in range(count)])


def _status_query(team, membership) -> str:
    from generations.gallery.queries import card_queryset
    from generations.gallery.templatetags import card_info

    cards = card_queryset(membership).order_by("-created")[:48]
    return ",".join(f"{g.public_id}:{card_info(g, membership).state}" for g in cards)


def _browser(base: str, cookie: str, seconds: float) -> dict:
    from playwright.sync_api import sync_playwright

    seen: list[tuple[float, str]] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.add_cookies([{"name": "sessionid", "value": cookie, "url": base}])
            page = context.new_page()
            page.on("request", lambda r: seen.append((time.monotonic(), urlsplit(r.url).path)))
            page.goto(base + "/gallery/", wait_until="load")
            pending = page.locator("[data-pending]").count()
            page.wait_for_timeout(500)
            visible_from = time.monotonic()
            page.wait_for_timeout(seconds * 1000)
            hidden_from = time.monotonic()
            page.evaluate("""() => {
                Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "hidden"});
                Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
                document.dispatchEvent(new Event("visibilitychange"));
            }""")
            page.wait_for_timeout(seconds * 1000)
            hidden_to = time.monotonic()
        finally:
            browser.close()

    def status_requests(start: float, end: float) -> dict[str, int]:
        found: dict[str, int] = {}
        for at, path in seen:
            if start <= at < end and path.endswith("/status/"):
                kind = "aggregate" if path == "/gallery/status/" else "per-card"
                found[kind] = found.get(kind, 0) + 1
        return found

    return {"pending_cards": pending, "seconds": seconds,
            "visible": status_requests(visible_from, hidden_from),
            "hidden": status_requests(hidden_from + 0.2, hidden_to)}


def run(sandbox: common.Sandbox, quick: bool = False) -> tuple[list[Row], dict]:
    seconds = 3.0 if quick else 8.0
    browser_seconds = 6.0 if quick else 10.0
    team, (member,) = common.make_team("status")
    key = common.make_key(team, sandbox)
    _pending_cards(team, member, key, 48)
    page_team, (page_member,) = common.make_team("statuspage")
    _pending_cards(page_team, page_member, common.make_key(page_team, sandbox), 40)
    cookie = common.session_cookie(member.user)
    status_path = "/gallery/status/?ids=" + _status_query(team, member)

    headers = {"Cookie": f"sessionid={cookie}", "HX-Request": "true"}
    server, base = common.start_gunicorn(2)
    try:
        for path in ("/bench/trivial/", status_path):   # warm both workers
            common.http_load(base, path, 1.0, headers, THREADS)
        totals = {"trivial": [0, 0], "status": [0, 0]}
        for _ in range(2):
            for name, path in (("trivial", "/bench/trivial/"), ("status", status_path)):
                ok, bad = common.http_load(base, path, seconds / 2, headers, THREADS)
                totals[name][0] += ok
                totals[name][1] += bad
        rps = {name: ok / seconds for name, (ok, _) in totals.items()}
        errors = {name: bad for name, (_, bad) in totals.items()}
        log(f"status: {rps}, errors {errors}")
        browser = _browser(base, common.session_cookie(page_member.user), browser_seconds)
        log(f"status: browser {browser}")
    finally:
        server.stop()

    ratio = rps["status"] / rps["trivial"] if rps["trivial"] else 0.0
    per_interval = browser_seconds / 2.0   # kiln:tick every 2 s
    visible = browser["visible"]
    aggregate, per_card = visible.get("aggregate", 0), visible.get("per-card", 0)
    hidden = sum(browser["hidden"].values())
    details = {"rps": rps, "errors": errors, "ratio": ratio, "threads": THREADS, "seconds": seconds,
               "browser": browser}
    rows = [
        Row("status", "status_batch (48 pending) req/s, gunicorn -w 2", f"{rps['status']:.0f}/s",
            f"{rps['trivial']:.0f}/s trivial view", f"{ratio:.2f}", "≥ 0.50", ratio >= 0.5 and not errors["status"]),
        Row("status", f"status requests, {browser['pending_cards']} pending cards, {browser_seconds:g} s",
            f"{aggregate} aggregate + {per_card} per-card", f"{per_interval:.0f} ticks",
            f"{(aggregate + per_card) / per_interval:.1f} per tick",
            "1 per tick, not 1 per card", per_card == 0 and 0 < aggregate <= per_interval + 1),
        Row("status", f"status requests while hidden, {browser_seconds:g} s", str(hidden), "—", "—", "0", hidden == 0),
    ]
    return rows, details
