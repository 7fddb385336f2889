"""What one studio submit costs the server: its queries (the burst benchmark serves 50 a
second on two cores only if each POST stays small; docs/performance.md, "The studio POST
under a burst"), and that the shortcuts taken for it keep every rule."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.credits.models import Wallet
from accounts.models import Membership
from generations.models import Generation
from generations.services import create_generation, team_catalog
from generations.studio.forms import find_entry
from tests.generations.studio.conftest import WAN, form_data

HTMX = {"HX-Request": "true"}
GENERATE = reverse("generations:generate")

# The htmx submit that is accepted (the same 23 on SQLite and PostgreSQL): session, user,
# membership (team, wallet and user joined), the team's keys once, the replay check, the
# transaction (BEGIN, membership lock, rate count, idempotency, savepoints, prompt, generation,
# wallet, ledger entry, conditional UPDATE, COMMIT), the typical duration for the new card and
# the balance. It was 29: the member's user, the team's keys (three more times) and the wallet
# were read again, and the new card was read back with its media.
SUBMIT_QUERIES = 23


def _queries(client, data) -> tuple[int, list[str], object]:
    with CaptureQueriesContext(connection) as captured:
        response = client.post(GENERATE, data, headers=HTMX)
    return len(captured.captured_queries), [q["sql"] for q in captured.captured_queries], response


@pytest.mark.django_db(transaction=True)
def test_an_accepted_studio_submit_reads_the_keys_the_user_and_the_wallet_once(owner_client, shark):
    owner_client.post(GENERATE, form_data(WAN), headers=HTMX)  # warm: the first request of a process
    count, sqls, response = _queries(owner_client, form_data(WAN))
    assert response.status_code == 200 and b"gcard" in response.content
    assert count <= SUBMIT_QUERIES, f"{count} queries:\n" + "\n".join(sqls)
    assert sum('FROM "generations_providerkey"' in sql for sql in sqls) == 1, "\n".join(sqls)
    assert sum('FROM "accounts_user"' in sql for sql in sqls) == 1, "\n".join(sqls)
    assert sum(sql.startswith("SELECT") and 'FROM "accounts_wallet"' in sql for sql in sqls) == 2, "\n".join(sqls)


@pytest.mark.django_db(transaction=True)
def test_the_answered_balance_is_the_one_after_the_reservation(owner_client, owner, team, shark):
    """One read of the wallet serves the header's balance and the fresh form's estimate: both
    must show what is left after this submit's reservation."""
    response = owner_client.post(GENERATE, form_data(WAN), headers=HTMX)
    assert response.status_code == 200
    left = Wallet.objects.get(membership__user=owner, membership__team=team).available
    assert left < 1_000_000
    html = response.content.decode()
    assert f"{left:,}" in html
    assert "1,000,000" not in html


def test_a_catalog_entry_of_another_team_is_not_used(team, other_team, owner, outsider, sandbox_key):
    """``create_generation(entry=...)`` saves reading the team's keys again; an entry that is not
    this team's (its key belongs to another team) is ignored, never charged to that key."""
    ours = sandbox_key(team, "shark")
    theirs = sandbox_key(other_team, "shark")
    their_entry = find_entry(team_catalog(other_team), "shark", "alibaba/wan-2.7")
    assert their_entry.key == theirs
    membership = Membership.objects.get(user=owner, team=team)
    generation = create_generation(membership=membership, provider_id="shark", model_id="alibaba/wan-2.7",
                                   operation="text-to-video", prompt="a kite", entry=their_entry)
    assert generation.provider_key == ours
    assert generation.team == team


def test_a_catalog_entry_for_another_model_is_not_used(team, owner, sandbox_key):
    sandbox_key(team, "shark")
    catalog = team_catalog(team)
    other = find_entry(catalog, "shark", "openai/gpt-image-2")
    membership = Membership.objects.get(user=owner, team=team)
    generation = create_generation(membership=membership, provider_id="shark", model_id="alibaba/wan-2.7",
                                   operation="text-to-video", prompt="a kite", entry=other)
    assert (generation.model, generation.kind) == ("alibaba/wan-2.7", "video")
    assert Generation.objects.filter(team=team).count() == 1


def _card(html: str, public_id) -> str:
    """The card's <article> for ``public_id``, with the parts that tick with the clock taken out."""
    import re

    match = re.search(rf'<article id="card-{public_id}".*?</article>', html, re.S)
    assert match, f"no card {public_id}"
    card = re.sub(r"<time data-elapsed[^>]*>.*?</time>", "<time/>", match.group(0), flags=re.S)
    card = card.replace(" data-announce-new", "")  # the studio's new card asks the live region to say it
    card = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "csrf", card)  # masked anew per page
    return re.sub(r'\s+hx-swap-oob="true"', "", card)


def test_the_new_card_is_the_card_the_gallery_draws_for_it(owner_client, team, shark):
    """The answer's card is drawn from the rows just created (no reading back): it must be the
    very card the studio's grid draws from the database for the same job."""
    response = owner_client.post(GENERATE, form_data(WAN, prompt="A kite over the dunes"), headers=HTMX)
    assert response.status_code == 200
    generation = Generation.objects.get(team=team)
    page = owner_client.get(reverse("generations:studio")).content.decode()
    assert _card(response.content.decode(), generation.public_id) == _card(page, generation.public_id)
