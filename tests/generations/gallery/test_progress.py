"""Progress for every provider (issue 16, point 9): a running card's elapsed time and the time
it is expected to take, from the team's own history of its model; cancelled cards that look
like a choice, not a fault; detail pages that name parameters as the studio does."""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from generations.gallery import queries
from generations.gallery.templatetags import duration_text, param_rows, time_left_text
from generations.models import Kind, Status

from .conftest import make_generation

WAN = ("shark", "alibaba/wan-2.7")
GPT = ("shark", "openai/gpt-image-2")


def finished(team, author, seconds, *, model=WAN, status=Status.SUCCEEDED, ago=dt.timedelta(hours=1), **fields):
    """A job of ``model`` that took ``seconds`` from creation to its end, ``ago`` before now."""
    created = timezone.now() - ago
    return make_generation(team, author, provider=model[0], model=model[1], status=status, created=created,
                           finished_at=created + dt.timedelta(seconds=seconds), **fields)


def running(team, author, *, model=WAN, elapsed=30, **fields):
    return make_generation(team, author, provider=model[0], model=model[1], status=Status.RUNNING,
                           kind=Kind.VIDEO if model == WAN else Kind.IMAGE,
                           created=timezone.now() - dt.timedelta(seconds=elapsed), **fields)


# ---------------------------------------------------------------------------
# The typical duration: the median of the model's last successes, in this team


def test_the_typical_duration_is_the_median_of_the_models_successes(team, owner):
    for seconds in (100, 300, 120, 500, 110):
        finished(team, owner, seconds)
    typical = queries.typical_durations(team.pk, {WAN})[WAN]
    assert typical.seconds == 120 and typical.count == 5


def test_only_the_last_successes_count(team, owner):
    # 20 recent ones took a minute; older ones, from before the provider sped up, took ten.
    for i in range(10):
        finished(team, owner, 600, ago=dt.timedelta(days=2, minutes=i))
    for i in range(queries.HISTORY_SIZE):
        finished(team, owner, 60, ago=dt.timedelta(minutes=i + 1))
    typical = queries.typical_durations(team.pk, {WAN})[WAN]
    assert typical.seconds == 60 and typical.count == queries.HISTORY_SIZE


def test_failures_cancellations_and_other_models_do_not_count(team, owner):
    finished(team, owner, 90)
    finished(team, owner, 5, status=Status.FAILED)
    finished(team, owner, 2, status=Status.CANCELLED)
    finished(team, owner, 1000, status=Status.EXPIRED)
    finished(team, owner, 15, model=GPT)
    found = queries.typical_durations(team.pk, {WAN, GPT})
    assert found[WAN].seconds == 90 and found[WAN].count == 1
    assert found[GPT].seconds == 15


def test_another_teams_history_does_not_count(team, owner, other_team, outsider):
    finished(other_team, outsider, 45)
    assert queries.typical_durations(team.pk, {WAN}) == {}
    finished(team, owner, 200)
    assert queries.typical_durations(team.pk, {WAN})[WAN].seconds == 200
    assert queries.typical_durations(other_team.pk, {WAN})[WAN].seconds == 45


def test_pending_cards_get_their_models_typical_duration_in_one_query(team, owner, django_assert_num_queries):
    finished(team, owner, 100)
    finished(team, owner, 20, model=GPT)
    cards = [running(team, owner), running(team, owner, model=GPT), running(team, owner, model=("sealink", "wan2.6-t2v")),
             finished(team, owner, 5, status=Status.FAILED)]
    with django_assert_num_queries(1):
        queries.with_typical_durations(cards)
    assert cards[0].typical.seconds == 100 and cards[1].typical.seconds == 20
    assert cards[2].typical is None          # no history for that model: no estimate
    assert not hasattr(cards[3], "typical")  # finished: nothing to expect
    with django_assert_num_queries(0):       # nothing pending: no query at all
        queries.with_typical_durations([cards[3]])


# ---------------------------------------------------------------------------
# Words


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s"), (12, "12 s"), (60, "1 min"), (72, "1 min 12 s"), (3600, "1 h"), (3900, "1 h 5 min"),
])
def test_durations_read_as_minutes_and_seconds(seconds, text):
    assert duration_text(seconds) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (38, "about 40 s left"), (3, "about 10 s left"), (58, "about 1 min left"), (150, "about 3 min left"),
    (4000, "about 1 h 7 min left"), (0, "taking longer than usual"), (-90, "taking longer than usual"),
])
def test_the_time_left_is_rounded_and_never_negative(seconds, text):
    assert time_left_text(seconds) == text


# ---------------------------------------------------------------------------
# The card


def card_of(html: str, g) -> str:
    start = html.index(f'id="card-{g.public_id}"')
    return html[start:html.index("</article>", start)]


def test_a_running_card_shows_elapsed_and_the_expected_time_left(owner_client, team, owner):
    for seconds in (170, 180, 190):
        finished(team, owner, seconds)
    g = running(team, owner, elapsed=60)
    card = card_of(owner_client.get(reverse("generations:gallery")).text, g)
    assert re.search(r'<time data-elapsed datetime="[^"]+"[^>]*>1 min( \d+ s)?</time>', card)
    assert "about 2 min left" in card
    assert 'data-typical="180"' in card
    assert "Wan 2.7 usually takes 3 min in this team (the median of its last 3 finished jobs)." in card


def test_a_card_past_its_usual_time_says_so_instead_of_a_negative_time(owner_client, team, owner):
    finished(team, owner, 40)
    g = running(team, owner, elapsed=100)
    card = card_of(owner_client.get(reverse("generations:gallery")).text, g)
    assert re.search(r'<span class="time-left"[^>]*>taking longer than usual</span>', card)


def test_without_history_a_card_makes_no_estimate(owner_client, team, owner, other_team, outsider):
    finished(other_team, outsider, 40)  # another team's history is not ours
    g = running(team, owner)
    card = card_of(owner_client.get(reverse("generations:gallery")).text, g)
    assert "no estimate yet" in card and "data-typical" not in card and " left" not in card


def test_the_providers_percentage_shows_where_it_gives_one(owner_client, team, owner):
    with_percent = running(team, owner, model=("sealink", "wan2.6-t2v"), progress=42)
    without = running(team, owner)
    page = owner_client.get(reverse("generations:gallery")).text
    assert '<span class="progress-percent" title="Sealink’s own figure">42%</span>' in card_of(page, with_percent)  # noqa: RUF001
    assert "progress-percent" not in card_of(page, without)


def test_a_single_cards_fragment_has_the_estimate_too(owner_client, team, owner):
    finished(team, owner, 300)
    g = running(team, owner, elapsed=60)
    card = owner_client.get(reverse("generations:card_status", args=[g.public_id])).text
    assert "about 4 min left" in card
    panel = owner_client.get(reverse("generations:card_status", args=[g.public_id]) + "?panel=detail").text
    assert "about 4 min left" in panel and "usually takes 5 min" in panel


def test_the_status_poll_sends_the_estimate_with_a_changed_card(owner_client, team, owner):
    finished(team, owner, 300)
    g = running(team, owner, elapsed=60)
    response = owner_client.get(reverse("generations:status_batch"), {"ids": f"{g.public_id}:stale"})
    assert "about 4 min left" in response.text


@pytest.mark.parametrize("count", [10, 60])
def test_estimates_cost_one_query_for_a_page_of_pending_cards(owner_client, team, owner, count,
                                                              django_assert_num_queries):
    from .test_queries import GALLERY_QUERIES

    for model in (WAN, GPT):
        finished(team, owner, 100, model=model)
    for i in range(count):
        running(team, owner, model=(WAN, GPT, ("sealink", "wan2.6-t2v"))[i % 3])
    with django_assert_num_queries(GALLERY_QUERIES + 1):
        response = owner_client.get(reverse("generations:gallery"))
    assert response.text.count("data-time-left") == min(count, queries.PAGE_SIZE)
    assert "{#" not in response.text  # a template comment over several lines would show as text


# ---------------------------------------------------------------------------
# Cancelled: neutral, not an error


def test_a_cancelled_card_says_cancelled_and_spins_nothing(owner_client, team, owner):
    g = finished(team, owner, 3, status=Status.CANCELLED, error="Cancelled before it was sent.")
    card = card_of(owner_client.get(reverse("generations:gallery")).text, g)
    assert "status-cancelled" in card and ">Cancelled</span>" in card
    assert "Cancelled: nothing made" in card
    assert "data-pending" not in card and "<progress" not in card


def test_a_cancelled_detail_page_shows_a_note_and_a_failed_one_the_error(owner_client, team, owner):
    """A failure is said by the page's live region as it happens (data-announce; test_status.py), so its
    box is not an alert too; a cancelled job is neither."""
    cancelled = finished(team, owner, 3, status=Status.CANCELLED, error="Cancelled.")
    page = owner_client.get(reverse("generations:detail", args=[cancelled.public_id])).text
    assert '<p class="detail-cancelled">Cancelled.</p>' in page and "detail-error" not in page
    assert 'failed: Cancelled' not in page
    failed = finished(team, owner, 3, status=Status.FAILED, error="Prompt rejected by moderation.")
    page = owner_client.get(reverse("generations:detail", args=[failed.public_id])).text
    assert 'class="detail-error"' in page and "Prompt rejected by moderation." in page
    assert 'failed: Prompt rejected by moderation."' in page  # the sentence the live region says


# ---------------------------------------------------------------------------
# Parameters named as the studio names them


def test_parameters_use_the_schemas_labels_units_and_order(team, owner):
    g = make_generation(team, owner, provider="shark", model="alibaba/wan-2.7", kind=Kind.VIDEO,
                        params={"seed": -1, "timeout": 600, "resolution": "720p", "duration": 5,
                                "aspect_ratio": "16:9"})
    assert param_rows(g) == [("Duration", "5 s"), ("Resolution", "720p"), ("Aspect ratio", "16:9"),
                             ("Seed", "random"), ("Timeout", "10 min")]


def test_parameters_of_each_provider_read_as_in_the_studio(team, owner):
    sealink = make_generation(team, owner, provider="sealink", model="wan2.6-t2v", kind=Kind.VIDEO,
                              params={"n": 2, "seed": 7, "tags": ["dusk", "lake"], "size": "1280x720"})
    assert param_rows(sealink) == [("Size", "1280x720"), ("Number of videos", "2"), ("Seed", "7"),
                                   ("Tags", "dusk, lake")]
    sora = make_generation(team, owner, provider="shuttleai", model="sora", kind=Kind.VIDEO,
                           params={"n_seconds": 8, "width": 854, "height": 480})
    assert param_rows(sora) == [("Width", "854 px"), ("Height", "480 px"), ("Duration", "8 s")]
    gateway = make_generation(team, owner, provider="gateway", model="viduq3t-720p", kind=Kind.VIDEO,
                              params={"audio": True, "bgm": False, "duration": 4})
    assert param_rows(gateway) == [("Duration", "4 s"), ("Generate audio", "yes"), ("Background music", "no")]


def test_unknown_parameters_and_models_keep_their_values_with_readable_names(team, owner):
    g = make_generation(team, owner, provider="shark", model="openai/gpt-image-2",
                        params={"n": 2, "style_preset": "film", "old_flag": True})
    assert param_rows(g) == [("Images", "2"), ("Old flag", "yes"), ("Style preset", "film")]
    gone = make_generation(team, owner, provider="nowhere", model="mystery-1", params={"n_seconds": 3})
    assert param_rows(gone) == [("N seconds", "3")]


def test_the_detail_page_shows_named_parameters(owner_client, team, owner):
    g = make_generation(team, owner, provider="shuttleai", model="sora", kind=Kind.VIDEO,
                        params={"n_seconds": 8, "width": 854, "height": 480}, status=Status.SUCCEEDED,
                        finished_at=timezone.now())
    page = owner_client.get(reverse("generations:detail", args=[g.public_id])).text
    assert '<th scope="row">Duration</th><td>8 s</td>' in page
    assert "n_seconds" not in page


def test_another_teams_detail_is_still_404(outsider_client, team, owner):
    g = running(team, owner)
    assert outsider_client.get(reverse("generations:detail", args=[g.public_id])).status_code == 404
    assert outsider_client.get(reverse("generations:card_status", args=[g.public_id])).status_code == 404
