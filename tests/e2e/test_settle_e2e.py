"""A job that needs review, in the browser: the card and the page say what happened, and a team
owner settles it by clicking (refund from the card, charge from the page); a member only reads.
Screenshots at desktop width and on a 390 px phone go to $KILN_SHOTS_DIR (default /tmp/shots-settle)."""

import os
from pathlib import Path

import pytest

from accounts.credits import services as credits
from generations.models import Generation, Kind, Status
from tests.conftest import PASSWORD
from tests.generations.gallery.conftest import make_generation, membership_of
from tests.generations.gallery.test_settle import WORDS

pytestmark = pytest.mark.e2e

SHOTS = Path(os.environ.get("KILN_SHOTS_DIR", "/tmp/shots-settle"))


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def held_job(team, author, prompt="a lighthouse at dusk, waves breaking"):
    g = make_generation(team, author, prompt=prompt, kind=Kind.VIDEO, model="alibaba/wan-2.7", status=Status.FAILED,
                        needs_review=True, estimated_cost=4_000, provider_job_id="task-7f3a9c2e", error=WORDS)
    credits.reserve(credits.wallet_for(membership_of(author, team)), g, 4_000)
    return g


def signed_in(page, live_server, login, user, width):
    page.set_viewport_size({"width": width, "height": 900 if width > 500 else 844})
    login(page, live_server, user.email, PASSWORD)
    return page


def fits(page, width):
    return page.evaluate("() => document.documentElement.scrollWidth") <= width


def test_an_owner_refunds_a_held_job_from_its_card(page, live_server, login, transactional_db, team, owner,
                                                   teammate):
    g = held_job(team, teammate)
    before = credits.wallet_for(membership_of(teammate, team)).available
    signed_in(page, live_server, login, owner, 1360)
    page.goto("/gallery/")
    card = page.locator(f"#card-{g.public_id}")
    assert "download link had expired" in card.inner_text()
    assert "4,000 cr held" in card.inner_text()
    shot(page, "desktop-gallery-needs-review")
    card.get_by_role("button", name="Refund 4,000 cr").click()
    page.locator(f"#card-{g.public_id} .card-notice").wait_for()
    text = page.locator(f"#card-{g.public_id}").inner_text()
    assert "Refunded: 4,000 credits went back to" in text and "Not charged" in text
    assert page.locator(f"#card-{g.public_id} .review-box").count() == 0
    shot(page, "desktop-gallery-refunded")
    g.refresh_from_db()
    assert not g.needs_review
    assert credits.wallet_for(membership_of(teammate, team)).available == before + 4_000
    assert page.problems == []


@pytest.mark.parametrize("width", [1360, 390])
def test_an_owner_charges_a_held_job_from_its_page(page, live_server, login, transactional_db, team, owner,
                                                   teammate, width):
    g = held_job(team, teammate)
    signed_in(page, live_server, login, owner, width)
    page.goto(f"/g/{g.public_id}/")
    panel = page.locator(".review-panel")
    assert "Needs review" in panel.inner_text() and "task-7f3a9c2e" in panel.inner_text()
    assert "asking Shark AI again gave no working one" in page.locator(".detail-error").inner_text()
    assert fits(page, width)
    label = "desktop" if width > 500 else "phone"
    shot(page, f"{label}-detail-needs-review")
    panel.get_by_role("button", name="Charge 4,000 cr").click()
    page.wait_for_url(f"**/g/{g.public_id}/")
    page.get_by_text("Charged 4,000 credits to").wait_for()
    assert page.locator(".review-panel").count() == 0
    assert "Charged 4,000 cr" in page.locator(".facts").inner_text()
    shot(page, f"{label}-detail-charged")
    g.refresh_from_db()
    assert not g.needs_review and g.actual_cost == 4_000
    assert page.problems == []


def test_a_member_reads_what_happened_but_gets_no_settle_buttons_on_a_phone(page, live_server, login,
                                                                          transactional_db, team, owner, teammate):
    g = held_job(team, owner)
    signed_in(page, live_server, login, teammate, 390)
    page.goto("/gallery/")
    card = page.locator(f"#card-{g.public_id}")
    assert "A team owner or admin settles it" in card.inner_text()
    assert card.get_by_role("button", name="Refund 4,000 cr").count() == 0
    assert fits(page, 390)
    shot(page, "phone-gallery-member-needs-review")
    page.goto(f"/g/{g.public_id}/")
    assert "A team owner or admin settles it" in page.locator(".review-panel").inner_text()
    assert page.get_by_role("button", name="Charge 4,000 cr").count() == 0
    assert fits(page, 390)
    shot(page, "phone-detail-member-needs-review")
    assert Generation.objects.get(pk=g.pk).needs_review
    assert page.problems == []
