"""Browser: a team owner's usage page and the operator's usage report in the Django admin
count cancelled jobs in a column of their own (a model with 3 jobs: 2 succeeded, 1 cancelled).

Screenshots go to /tmp/shots-usage/ (KILN_SHOTS_DIR to change it), desktop and 390 px.
"""

import os
from pathlib import Path

import pytest

from accounts.credits.services import capture, release
from accounts.models import User
from generations.models import Status
from tests.accounts.credits.conftest import make_generation
from tests.conftest import PASSWORD

pytestmark = pytest.mark.e2e

SHOTS = Path(os.environ.get("KILN_SHOTS_DIR", "/tmp/shots-usage"))


def cells(page, table_id: str, label: str) -> list[str]:
    row = page.locator(f"#{table_id} tbody tr").filter(has=page.locator("td", has_text=label)).first
    return [text.split("\n")[0].strip() for text in row.locator("td").all_inner_texts()]


@pytest.fixture
def jobs(transactional_db, team, owner, teammate, other_team, outsider):
    for _ in range(2):
        capture(make_generation(team, owner, provider="shark", model="shark-image-1"), 1_000)
    release(make_generation(team, owner, provider="shark", model="shark-image-1", status=Status.CANCELLED))
    capture(make_generation(team, teammate, provider="shuttleai", model="flux-dev", estimate=3_000), 2_500)
    make_generation(team, teammate, provider="shuttleai", model="flux-dev", status=Status.FAILED, reserved=False)
    capture(make_generation(other_team, outsider, estimate=4_000), 4_000)


def test_the_team_usage_page_counts_cancelled_jobs_apart(page, live_server, login, jobs, owner):
    SHOTS.mkdir(parents=True, exist_ok=True)
    login(page, live_server, owner.email, PASSWORD)
    page.goto("/accounts/team/usage/")
    header = page.locator("#by-model thead th").all_inner_texts()
    assert [h.lower() for h in header[:5]] == ["model", "jobs", "succeeded", "failed", "cancelled"]
    # jobs, succeeded, failed, cancelled, failure rate, credits
    assert cells(page, "by-model", "Shark")[1:6] == ["3", "2", "0", "1", "0.0%"]
    assert cells(page, "by-model", "ShuttleAI")[1:6] == ["2", "1", "1", "0", "50.0%"]
    assert page.locator("#usage-total-outcomes").inner_text() == "3 succeeded, 1 failed, 1 cancelled"
    page.screenshot(path=str(SHOTS / "team-usage-desktop.png"), full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/accounts/team/usage/")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # tables scroll inside their cards
    page.screenshot(path=str(SHOTS / "team-usage-phone.png"), full_page=True)
    assert page.problems == []


def test_the_admin_has_the_usage_report_for_every_team(page, live_server, login, jobs):
    SHOTS.mkdir(parents=True, exist_ok=True)
    User.objects.create_superuser("root@kiln.test", PASSWORD)
    page.goto("/admin/login/")
    page.fill("input[name=username]", "root@kiln.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(lambda url: "/admin/login/" not in url)  # signed in before going on
    page.goto("/admin/accounts/ledgerentry/")
    page.get_by_role("link", name="Usage report").click()
    page.wait_for_url("**/admin/accounts/ledgerentry/usage/")
    assert "6 jobs (4 succeeded, 1 failed, 1 cancelled)" in page.locator("#usage-summary").inner_text()
    assert cells(page, "by-team", "Acme Studio")[1:5] == ["5", "3", "1", "1"]
    assert cells(page, "by-team", "Rival Films")[1:5] == ["1", "1", "0", "0"]
    page.screenshot(path=str(SHOTS / "admin-usage-desktop.png"), full_page=True)

    # One team, per month.
    page.select_option("#id_team", "acme")
    page.select_option("#id_period", "month")
    page.click("#usage-filters input[type=submit]")
    page.wait_for_url("**team=acme**")
    assert page.locator("#by-team").count() == 0
    assert cells(page, "by-member", "owner@acme.test")[1:5] == ["3", "2", "0", "1"]
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SHOTS / "admin-usage-phone.png"), full_page=True)
    assert page.problems == []
