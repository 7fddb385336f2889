"""Browser: provider keys an admin can reason about (issue 16, points 1-4).

1. A new key is a fallback: the working key keeps serving; a refused key hands the job on
   to the next one and the job says so.
2. "Test key" shows the provider's answer in its own words and the time it took, or says
   the provider has nothing to test with.
3. A key's error column shows only key problems; the base URL column reads as a URL on a
   desktop; a ShuttleAI key given the host alone works.
4. A gateway's own model list is what the studio offers.

Signed in through the real form; the providers are the sandbox on loopback; the engine runs
as in the studio's browser test (``eager_tasks`` + ``run_engine_until``). Screenshots at
1280 px and 390 px go to $KILN_SHOTS_DIR/keys (default /tmp/shots-e2e/keys).
"""

import os
from pathlib import Path

import pytest
from django.utils import timezone

from generations.keys.models import ProviderKey
from generations.models import IN_FLIGHT, Generation, Status
from tests.conftest import PASSWORD
from tests.e2e.test_studio_e2e import eager_tasks, run_engine_until  # noqa: F401 (fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("KILN_SHOTS_DIR", "/tmp/shots-e2e")) / "keys"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}


def both_widths(page, shot, name):
    """A screenshot at 1280 px and at 390 px, and the phone page never scrolls sideways.
    From the top: a full-page shot of a scrolled page draws the sticky header mid-page."""
    page.set_viewport_size(DESKTOP)
    page.evaluate("() => window.scrollTo(0, 0)")
    shot(page, f"{name}-1280", SHOTS)
    page.set_viewport_size(PHONE)
    page.evaluate("() => window.scrollTo(0, 0)")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"], name
    shot(page, f"{name}-390", SHOTS)
    page.set_viewport_size(DESKTOP)


def row(page, label):
    return page.locator("tr", has=page.locator(".key-name .strong", has_text=label))


def problem(page, label):
    """The key's problem: the full-width line under its row, if it has one."""
    return row(page, label).locator("xpath=following-sibling::tr[1][contains(@class, 'key-note-row')]")


def test_a_new_key_is_a_fallback_and_a_refused_key_hands_the_job_on(page, live_server, login, shot, team, owner,
                                                                     sandbox, sandbox_key, eager_tasks):  # noqa: F811
    sandbox.control(duration=1.0)
    sandbox_key(team, "shark", label="Working")
    login(page, live_server, owner.email, PASSWORD, next_path="/accounts/team/keys/")

    # The admin adds "Production" with a wrong base URL, as in the issue: it joins as a fallback.
    page.select_option("select[name=provider]", "shark")
    page.fill("input[name=label]", "Production")
    page.fill("input[name=api_key]", "sk-live-production-key-0042")
    page.fill("input[name=base_url]", "https://shark.invalid.example")
    page.get_by_role("button", name="Add key").click()
    page.wait_for_selector(".messages")
    assert "It is fallback 1: Shark AI jobs still start with the default key" in page.inner_text(".messages")
    group = page.locator("#provider-shark")
    assert "Served by “Working”, the default." in group.locator(".serving").inner_text()
    assert row(page, "Working").locator(".key-order .badge").inner_text() == "Default"
    assert row(page, "Production").locator(".key-order .badge").inner_text() == "Fallback 1"
    assert "serves now" in row(page, "Working").inner_text()
    both_widths(page, shot, "1-fallback-added")

    # The studio's model card names the key that serves.
    page.goto("/?model=shark:alibaba/wan-2.7")
    assert "Sent with the team's key “Working”, the Shark AI default." in page.inner_text(".model-card")
    shot(page, "1-studio-card-1280", SHOTS)

    # Now "Production" is made the default, but its key is refused (the sandbox's "invalid").
    production = ProviderKey.objects.get(label="Production")
    production.set_api_key("invalid")
    ProviderKey.objects.filter(pk=production.pk).update(api_key_encrypted=production.api_key_encrypted,
                                                        base_url=sandbox.base_url("shark"))
    page.goto("/accounts/team/keys/")
    row(page, "Production").get_by_role("button", name="Make default").click()
    page.wait_for_selector(".messages")
    assert "Served by “Production”, the default." in page.locator("#provider-shark .serving").inner_text()

    # A job from the studio: Production is refused, the job moves on to Working and succeeds.
    page.goto("/?model=shark:alibaba/wan-2.7")
    page.wait_for_selector("#studio-form")
    page.fill("#id_prompt", "A kiln at dawn, smoke rising")
    page.select_option("#studio-form [name=resolution]", "480p")
    page.click(".studio-submit")
    page.wait_for_selector("#gallery-grid [data-card]")
    page.wait_for_timeout(1_200)
    Generation.objects.filter(status__in=IN_FLIGHT).update(next_poll_at=timezone.now())
    run_engine_until(page, "() => document.querySelector('#gallery-grid [data-card].status-succeeded') !== null",
                     timeout=60_000)
    generation = Generation.objects.get()
    assert generation.status == Status.SUCCEEDED and generation.provider_key.label == "Working"
    page.goto(f"/g/{generation.public_id}/")
    facts = page.locator(".facts").inner_text()
    assert "“Working”" in facts
    assert "Shark AI refused the key “Production” (HTTP 401" in facts and "sent with “Working” instead" in facts
    both_widths(page, shot, "1-job-moved-on")

    # The refused key is marked on the keys page, in the provider's words.
    page.goto("/accounts/team/keys/")
    marked = problem(page, "Production").inner_text()
    assert "Key problem" in marked and "HTTP 401" in marked
    assert not problem(page, "Working").count()
    both_widths(page, shot, "1-refused-key-marked")
    assert page.problems == []


def test_test_key_shows_the_providers_answer_or_says_there_is_nothing_to_test(page, live_server, login, shot, team,
                                                                              owner, sandbox, sandbox_key):
    sandbox_key(team, "gateway", label="Relay")
    sandbox_key(team, "sealink", label="Sealink main")
    sandbox_key(team, "shark", label="Shark main")
    sandbox_key(team, "shark", label="Old shark", api_key="invalid")
    login(page, live_server, owner.email, PASSWORD, next_path="/accounts/team/keys/")

    # The gateway: its model list, in its own words, and how long it took.
    row(page, "Relay").get_by_role("button", name="Test key").click()
    result = page.locator(".key-test-row").first
    result.wait_for()
    text = result.inner_text()
    assert "Works" in text and "Test of “Relay”: The gateway accepted the key." in text
    assert "OpenAI-compatible gateway answered (HTTP 200) in " in text and " ms:" in text
    assert '"viduq3p-540p"' in text
    both_widths(page, shot, "2-test-gateway")

    # Sealink: its task list.
    row(page, "Sealink main").get_by_role("button", name="Test key").click()
    page.wait_for_selector("#keys-card .key-test-row:has-text('Sealink main')")
    assert "Sealink accepted the key. Its task list answered" in page.inner_text(".key-test-row")

    # Shark: no harmless read call; the page says so and shows what the probe got.
    row(page, "Shark main").get_by_role("button", name="Test key").click()
    page.wait_for_selector("#keys-card .key-test-row:has-text('Shark main')")
    text = page.inner_text(".key-test-row")
    assert "Not testable" in text and "Shark AI has no harmless read call to test a key with" in text
    assert "Shark AI answered (HTTP 404)" in text
    both_widths(page, shot, "2-test-shark-not-testable")

    # A refused key is named refused, and marked.
    row(page, "Old shark").get_by_role("button", name="Test key").click()
    page.wait_for_selector("#keys-card .key-test-row:has-text('Old shark')")
    assert "Refused" in page.inner_text(".key-test-row")
    assert "HTTP 401" in problem(page, "Old shark").inner_text()
    both_widths(page, shot, "2-test-refused")
    assert page.problems == []


def test_a_members_mistake_stays_on_the_job_and_a_bare_host_works(page, live_server, login, shot, team, owner,
                                                                   sandbox, sandbox_key, eager_tasks):  # noqa: F811
    sandbox.control(duration=1.0)
    sealink = sandbox_key(team, "sealink", label="Sealink main")
    # ShuttleAI given its host alone (the sandbox's /shuttleai plays https://api.shuttleai.com).
    shuttle = sandbox_key(team, "shuttleai", label="Shuttle host only")
    assert not shuttle.base_url.endswith("/v1/video/generations")
    login(page, live_server, owner.email, PASSWORD)

    # A member's mistake: an unknown Sealink template. The job fails in Sealink's words...
    page.goto("/?model=sealink:wan2.6-t2v&operation=template-to-video")
    page.wait_for_selector("#studio-fieldset [name=template_id]")
    page.fill("#studio-form [name=template_id]", "tpl_does_not_exist")
    page.fill("#studio-form [name=variables]", "place=Lisbon")
    page.click(".studio-submit")
    page.wait_for_selector("#gallery-grid [data-card].status-failed")
    failed = Generation.objects.get(provider="sealink")
    assert "Sealink has no prompt template 'tpl_does_not_exist'" in failed.error

    # ...and a ShuttleAI job through the bare host succeeds.
    page.goto("/?model=shuttleai:sora")
    page.wait_for_selector("#studio-fieldset [name=n_seconds]")
    page.fill("#id_prompt", "A paper boat on a pond")
    page.click(".studio-submit")
    page.wait_for_timeout(1_200)
    Generation.objects.filter(status__in=IN_FLIGHT).update(next_poll_at=timezone.now())
    run_engine_until(page, "() => document.querySelectorAll('#gallery-grid [data-card].status-succeeded').length > 0",
                     timeout=60_000)
    assert Generation.objects.get(provider="shuttleai").status == Status.SUCCEEDED

    # The keys page: no red error on the Sealink key; the URLs read as URLs on a desktop.
    page.goto("/accounts/team/keys/")
    assert not problem(page, "Sealink main").count()
    sealink.refresh_from_db()
    assert sealink.last_error == ""
    calls = row(page, "Shuttle host only").locator(".calls").inner_text()
    assert calls.endswith("/shuttleai/v1/video/generations")
    cell = row(page, "Shuttle host only").locator("td.key-url")
    box = cell.bounding_box()
    assert box["width"] >= 200, box  # was one character wide
    line_height = 20
    assert box["height"] <= 6 * line_height, box
    both_widths(page, shot, "3-key-problems-only")
    assert page.problems == []


def test_the_studio_offers_the_gateways_own_video_models(page, live_server, login, shot, team, owner, sandbox,
                                                         sandbox_key):
    sandbox_key(team, "gateway", label="Relay")
    login(page, live_server, owner.email, PASSWORD, next_path="/accounts/team/keys/")
    assert "(its own list not fetched yet)" in row(page, "Relay").inner_text()
    row(page, "Relay").get_by_role("button", name="Fetch it").click()
    page.wait_for_selector("#keys-card .key-test-row")
    assert "7 video models from the gateway's list, fetched" in row(page, "Relay").inner_text()
    both_widths(page, shot, "4-gateway-list-fetched")

    page.goto("/?model=gateway:viduq3t-720p-offpeak")
    page.wait_for_selector("#studio-form")
    options = page.eval_on_selector_all("#studio-model optgroup[label*='gateway'] option", "els => els.map(e => e.value)")
    assert "gateway:viduq3t-720p-offpeak" in options       # the gateway lists it; the docs do not
    assert "gateway:viduq3t-1080p" not in options          # the docs name it; the gateway does not list it
    assert not any("gpt-4o" in value for value in options)  # not a video model
    assert page.input_value("#studio-model") == "gateway:viduq3t-720p-offpeak"
    assert "Vidu Q3 Turbo 720p (off-peak)" in page.inner_text(".model-card")
    assert page.locator("#studio-fieldset [name=duration]").count() == 1  # the documented Vidu schema
    both_widths(page, shot, "4-studio-gateway-models")
    assert page.problems == []
