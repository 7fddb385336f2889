"""Reusing earlier work: the team's recent prompts, a result's seed, its prompt copied whole
(issue 16, point 12)."""

import datetime as dt
import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from accounts.models import Membership
from generations.models import Generation, Kind
from generations.studio import services
from generations.studio.services import SeedUsed, prompt_history, reported_seed, seed_used
from tests.conftest import make_member
from tests.generations.gallery.conftest import add_media, make_generation
from tests.generations.studio.conftest import WAN

HTMX = {"HX-Request": "true"}
HISTORY = reverse("generations:prompt_history")
STUDIO = reverse("generations:studio")


def membership(user, team) -> Membership:
    return Membership.objects.get(user=user, team=team)


def prompts_in(html: str) -> list[str]:
    return re.findall(r'data-history-text="([^"]*)"', html)


def write(team, author, texts, *, start=None, **fields):
    start = start or timezone.now() - dt.timedelta(days=1)
    for i, text in enumerate(texts):
        g = make_generation(team, author, prompt=text, created=start + dt.timedelta(minutes=i), **fields)
        g.prompt.created = g.created
        g.prompt.save(update_fields=["created"])


# ---------------------------------------------------------------------------
# Recent prompts


def test_recent_prompts_are_the_teams_newest_first_each_once(team, owner, teammate):
    write(team, teammate, ["a fox", "a lake", "a fox", "", "a cabin"])  # "" (a template's): not a prompt to reuse
    items = prompt_history(membership(owner, team))
    assert [i.text for i in items] == ["a cabin", "a fox", "a lake"]
    fox = items[1]
    assert fox.author == "mate" and fox.models == ["GPT Image 2"]


def test_recent_prompts_never_show_another_teams(owner_client, team, owner, other_team, outsider):
    write(team, owner, ["our kiln at dusk"])
    write(other_team, outsider, ["their secret kiln plans"])
    html = owner_client.get(HISTORY, {"q": "kiln"}, headers=HTMX).content.decode()
    assert prompts_in(html) == ["our kiln at dusk"]
    assert "secret" not in owner_client.get(HISTORY, headers=HTMX).content.decode()


def test_searching_recent_prompts_is_case_insensitive_and_contains(teammate_client, team, owner):
    write(team, owner, ["A Red FOX in snow", "foxglove meadow", "a lake"])
    html = teammate_client.get(HISTORY, {"q": "fox"}, headers=HTMX).content.decode()  # a member may
    assert prompts_in(html) == ["foxglove meadow", "A Red FOX in snow"]
    html = teammate_client.get(HISTORY, {"q": "  red   fox "}, headers=HTMX).content.decode()
    assert prompts_in(html) == ["A Red FOX in snow"]
    html = teammate_client.get(HISTORY, {"q": "nothing like it"}, headers=HTMX).content.decode()
    assert prompts_in(html) == [] and "No recent prompt of the team contains “nothing like it”." in html


def test_recent_prompts_are_at_most_twenty_in_a_few_queries(owner_client, team, owner):
    write(team, owner, [f"prompt number {i}" for i in range(70)])
    with CaptureQueriesContext(connection) as queries:
        html = owner_client.get(HISTORY, headers=HTMX).content.decode()
    shown = prompts_in(html)
    assert len(shown) == services.HISTORY_SIZE and shown[0] == "prompt number 69"
    history = [q for q in queries.captured_queries if "generations_prompt" in q["sql"] or "generations_generation" in q["sql"]]
    assert len(history) <= 2  # a page of prompts, then their models


def test_many_tries_of_one_prompt_do_not_hide_the_others(team, owner):
    write(team, owner, ["the older one"])
    write(team, owner, ["the same again"] * 120, start=timezone.now() - dt.timedelta(hours=1))
    assert [i.text for i in prompt_history(membership(owner, team))] == ["the same again", "the older one"]


def test_a_search_too_long_or_with_control_characters_is_refused_with_a_message(owner_client, team, owner):
    # To htmx a 200, or it would not swap the message in; the page without JavaScript is a 400.
    for headers, status in ((HTMX, 200), ({}, 400)):
        response = owner_client.get(HISTORY, {"q": "x" * 201}, headers=headers)
        assert response.status_code == status
        assert "Search for at most 200 characters." in response.content.decode()
        response = owner_client.get(HISTORY, {"q": "fox\x00"}, headers=headers)
        assert response.status_code == status and "Control characters are not allowed." in response.content.decode()


def test_the_search_box_says_its_limit(owner_client, team, owner, shark):
    for url in (HISTORY, "/"):
        html = owner_client.get(url).content.decode()
        assert 'title="Up to 200 characters"' in html and "(up to 200 characters)" in html


def test_recent_prompts_without_javascript_are_a_page_and_need_signing_in(client, owner_client, team, owner):
    write(team, owner, ["a kiln <script>alert(1)</script> at dusk"])
    html = owner_client.get(HISTORY).content.decode()
    assert "<h1>Recent prompts</h1>" in html
    assert escape("a kiln <script>alert(1)</script> at dusk") in html and "<script>alert(1)" not in html
    client.logout()
    assert client.get(HISTORY).status_code == 302


def test_the_studio_offers_recent_prompts_beside_the_prompt_outside_the_form_data(owner_client, team, owner, shark):
    html = owner_client.get(STUDIO).content.decode()
    assert 'data-prompt-history' in html and f'hx-get="{HISTORY}"' in html
    assert re.search(r'<input id="history-q" type="search" name="q" form=""', html)  # not a field of the form


# ---------------------------------------------------------------------------
# The seed a result was made with


def wan(team, author, *, seed=4242, raw_payload=None):
    g = make_generation(team, author, kind=Kind.VIDEO, model="alibaba/wan-2.7", prompt="A potter's wheel, slow push-in",
                        params={"duration": 10, "resolution": "480p", "aspect_ratio": "9:16", "seed": seed},
                        raw_payload=raw_payload, finished_at=timezone.now())
    add_media(g)
    return g


@pytest.mark.parametrize(("payload", "expected"), [
    ({"seed": 77}, 77),
    ({"status": "completed", "output": {"seed": 12}}, 12),
    ({"seed": True}, None), ({"seed": -1}, None), ({"seed": "12"}, None),
    ({"output": {"deeper": {"seed": 5}}}, None), (None, None), (["seed", 3], None),
])
def test_the_reported_seed_is_an_integer_the_provider_named(payload, expected):
    assert reported_seed(payload) == expected


def test_the_seed_used_is_the_reported_one_else_the_requested_else_unknown(team, owner):
    assert seed_used(wan(team, owner, seed=4242, raw_payload={"seed": 99})) == SeedUsed(99, "reported")
    assert seed_used(wan(team, owner, seed=4242)) == SeedUsed(4242, "requested")
    assert seed_used(wan(team, owner, seed=-1)) == SeedUsed(None, "")
    assert seed_used(make_generation(team, owner, params={})) == SeedUsed(None, "")


def test_reuse_seed_opens_the_studio_with_the_results_values_and_seed(owner_client, team, owner, shark):
    g = wan(team, owner)
    html = owner_client.get(STUDIO, {"remix": str(g.public_id), "seed": "reuse"}).content.decode()
    assert f'value="{WAN}" selected' in html
    assert "A potter&#x27;s wheel, slow push-in</textarea>" in html
    assert re.search(r'name="seed" value="4242"', html)
    assert re.search(r'<details class="studio-group advanced" open>', html)
    assert "Seed 4242 is fixed: the seed it was made with." in html
    assert "data-draft-prefilled" in html  # the link, not an older draft, fills the form


def test_reuse_seed_prefers_the_seed_the_provider_reported(owner_client, team, owner, shark):
    g = wan(team, owner, seed=-1, raw_payload={"id": "job-1", "seed": 31337})
    html = owner_client.get(STUDIO, {"remix": str(g.public_id), "seed": "reuse"}).content.decode()
    assert re.search(r'name="seed" value="31337"', html)
    assert "Seed 31337 is fixed: the seed Shark AI reported using." in html


def test_reuse_of_a_random_seed_says_it_cannot_be_repeated(owner_client, team, owner, shark):
    g = wan(team, owner, seed=-1)
    html = owner_client.get(STUDIO, {"remix": str(g.public_id), "seed": "reuse"}).content.decode()
    assert ("This result asked for a random seed and Shark AI did not report the one it used, so its seed "
            "cannot be repeated: the seed stays random.") in html
    assert re.search(r'name="seed" value="-1"', html)
    assert not re.search(r'<details class="studio-group advanced" open>', html)


def test_reuse_seed_of_a_model_without_one_says_so(owner_client, team, owner, shark):
    g = make_generation(team, owner, params={"n": 1})
    html = owner_client.get(STUDIO, {"remix": str(g.public_id), "seed": "reuse"}).content.decode()
    assert "This model takes no seed, so only the prompt and settings are reused." in html


def test_reuse_seed_of_another_teams_result_is_not_found(owner_client, other_team, outsider, shark):
    theirs = wan(other_team, outsider)
    assert owner_client.get(STUDIO, {"remix": str(theirs.public_id), "seed": "reuse"}).status_code == 404
    assert owner_client.get(STUDIO, {"remix": "not-a-uuid", "seed": "reuse"}).status_code == 404
    assert owner_client.get(STUDIO, {"remix": str(uuid.uuid4()), "seed": "reuse"}).status_code == 404


def test_the_reused_seed_is_sent_with_the_next_generation(owner_client, team, owner, shark):
    g = wan(team, owner)
    html = owner_client.get(STUDIO, {"remix": str(g.public_id), "seed": "reuse"}).content.decode()
    key = re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)
    response = owner_client.post(reverse("generations:generate"), {
        "model": WAN, "operation": "text-to-video", "prompt": g.prompt.text, "duration": "10",
        "resolution": "480p", "aspect_ratio": "9:16", "seed": "4242", "idempotency_key": key,
        "remix_of": str(g.public_id)})
    assert response.status_code == 302
    made = Generation.objects.exclude(pk=g.pk).get()
    assert made.params["seed"] == 4242 and made.parent_id == g.pk and made.parent_relation == "remix"


# ---------------------------------------------------------------------------
# The card menu and the detail page


def test_cards_offer_copy_prompt_whole_and_reuse_seed_only_for_models_with_a_seed(owner_client, team, owner):
    long_prompt = 'A "kiln" <at> dusk & ' + "embers " * 300
    video = wan(team, owner)
    video.prompt.text = long_prompt
    video.prompt.save()
    image = make_generation(team, owner, prompt="a still life")
    html = owner_client.get(reverse("generations:gallery")).content.decode()
    assert f'data-copy-text="{escape(long_prompt)}">Copy prompt</button>' in html  # the whole prompt
    assert f'?remix={video.public_id}&amp;seed=reuse">Reuse seed</a>' in html
    assert f'?remix={image.public_id}&amp;seed=reuse' not in html


def test_the_detail_page_shows_the_seed_and_offers_to_copy_and_reuse_it(owner_client, team, owner):
    g = wan(team, owner)
    html = owner_client.get(reverse("generations:detail", args=[g.public_id])).content.decode()
    assert f'data-copy-text="{escape(g.prompt.text)}">Copy prompt</button>' in html
    assert f'?remix={g.public_id}&amp;seed=reuse">Reuse seed</a>' in html
    assert re.search(r"<dt>Seed</dt><dd>4242 <span class=\"muted\">\(as asked for\)</span>", html)
    random = wan(team, owner, seed=-1)
    html = owner_client.get(reverse("generations:detail", args=[random.public_id])).content.decode()
    assert "Random <span class=\"muted\">(Shark AI did not report the one it used)</span>" in html
    live = owner_client.get(reverse("generations:card_status", args=[g.public_id]), {"panel": "detail"}).content.decode()
    assert "<dt>Seed</dt>" in live


def payload_reads(client, url, params=None) -> tuple[int, int]:
    """How many queries a page takes, and how many of them read ``raw_payload``."""
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, params or {}).status_code in (200, 286)
    return len(queries), sum("raw_payload" in q["sql"] for q in queries.captured_queries)


def test_the_detail_page_reads_the_raw_answer_only_for_a_model_with_a_seed(owner_client, team, owner):
    # The provider's whole answer can be large: a model without a seed has nothing to look for in it.
    big = {"seed": 7, "output": {"log": "x" * 100_000}}
    plain = make_generation(team, owner, raw_payload=big, finished_at=timezone.now())  # GPT Image 2: no seed
    add_media(plain)
    seeded = wan(team, owner, raw_payload=big)
    for view, params in (("generations:detail", None), ("generations:card_status", {"panel": "detail"})):
        plain_queries, plain_reads = payload_reads(owner_client, reverse(view, args=[plain.public_id]), params)
        seeded_queries, seeded_reads = payload_reads(owner_client, reverse(view, args=[seeded.public_id]), params)
        assert (plain_reads, seeded_reads) == (0, 1), view  # the seeded one reads just that field, once
        assert plain_queries == seeded_queries - 1, view


def test_a_removed_member_sees_no_recent_prompts_of_the_team(client, team, owner):
    write(team, owner, ["our kiln"])
    former = make_member(team, "former@acme.test")
    Membership.objects.filter(user=former, team=team).update(removed_at=timezone.now())
    client.force_login(former)
    response = client.get(HISTORY, headers=HTMX)
    assert response.status_code == 404  # no team: nothing of the one they left


def test_a_search_looks_through_the_latest_prompts_and_points_to_the_gallery_for_more(owner_client, team, owner,
                                                                                     monkeypatch):
    monkeypatch.setattr(services, "HISTORY_WINDOW", 3)
    write(team, owner, ["an old fox", "a lake", "a cabin", "a young fox"])
    html = owner_client.get(HISTORY, {"q": "fox"}, headers=HTMX).content.decode()
    assert prompts_in(html) == ["a young fox"]  # "an old fox" is older than the latest three
    html = owner_client.get(HISTORY, {"q": "old fox"}, headers=HTMX).content.decode()
    assert prompts_in(html) == [] and '<a href="/gallery/?q=old%20fox">Search the whole gallery</a>' in html
