"""Browser: progress for every provider (issue 16, point 9).

- A member starts a Sealink video from the studio. Its card in the gallery shows Sealink's
  percentage, the time since it was queued (ticking in the page between status answers,
  and still right after a reload) and the time it is expected to take from the team's own
  history of that model; a running job of a model the team never finished says "no
  estimate yet", one past its model's usual time says "taking longer than usual".
- A member starts a Shark video, thinks better of it and cancels it from its card: the card
  reads "Cancelled" in grey, with no error red and no ring, while a failed job still reads
  as an error. Its detail page names the parameters as the studio does ("Duration 5 s",
  "Seed random"), not ``duration``, ``seed -1``.

Signed in through the real form; the sandbox providers answer over loopback; the test is
the beat (``run_engine_until``), submits run on commit (``eager_tasks``). Screenshots,
desktop 1280 px and phone 390 px, go to $KILN_SHOTS_DIR (default /tmp/shots-e2e).
"""

import datetime as dt
import re
import time

import pytest
from django.utils import timezone

from generations.engine.poll import poll_due
from generations.models import IN_FLIGHT, Generation, Kind, Status
from tests.conftest import PASSWORD
from tests.e2e.test_studio_e2e import choose_model, eager_tasks, wait_until  # noqa: F401 (fixture)
from tests.generations.gallery.conftest import make_generation

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}


def history(team, author, provider, model, *durations):
    """Jobs of ``model`` the team finished an hour ago, each taking ``durations[i]`` seconds."""
    for seconds in durations:
        created = timezone.now() - dt.timedelta(hours=1, seconds=seconds)
        make_generation(team, author, provider=provider, model=model, kind=Kind.VIDEO, status=Status.SUCCEEDED,
                        created=created, finished_at=created + dt.timedelta(seconds=seconds),
                        prompt=f"an earlier {model} video")


def generate(page, model_value, field, prompt):
    page.goto("/")
    page.wait_for_selector("#studio-form")
    choose_model(page, model_value, field)
    page.fill("#id_prompt", prompt)
    page.click(".studio-submit")
    page.wait_for_selector(f"#gallery-grid [data-card] .card-prompt:text-is('{prompt}')")


def seconds_of(text: str) -> int:
    """ "1 min 12 s" → 72."""
    minutes = re.search(r"(\d+) min", text)
    secs = re.search(r"(\d+) s\b", text)
    return (int(minutes[1]) * 60 if minutes else 0) + (int(secs[1]) if secs else 0)


def test_a_running_job_shows_its_percentage_elapsed_time_and_expected_time_left(
        page, live_server, login, shot, transactional_db, team, owner, sandbox, sandbox_key, eager_tasks):  # noqa: F811
    sandbox.control(duration=45.0)
    sandbox_key(team, "sealink")
    # The team's Sealink Wan 2.6 jobs usually take two minutes; its gateway Vidu jobs 10 s.
    history(team, owner, "sealink", "wan2.6-t2v", 110, 120, 130)
    history(team, owner, "gateway", "viduq3t-720p", 9, 10, 11)
    # Two other jobs already running (kept out of the engine's way: never due).
    late = make_generation(team, owner, provider="gateway", model="viduq3t-720p", kind=Kind.VIDEO,
                           status=Status.RUNNING, prompt="A lighthouse in a storm, slow pan",
                           created=timezone.now() - dt.timedelta(seconds=75), provider_job_id="t-late")
    unknown = make_generation(team, owner, provider="shark", model="alibaba/wan-2.7", kind=Kind.VIDEO,
                              status=Status.RUNNING, prompt="Koi in a pond, top view",
                              created=timezone.now() - dt.timedelta(seconds=20), provider_job_id="t-new")
    login(page, live_server, owner.email, PASSWORD)

    generate(page, "sealink:wan2.6-t2v", "size", "Lanterns rising over a harbour at dusk")
    job = Generation.objects.get(provider="sealink", status__in=IN_FLIGHT)

    # Sealink's own percentage arrives with the polls (the sandbox counts it up).
    page.goto("/gallery/?status=active")
    card = page.locator(f"#card-{job.public_id}")
    shows_percent = (f"() => {{ const p = document.querySelector('#card-{job.public_id} .progress-percent');"
                     " return !!p && parseInt(p.textContent, 10) > 0; }")
    deadline = time.monotonic() + 40
    while not page.evaluate(shows_percent):
        assert time.monotonic() < deadline, list(Generation.objects.values_list("status", "progress", "error"))
        Generation.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())  # as a webhook would
        poll_due()
        page.wait_for_timeout(500)
    percent = card.locator(".progress-percent").inner_text()
    assert re.fullmatch(r"\d{1,2}%", percent), percent
    assert card.locator(".badge").inner_text() == "Running"

    # Elapsed since it was queued, and the time left from the usual two minutes.
    elapsed = card.locator("time[data-elapsed]")
    first = seconds_of(elapsed.inner_text())
    assert 3 <= first < 60, elapsed.inner_text()
    left = card.locator(".time-left").inner_text()
    assert re.fullmatch(r"about (\d+ s|[12] min) left", left), left
    assert "usually takes 2 min in this team" in card.locator(".time-left").get_attribute("title")

    # It ticks in the page, without a request of its own: the status poll is the only one.
    asked = []
    page.on("request", lambda r: asked.append(r.url) if "/gallery/" in r.url or "/g/" in r.url else None)
    page.wait_for_timeout(4_500)
    assert seconds_of(elapsed.inner_text()) >= first + 3
    assert all("/gallery/status/" in url for url in asked), asked

    # The other two: no history, no estimate; past the usual 10 s, no negative time.
    assert page.locator(f"#card-{unknown.public_id} .time-left").inner_text() == "no estimate yet"
    assert page.locator(f"#card-{late.public_id} .time-left").inner_text() == "taking longer than usual"
    shot(page, "progress-running-desktop")

    # A reload: the server counts from the same moment.
    before = seconds_of(elapsed.inner_text())
    page.reload()
    after = seconds_of(page.locator(f"#card-{job.public_id} time[data-elapsed]").inner_text())
    assert before <= after <= before + 10

    page.set_viewport_size(PHONE)
    page.locator(f"#card-{job.public_id}").scroll_into_view_if_needed()
    shot(page, "progress-running-phone")
    card = page.locator(f"#card-{job.public_id}")
    box = card.locator(".progress-text").bounding_box()
    card_box = card.bounding_box()
    assert box["x"] >= card_box["x"] and box["x"] + box["width"] <= card_box["x"] + card_box["width"] + 1

    # The detail page says the same, and why.
    page.set_viewport_size(DESKTOP)
    page.goto(f"/g/{job.public_id}/")
    panel = page.locator(".status-panel")
    assert re.search(r"so far · (about .+ left|taking longer than usual)", panel.inner_text())
    assert "Wan 2.6 text to video usually takes 2 min in this team (the median of its last 3 finished jobs)." \
        in panel.inner_text()
    shot(page, "progress-running-detail")
    assert not page.problems, page.problems


def test_a_cancelled_job_looks_neutral_and_its_details_name_the_parameters(
        page, live_server, login, shot, transactional_db, team, owner, sandbox, sandbox_key, eager_tasks):  # noqa: F811
    sandbox.control(duration=200.0)  # queued at Shark for its first 30 s: it can still be cancelled
    sandbox_key(team, "shark")
    failed = make_generation(team, owner, provider="shark", model="alibaba/wan-2.7", kind=Kind.VIDEO,
                             status=Status.FAILED, prompt="A glass city underwater",
                             error="Shark AI: the prompt was refused by moderation.",
                             created=timezone.now() - dt.timedelta(minutes=3), finished_at=timezone.now())
    login(page, live_server, owner.email, PASSWORD)

    generate(page, "shark:alibaba/wan-2.7", "resolution", "A paper crane unfolding itself")
    job = Generation.objects.exclude(pk=failed.pk).get()
    page.goto("/gallery/")
    card = page.locator(f"#card-{job.public_id}")
    card.get_by_role("button", name="Cancel").click()
    wait_until(page, f"() => document.querySelector('#card-{job.public_id}').classList.contains('status-cancelled')")
    card = page.locator(f"#card-{job.public_id}")
    assert card.locator(".badge").inner_text() == "Cancelled"
    assert card.locator(".placeholder-text").inner_text() == "Cancelled: nothing made"

    def style(selector, prop):
        return page.evaluate(f"() => getComputedStyle(document.querySelector('{selector}')).{prop}")

    cancelled_badge = style(f"#card-{job.public_id} .badge", "backgroundColor")
    failed_badge = style(f"#card-{failed.public_id} .badge", "backgroundColor")
    assert cancelled_badge == "rgb(238, 240, 243)"           # grey
    assert failed_badge == "rgb(253, 236, 235)"              # still the error red
    assert style(f"#card-{job.public_id} .card-error", "color") == "rgb(95, 100, 107)"  # muted (--muted, #5f646b: 4.5:1 since issue 20), not red
    assert style(f"#card-{failed.public_id} .card-error", "color") == "rgb(180, 35, 24)"
    # No ring: the placeholder's mark has no border and does not turn.
    assert style(f"#card-{job.public_id} .placeholder-kind", "borderTopWidth") == "0px"
    assert style(f"#card-{job.public_id} .placeholder-kind", "animationName") == "none"
    shot(page, "progress-cancelled-desktop")
    page.set_viewport_size(PHONE)
    card.scroll_into_view_if_needed()
    shot(page, "progress-cancelled-phone")

    # Its details: a neutral note, and the parameters as the studio names them.
    page.set_viewport_size(DESKTOP)
    page.goto(f"/g/{job.public_id}/")
    assert page.locator(".detail-cancelled").inner_text() == "Cancelled."
    assert page.locator("[role=alert]").count() == 0
    rows = dict(zip(page.locator("table.params th").all_inner_texts(), page.locator("table.params td").all_inner_texts(),
                    strict=True))
    assert job.params["seed"] == -1 and job.params["duration"] == 5
    assert rows == {"Duration": "5 s", "Resolution": "720p", "Aspect ratio": "16:9", "Seed": "random",
                    "Timeout": f"{job.params['timeout'] // 60} min"}
    shot(page, "progress-cancelled-detail")
    page.set_viewport_size(PHONE)
    page.locator("table.params").scroll_into_view_if_needed()
    shot(page, "progress-cancelled-detail-phone")
    assert not page.problems, page.problems
