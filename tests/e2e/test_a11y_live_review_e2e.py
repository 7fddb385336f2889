"""Browser: a second look at the live parts for a keyboard and a screen reader (issue 20).

- Focus on Cancel survives status polls also in a browser without Element.moveBefore
  (Safari, older Firefox), where htmx's hx-preserve re-inserts the node and focus drops.
- The share form's own errors are announced (role=alert) and tied to their field.
- The live region keeps only its last few lines when many jobs finish at once.
"""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from generations.models import Generation, Status
from tests.conftest import PASSWORD
from tests.e2e.test_a11y_live_e2e import focused, move_progress, open_running_job, said
from tests.e2e.test_studio_e2e import wait_until
from tests.generations.gallery.conftest import make_generation
from tests.generations.share.conftest import make_result

pytestmark = pytest.mark.e2e

NO_MOVE_BEFORE = "delete Element.prototype.moveBefore;"


@pytest.mark.parametrize("where", ["gallery", "detail"])
def test_cancel_keeps_focus_through_polls_without_move_before(page, live_server, login, transactional_db, team, owner,
                                                              sandbox, sandbox_key, where):
    page.add_init_script(NO_MOVE_BEFORE)
    sandbox_key(team, "shark")
    job = make_generation(team, owner, prompt="A slow kiln", status=Status.QUEUED, progress=5)
    login(page, live_server, owner.email, PASSWORD)
    cancel = open_running_job(page, job, where)
    assert page.evaluate("() => !('moveBefore' in Element.prototype)")
    page.locator(cancel).focus()
    for percent in (20, 40, 60):
        move_progress(page, job, where, percent)
        page.wait_for_load_state("networkidle")
        assert page.locator(cancel).evaluate("el => el === document.activeElement"), focused(page)
    if where == "detail":
        return
    # Space on it still cancels: it is the live button, not a detached copy.
    page.keyboard.press("Space")
    wait_until(page, "() => document.querySelector('#live-status').textContent.includes('cancelled')")
    assert page.evaluate("() => document.activeElement !== document.body"), focused(page)
    assert not page.problems, page.problems


def test_share_form_errors_are_alerts_tied_to_their_field(page, live_server, login, transactional_db, team, owner):
    result = make_result(team, owner)
    login(page, live_server, owner.email, PASSWORD)
    page.goto(f"/g/{result.public_id}/")
    page.click("summary.share-form-title")
    page.check("input[name=expiry][value='date']")
    page.fill("input[name=expires_on]", "2001-01-01")
    page.click("button.share-submit")
    page.wait_for_selector(".share-error")
    error = page.locator(".share-error").first
    assert error.get_attribute("role") == "alert"
    error_id = error.get_attribute("id")
    assert error_id
    date = page.locator("input[name=expires_on]")
    assert error_id in (date.get_attribute("aria-describedby") or "").split()
    assert date.get_attribute("aria-invalid") == "true"
    # After the refused submit, focus is on the field in error, not on <body>.
    wait_until(page, "() => document.activeElement && document.activeElement.name === 'expires_on'")
    assert not [p for p in page.problems if "400" not in p and "422" not in p], page.problems


def test_many_jobs_finishing_at_once_keep_the_region_short(page, live_server, login, transactional_db, team, owner,
                                                          sandbox, sandbox_key):
    sandbox_key(team, "shark")
    jobs = [make_generation(team, owner, prompt=f"Job {i}", status=Status.RUNNING, progress=50) for i in range(10)]
    login(page, live_server, owner.email, PASSWORD)
    page.goto("/gallery/")
    expect(page.locator("#gallery-grid [data-card]")).to_have_count(10)
    Generation.objects.filter(pk__in=[j.pk for j in jobs]).update(
        status=Status.FAILED, error="Content was blocked by the safety system.", finished_at=timezone.now())
    wait_until(page, "() => document.querySelectorAll('#gallery-grid .status-failed').length === 10")
    page.wait_for_load_state("networkidle")
    lines = said(page)
    assert 1 <= len(lines) <= 5, lines
    assert all("failed" in line for line in lines), lines


def test_focus_after_the_bulk_bar_and_its_board_picker_is_never_body(signed_in, team, owner, teammate):
    from tests.e2e.test_gallery_bulk_e2e import box, fill
    page = signed_in
    cards = fill(team, owner, teammate, count=6)
    page.goto("/gallery/")
    bar = page.locator("#bulk-form")

    def select(*gs):
        for g in gs:
            box(page, g).focus()
            page.keyboard.press("Space")

    def act(button, notice):
        button.focus()
        page.keyboard.press("Enter")
        page.get_by_text(notice).wait_for()
        page.wait_for_load_state("networkidle")
        return page.evaluate("() => document.activeElement === document.body || !document.activeElement")

    select(cards[0], cards[1])
    assert not act(bar.get_by_role("button", name="Favourite", exact=True), "Added 2 results to your favourites."), \
        focused(page)

    # Add to board by the picker: type a new board's name, Enter on Add to board.
    bar.locator("input[name=board_name]").fill("Review board")
    assert not act(bar.get_by_role("button", name="Add to board"), "New board “Review board”."), focused(page)

    # Archive: the card goes (a tombstone), the selection is empty and the bar's actions are disabled
    # under the focused Archive button; focus lands on a control of the bar, not <body>.
    select(cards[2])
    archive = bar.get_by_role("button", name="Archive", exact=True)
    archive.focus()
    page.keyboard.press("Enter")
    expect(page.locator(f"#card-{cards[2].public_id}")).to_contain_text("Archived")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("() => document.activeElement !== document.body"), focused(page)
    assert page.evaluate("() => { const a = document.activeElement; return !!(a.offsetWidth || a.offsetHeight); }"), \
        focused(page)
    assert page.evaluate("() => !!document.activeElement.closest('#bulk-form')"), focused(page)
    # A status poll after the archive leaves focus where it is.
    page.evaluate("() => new Promise(r => { let n = 0; document.body.addEventListener('kiln:tick', () => { if (++n === 2) r(); }); })")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("() => document.activeElement !== document.body"), focused(page)
    assert not page.problems, page.problems
