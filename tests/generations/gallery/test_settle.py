"""Settling a job that needs review from its card and its page (owners and admins of its team)."""

import pytest
from django.urls import reverse

from accounts.credits import services as credits
from accounts.credits.models import LedgerEntry
from accounts.models import Role
from generations.models import Generation, Kind, Status
from tests.conftest import make_member

from .conftest import make_generation, membership_of

HX = {"HX-Request": "true"}
WORDS = ("Kiln could not save the results of this job: its download link had expired (HTTP 403) and asking Shark AI "
         "again gave no working one. Shark AI had finished it and may have charged for it, so the 4,000 reserved "
         "credits are held until a team owner or admin settles it: refunded if Shark AI did not charge for it, "
         "charged if it did.")


def url(name, g):
    return reverse(f"generations:{name}", args=[g.public_id])


@pytest.fixture
def held(team, teammate):
    """A teammate's video that finished at Shark but whose result Kiln could not fetch: 4,000 held."""
    g = make_generation(team, teammate, kind=Kind.VIDEO, model="alibaba/wan-2.7", status=Status.FAILED,
                        needs_review=True, estimated_cost=4_000, provider_job_id="task-7f3a", error=WORDS)
    credits.reserve(credits.wallet_for(membership_of(teammate, team)), g, 4_000)
    return g


def wallet(user, team):
    return credits.wallet_for(membership_of(user, team))


def test_the_card_and_the_page_say_what_happened_and_offer_owners_refund_or_charge(owner_client, held):
    card = owner_client.get(url("card_status", held), headers=HX).content.decode()
    page = owner_client.get(url("detail", held)).content.decode()
    for html in (card, page):
        assert "download link had expired" in html and "Needs review" in html
        assert "4,000 cr" in html and "held" in html
        assert f'action="{url("settle", held)}"' in html
        assert "Refund 4,000 cr" in html and "Charge 4,000 cr" in html
    assert "task-7f3a" in page and "did not charge for it" in page


def test_a_member_who_is_not_an_admin_sees_the_explanation_but_no_buttons_and_cannot_settle(
        teammate_client, team, teammate, held):
    for html in (teammate_client.get(url("card_status", held), headers=HX).content.decode(),
                 teammate_client.get(url("detail", held)).content.decode()):
        assert "download link had expired" in html and "A team owner or admin settles it" in html
        assert url("settle", held) not in html and "Refund" not in html
    before = wallet(teammate, team).available
    response = teammate_client.post(url("settle", held), {"action": "release"})
    assert response.status_code == 403
    held.refresh_from_db()
    assert held.needs_review and wallet(teammate, team).available == before


def test_an_owner_refunds_it_from_the_card_and_the_author_gets_the_credits_back(owner_client, owner, team,
                                                                                  teammate, held):
    before = wallet(teammate, team).available
    response = owner_client.post(url("settle", held), {"action": "release"}, headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Refunded: 4,000 credits went back to" in html and "Not charged" in html
    assert url("settle", held) not in html and "Needs review" not in html
    held.refresh_from_db()
    assert not held.needs_review and held.actual_cost is None
    assert wallet(teammate, team).available == before + 4_000
    entry = LedgerEntry.objects.get(generation_ref=held.public_id, kind="release")
    assert entry.actor == owner and "Review by owner@acme.test" in entry.reason
    assert all(check.ok for check in credits.verify())


def test_an_admin_charges_it_from_the_page_at_the_providers_reported_figure(client, team, teammate, held):
    admin = make_member(team, "admin@acme.test", Role.ADMIN)
    client.force_login(admin)
    Generation.objects.filter(pk=held.pk).update(actual_cost=3_500)   # what Shark reported
    before = wallet(teammate, team).available
    response = client.post(url("settle", held), {"action": "capture"})
    assert response.status_code == 302 and response["Location"] == url("detail", held)
    page = client.get(response["Location"]).content.decode()
    assert "Charged 3,500 credits to" in page and "Charged 3,500 cr" in page
    held.refresh_from_db()
    assert not held.needs_review and held.actual_cost == 3_500
    assert wallet(teammate, team).available == before + 500         # the rest of the 4,000 came back
    assert LedgerEntry.objects.filter(generation_ref=held.public_id, kind="capture").count() == 1


def test_a_second_settle_changes_nothing(owner_client, team, teammate, held):
    owner_client.post(url("settle", held), {"action": "release"})
    after = wallet(teammate, team).available
    response = owner_client.post(url("settle", held), {"action": "capture"}, headers=HX)
    assert "already settled" in response.content.decode()
    assert wallet(teammate, team).available == after
    assert not LedgerEntry.objects.filter(generation_ref=held.public_id, kind="capture").exists()


def test_another_teams_owner_cannot_settle_or_see_it(outsider_client, team, teammate, held):
    before = wallet(teammate, team).available
    assert outsider_client.post(url("settle", held), {"action": "release"}).status_code == 404
    held.refresh_from_db()
    assert held.needs_review and wallet(teammate, team).available == before


def test_settling_needs_a_post_with_a_csrf_token_and_a_known_action(csrf_client, owner_client, held):
    assert owner_client.get(url("settle", held)).status_code == 405
    assert csrf_client.post(url("settle", held), {"action": "release"}).status_code == 403   # no token
    assert owner_client.post(url("settle", held), {"action": "forgive"}).status_code == 400
    held.refresh_from_db()
    assert held.needs_review


def test_a_job_that_needs_no_review_offers_no_settle_buttons(owner_client, team, owner):
    g = make_generation(team, owner, status=Status.FAILED, error="Content was blocked by the safety system.")
    html = owner_client.get(url("detail", g)).content.decode()
    assert url("settle", g) not in html and "Needs review" not in html


def test_the_jobs_words_say_how_it_was_settled(owner_client, held):
    owner_client.post(url("settle", held), {"action": "capture"})
    held.refresh_from_db()
    assert held.error.startswith(WORDS)
    assert held.error.endswith("Settled by owner@acme.test: charged 4,000 credits.")
