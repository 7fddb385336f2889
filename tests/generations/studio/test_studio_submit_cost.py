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

# The htmx submit that is accepted, on the test database (SQLite): session, user, membership
# (team, wallet and user joined), the team's keys once, the replay check, the transaction
# (membership lock, rate count, idempotency, prompt, generation, wallet, ledger entry,
# conditional UPDATE, savepoints), then the new card, the typical duration and the balance.
# It was 28 when the member's user, the team's keys (three more times) and the wallet
# (twice) were each read again.
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
    assert count <= SUBMIT_QUERIES, "\n".join(sqls)
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
