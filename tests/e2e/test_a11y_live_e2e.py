"""Browser: the live parts of Kiln for a keyboard and a screen reader (issue 20, points 2-4).

- One polite live region per page (#live-status) says each job's state change once, in words:
  "Wan 2.7: succeeded", "GPT Image 2 failed: Content was blocked by the safety system.";
  a job the studio has just created is announced as it appears; the page's first load and a poll
  repeating a state say nothing.
- Status polls keep the controls of a card and of the result page's status panel: a keyboard user
  on Cancel stays on that very button through the polls while the state text moves on.
- The estimate's container stays in place and is not swapped when its figures are the same.
- Focus after live updates: favourite toggle, Escape on the ⋯ menu, a mode change with the arrow
  keys, a pick from the gallery picker, a refused submit; never <body>.
- Every id an aria-describedby names exists, before and after a refused submit.

The sandbox providers answer over loopback; the test is the beat (``run_engine_until``).
"""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from generations.models import Generation, Kind, Status
from tests.conftest import PASSWORD
from tests.e2e.test_studio_e2e import choose_model, eager_tasks, run_engine_until, wait_until  # noqa: F401
from tests.generations.gallery.conftest import make_generation
from tests.generations.studio.conftest import GPT_IMAGE, WAN, make_gallery_media

pytestmark = pytest.mark.e2e


def said(page) -> list[str]:
    """What the live region has said, line by line."""
    return page.locator("#live-status p").all_inner_texts()


def focused(page) -> str:
    return page.evaluate("() => { const a = document.activeElement;"
                         " return a === document.body ? 'BODY' : (a.id || a.tagName + '.' + a.className); }")


def focus_is(page, selector: str) -> bool:
    return page.evaluate("s => document.activeElement === document.querySelector(s)", selector)


def pick_first_frame_by_keyboard(page) -> None:
    """Enter on the first frame's "Pick from the gallery", Enter on the first result; until the
    slot shows it and the picker is closed."""
    page.focus("#slot-first_frame-pick")
    page.keyboard.press("Enter")
    page.wait_for_selector("#studio-picker[open] .picker-item")
    page.focus(".picker-item")
    page.keyboard.press("Enter")
    page.wait_for_selector("#slot-first_frame .slot-picked img")
    wait_until(page, "() => !document.querySelector('#studio-picker').open")


def test_each_job_state_is_announced_once_in_words(page, live_server, login, transactional_db, team, owner,
                                                  sandbox, sandbox_key, eager_tasks):  # noqa: F811
    sandbox.control(duration=1.5)
    sandbox_key(team, "shark")
    make_generation(team, owner, prompt="An older teapot", status=Status.SUCCEEDED)
    login(page, live_server, owner.email, PASSWORD)
    page.goto("/")
    page.wait_for_selector("#studio-form")
    region = page.locator("#live-status")
    assert region.get_attribute("role") == "status" and region.get_attribute("aria-live") == "polite"
    assert said(page) == []  # the first load says nothing

    choose_model(page, WAN, "resolution")
    page.focus("#id_prompt")
    page.keyboard.type("Waves rolling onto a black sand beach")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#gallery-grid [data-card]")).to_have_count(2)
    wait_until(page, "() => document.querySelectorAll('#live-status p').length >= 1")
    assert said(page)[0] == "Wan 2.7: queued", said(page)  # as it appears, before any poll
    assert focused(page) == "id_prompt"  # Generate by keyboard: focus stays in the prompt

    choose_model(page, GPT_IMAGE, "quality")
    page.fill("#id_prompt", "A teapot [unsafe]")
    page.focus("#studio-submit")
    page.keyboard.press("Enter")
    expect(page.locator("#gallery-grid [data-card]")).to_have_count(3)
    wait_until(page, "() => [...document.querySelectorAll('#live-status p')].some(p => p.textContent.startsWith('GPT Image 2:'))")
    assert focused(page) == "studio-submit"  # focus comes back to Generate

    run_engine_until(page, "() => document.querySelectorAll('#gallery-grid .status-succeeded, #gallery-grid .status-failed')"
                           ".length === 3")
    wait_until(page, "() => document.querySelector('#live-status').textContent.includes('GPT Image 2 failed')")
    lines = said(page)
    assert lines.count("Wan 2.7: succeeded") == 1, lines
    assert lines.count("GPT Image 2 failed: Content was blocked by the safety system.") == 1, lines
    assert not any("teapot" in line.lower() for line in lines)  # the older job is never announced
    assert len(lines) == len(set(lines)), lines  # each state once
    # Polls repeating the same states say nothing more.
    ticks = page.evaluate("() => new Promise(r => { let n = 0; document.body.addEventListener('kiln:tick', () => { if (++n === 3) r(n); }); })")
    assert ticks == 3 and said(page) == lines
    assert not page.problems, page.problems



def open_running_job(page, job, where: str) -> str:
    """Open the gallery or the job's result page; the selector of its Cancel button."""
    if where == "gallery":
        page.goto("/gallery/")
        return f"#card-{job.public_id} button:text-is('Cancel')"
    page.goto(f"/g/{job.public_id}/")
    return "#detail-live button:text-is('Cancel')"


def move_progress(page, job, where: str, percent: int) -> None:
    """The provider reports more progress; wait until a status poll has shown it."""
    Generation.objects.filter(pk=job.pk).update(progress=percent)
    if where == "gallery":
        expect(page.locator(f"#card-{job.public_id} .progress-percent")).to_have_text(f"{percent}%")
    else:
        expect(page.locator("#detail-live .status-panel progress")).to_have_attribute("value", str(percent))


@pytest.mark.parametrize("where", ["gallery", "detail"])
def test_cancel_keeps_focus_through_polls_and_the_state_moves_on(page, live_server, login, transactional_db, team, owner,
                                                                  sandbox, sandbox_key, where):
    sandbox_key(team, "shark")
    job = make_generation(team, owner, prompt="A slow kiln", status=Status.QUEUED, progress=5)
    login(page, live_server, owner.email, PASSWORD)
    cancel = page.locator(open_running_job(page, job, where))
    cancel.focus()
    page.evaluate("() => { window.__cancel = document.activeElement; }")
    for percent in (20, 40, 60):
        move_progress(page, job, where, percent)
        assert page.evaluate("() => document.activeElement === window.__cancel && document.contains(window.__cancel)"), \
            focused(page)
    assert said(page) == []  # progress is not a state change

    Generation.objects.filter(pk=job.pk).update(status=Status.RUNNING)
    wait_until(page, "() => document.querySelector('#live-status').textContent.includes('GPT Image 2: running')")
    Generation.objects.filter(pk=job.pk).update(status=Status.FAILED, error="Content was blocked by the safety system.",
                                                finished_at=timezone.now())
    wait_until(page, "() => document.querySelector('#live-status').textContent.includes('failed')")
    assert said(page) == ["GPT Image 2: running", "GPT Image 2 failed: Content was blocked by the safety system."]
    # The controls changed (no Cancel any more): they are the new ones.
    expect(cancel).to_have_count(0)
    assert not page.problems, page.problems


def test_the_estimate_stays_in_place_and_is_not_swapped_for_the_same_figures(page, live_server, login, transactional_db,
                                                                              team, owner, sandbox, sandbox_key):
    sandbox_key(team, "shark")
    login(page, live_server, owner.email, PASSWORD)
    page.goto("/")
    choose_model(page, GPT_IMAGE, "quality")
    page.evaluate("""() => { window.__estimate = document.getElementById('studio-estimate'); window.__swaps = 0;
        document.body.addEventListener('htmx:afterSwap', e => { if (e.detail.target.id === 'studio-estimate') window.__swaps++; }); }""")
    before = page.inner_text("#studio-estimate .estimate-credits")
    page.fill("#id_prompt", "Only the words change")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(600)  # past the estimate's 400 ms input delay, then idle again
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__swaps") == 0
    page.fill("#id_n", "3")
    expect(page.locator("#studio-estimate .estimate-credits")).not_to_have_text(before)
    assert page.evaluate("() => document.getElementById('studio-estimate') === window.__estimate")
    assert page.get_attribute("#studio-estimate", "aria-live") == "polite"
    assert not page.problems, page.problems


def test_focus_stays_where_the_member_is_after_each_live_update(page, live_server, login, transactional_db, team, owner,
                                                                sandbox, sandbox_key):
    sandbox_key(team, "shark")
    media = make_gallery_media(team, owner)
    login(page, live_server, owner.email, PASSWORD)

    # The favourite toggle: Enter, and focus stays on it, now pressed.
    page.goto("/gallery/")
    star = f"#fav-{media.generation.public_id}"
    page.focus(star)
    page.keyboard.press("Enter")
    expect(page.locator(star)).to_have_attribute("aria-pressed", "true")
    assert focus_is(page, star), focused(page)

    # Escape in the ⋯ menu: back on the ⋯ button.
    summary = f"#card-{media.generation.public_id} .card-menu summary"
    page.focus(summary)
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("() => !!document.activeElement.closest('.card-menu .menu')")
    page.keyboard.press("Escape")
    assert focus_is(page, summary), focused(page)
    assert page.locator(f"#card-{media.generation.public_id} .card-menu[open]").count() == 0

    # A mode change with the arrow keys: focus stays on the mode now checked.
    page.goto("/")
    choose_model(page, WAN, "resolution")
    page.focus(".op-tabs input:checked")
    page.keyboard.press("ArrowRight")
    page.wait_for_selector("#slot-first_frame")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("() => document.activeElement.matches('.op-tabs input:checked')"), focused(page)
    assert page.evaluate("() => document.activeElement.value") == "image-to-video"

    # The gallery picker: Enter on a result, and focus is back on the slot's "Pick from the gallery".
    pick_first_frame_by_keyboard(page)
    assert focused(page) == "slot-first_frame-pick"

    # A refused submit: focus on the first invalid field.
    page.fill("#id_prompt", "")
    page.focus("#studio-submit")
    page.keyboard.press("Enter")
    page.wait_for_selector("#studio-form .field.has-error")
    wait_until(page, "() => document.activeElement.id === 'id_prompt'")
    assert page.get_attribute("#id_prompt", "aria-invalid") == "true"
    assert Generation.objects.filter(kind=Kind.VIDEO).count() == 0
    assert not [p for p in page.problems if "422" not in p], page.problems


MISSING_IDS = """() => [...document.querySelectorAll('[aria-describedby]')].flatMap(el =>
    el.getAttribute('aria-describedby').split(/\\s+/).filter(id => id && !document.getElementById(id))
      .map(id => (el.id || el.name) + ' -> ' + id))"""


def test_the_picker_opens_only_once_its_results_answer_to_a_pick(page, live_server, login, transactional_db, team,
                                                                  owner, sandbox, sandbox_key):
    """htmx makes newly swapped-in links live when it settles, after the swap: the picker opened
    at the swap, and a pick in between (a quick Enter; a slow device or a busy machine stretches
    it) followed the link to a new page, losing the studio's state and the focus."""
    sandbox_key(team, "shark")
    media = make_gallery_media(team, owner)
    login(page, live_server, owner.email, PASSWORD)
    page.goto("/")
    choose_model(page, WAN, "resolution")
    page.click(".op-tab:has-text('Image to video')")
    page.wait_for_selector("#slot-first_frame")
    page.wait_for_load_state("networkidle")
    # The slot's own "Pick from the gallery" came in with the mode's fields: live before the slow settle.
    wait_until(page, "() => !!(document.querySelector('#slot-first_frame-pick')['htmx-internal-data'] || {}).initHash")
    page.evaluate("() => { window.samePage = true; htmx.config.defaultSettleDelay = 1500; }")
    pick_first_frame_by_keyboard(page)
    assert page.evaluate("() => window.samePage === true"), "the pick left the page"
    assert focused(page) == "slot-first_frame-pick"
    assert page.input_value("#id_first_frame_media") == str(media.public_id)


def test_every_id_an_aria_describedby_names_exists_before_and_after_a_refused_submit(
        page, live_server, transactional_db, team, owner, sandbox, sandbox_key):
    sandbox_key(team, "shark")

    # Sign in, refused.
    page.goto("/accounts/login/")
    assert page.evaluate(MISSING_IDS) == []
    page.fill("input[name=username]", owner.email)
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    page.wait_for_selector(".form-errors")
    assert page.evaluate(MISSING_IDS) == []
    assert page.evaluate("() => document.activeElement !== document.body"), focused(page)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)

    # The studio, for each model's form, then refused.
    page.goto("/")
    for model, field in ((GPT_IMAGE, "quality"), (WAN, "resolution")):
        choose_model(page, model, field)
        assert page.evaluate(MISSING_IDS) == [], model
    page.fill("#id_prompt", "")
    page.click(".studio-submit")
    page.wait_for_selector("#studio-form .field.has-error")
    assert page.evaluate(MISSING_IDS) == []
    assert page.locator("#id_prompt_error[role=alert]").inner_text() == "This field is required."
    assert "id_prompt_error" in page.get_attribute("#id_prompt", "aria-describedby")

    # The team's and the keys' forms, refused (the browser's own checks off, so the server answers).
    for path in ("/accounts/team/", "/accounts/team/keys/"):
        page.goto(path)
        assert page.evaluate(MISSING_IDS) == [], path
        form = page.locator("main form.stack").last
        form.evaluate("f => { f.noValidate = true; f.querySelectorAll('input:not([type=hidden])').forEach(i => i.value = ''); }")
        form.locator("button[type=submit]").click()
        page.wait_for_selector(".field.has-error, .form-errors")
        assert page.evaluate(MISSING_IDS) == [], path
        assert page.locator("[aria-invalid=true]").count() >= 1, path
        assert page.evaluate("() => document.activeElement.getAttribute('aria-invalid') === 'true'"), focused(page)
