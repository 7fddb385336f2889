"""Browser: credits as a member sees them.

A member without credits tries to generate and is told how many credits it
needs; a member with credits watches the header balance drop when the job is
submitted, and after it finishes the balance and My usage show the real cost.
Also screenshots of the usage pages (/tmp/shots-r7/, KILN_SHOTS_DIR to change).

The engine runs in-process for real: submit and download tasks run eagerly on
commit, and a thread calls the engine's ``poll_due()`` in place of the beat.
"""

import datetime as dt
import logging
import os
import re
import threading
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from accounts.credits.models import LedgerEntry, Wallet
from accounts.credits.services import capture, release
from accounts.models import Role
from generations.engine.poll import poll_due
from generations.models import Generation, Status
from tests.accounts.credits.conftest import make_generation
from tests.conftest import PASSWORD, make_member
from tests.e2e.test_studio_e2e import choose_model

SHOTS = Path(os.environ.get("KILN_SHOTS_DIR", "/tmp/shots-r7"))
GPT_IMAGE = "shark:openai/gpt-image-2"
logger = logging.getLogger(__name__)


@pytest.fixture
def running_engine(settings):
    """``running_engine()`` starts it (after the test's rows exist: SQLite in memory
    does not like a writer and the beat's reads at the same moment)."""
    from tests.brokers import set_celery_conf

    settings.KILN_POLL_TICK_SECONDS = 0.5
    previous: dict = {}
    stop = threading.Event()
    thread = threading.Thread(target=lambda: beat(), name="credits-test-beat", daemon=True)

    def beat():
        while not stop.is_set():
            try:
                poll_due()
            except Exception:
                logger.exception("poll_due failed in the test beat")
            finally:
                connection.close()
            stop.wait(0.3)

    def start():
        previous.update(set_celery_conf(task_always_eager=True))
        thread.start()

    yield start
    stop.set()
    if thread.is_alive():
        thread.join(10)
    if previous:
        set_celery_conf(**previous)


def credits_in(text: str) -> int:
    return int(re.sub(r"[^\d-]", "", text))


def header_balance(page) -> int:
    return credits_in(page.inner_text("#header-balance .amount"))


def open_studio_with_image_model(page, prompt: str) -> int:
    """Choose GPT Image 2, type a prompt; returns the estimate the studio shows."""
    page.goto("/")
    page.wait_for_selector("#studio-form")
    choose_model(page, GPT_IMAGE, "quality")
    page.fill("#id_prompt", prompt)
    page.wait_for_load_state("networkidle")
    return credits_in(page.inner_text("#studio-estimate .estimate-credits"))


def test_a_member_without_credits_is_told_what_it_needs(page, live_server, login, team, owner, sandbox, sandbox_key):
    """Generate is off, with what the job needs and whom to ask (tests/e2e/test_studio_keeps_work_e2e.py
    has the rest: the names, an admin sent to the Credits page, Generate coming back on)."""
    sandbox_key(team, "shark")
    make_member(team, "broke@acme.test")
    login(page, live_server, "broke@acme.test", PASSWORD)
    assert header_balance(page) == 0
    needed = open_studio_with_image_model(page, "A lighthouse in a storm")
    assert needed > 0
    assert page.is_disabled(".studio-submit")
    assert (f"Generate is off: this needs {needed:,} credits and you have 0."
            in page.inner_text("#credit-help"))
    page.screenshot(path=str(SHOTS / "01-not-enough-credits.png"))
    assert Generation.objects.count() == 0
    assert page.problems == []


def test_the_header_balance_drops_when_a_job_runs(page, live_server, login, team, owner, sandbox, sandbox_key,
                                                  running_engine):
    SHOTS.mkdir(parents=True, exist_ok=True)
    sandbox.control(duration=1.0)
    sandbox_key(team, "shark")
    running_engine()
    login(page, live_server, "owner@acme.test", PASSWORD)
    before = header_balance(page)
    assert before == 1_000_000
    assert " ".join(page.inner_text("#header-balance").split()) == "1,000,000 credits ≈ $100.00"
    estimate = open_studio_with_image_model(page, "A ceramic teapot, studio light")
    page.evaluate("window.__sameDocument = true")
    page.click(".studio-submit")
    page.wait_for_selector("#gallery-grid [data-card]")
    for _ in range(50):
        if header_balance(page) != before:
            break
        page.wait_for_timeout(100)
    assert header_balance(page) == before - estimate  # reserved at once, shown without a reload
    assert page.evaluate("window.__sameDocument") is True
    page.screenshot(path=str(SHOTS / "02-balance-after-submit.png"))

    page.locator("#gallery-grid [data-card].status-succeeded").first.wait_for(timeout=60_000)
    generation = Generation.objects.get()
    assert generation.status == Status.SUCCEEDED
    wallet = Wallet.objects.get(membership__user=owner, membership__team=team)
    assert wallet.reserved == 0
    page.goto("/accounts/usage/")
    assert header_balance(page) == wallet.available == before - generation.actual_cost
    ledger = page.inner_text("#ledger")
    assert "Capture" in ledger and "Reserve" in ledger
    page.screenshot(path=str(SHOTS / "03-my-usage.png"), full_page=True)
    assert not page.problems, page.problems


def test_screenshots_of_the_team_pages(page, live_server, login, team, owner, teammate):
    SHOTS.mkdir(parents=True, exist_ok=True)
    other = make_member(team, "designer@acme.test", Role.MEMBER, credits=200_000)
    for i, (who, provider, model, cost) in enumerate([
        (owner, "shark", "openai/gpt-image-2", 1_800), (teammate, "shark", "alibaba/wan-2.7", 12_000),
        (other, "shuttleai", "flux-dev", 900), (teammate, "sealink", "seedance-pro", 25_000),
    ]):
        for n in range(i + 2):
            g = make_generation(team, who, estimate=cost, provider=provider, model=model)
            (capture(g, cost + (300 if n == 1 else 0)) if n % 3 else release(g))
            if n % 3 == 0:
                Generation.objects.filter(pk=g.pk).update(status=Status.FAILED)
    # Spread the work over the last weeks so the chart has something to show.
    for i, g in enumerate(Generation.objects.order_by("pk")):
        when = timezone.now() - dt.timedelta(days=(i * 5) % 27, hours=i)
        Generation.objects.filter(pk=g.pk).update(created=when)
        LedgerEntry.objects.filter(generation_ref=g.public_id).update(created=when)
    make_generation(team, teammate, estimate=5_000, status=Status.EXPIRED, needs_review=True,
                    error="No answer from Shark AI within 15 minutes.")
    login(page, live_server, "owner@acme.test", PASSWORD)
    page.goto("/accounts/team/usage/")
    page.wait_for_selector("svg.usage-chart")
    page.screenshot(path=str(SHOTS / "04-team-usage.png"), full_page=True)
    page.select_option("#id_period", "month")
    page.click(".usage-filters button[type=submit]")
    page.wait_for_url(re.compile(r"period=month"))
    page.wait_for_selector("#by-period")
    page.screenshot(path=str(SHOTS / "05-team-usage-month.png"), full_page=True)
    page.goto("/accounts/team/credits/")
    page.screenshot(path=str(SHOTS / "06-wallets.png"), full_page=True)
    page.goto("/accounts/usage/")
    page.screenshot(path=str(SHOTS / "07-my-usage-owner.png"), full_page=True)
    assert not page.problems, page.problems
