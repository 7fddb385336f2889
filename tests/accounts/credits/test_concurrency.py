"""Fifty submissions at once against a wallet that can pay for exactly seven.

Real PostgreSQL, real connections (one per thread), through the service the
studio calls. No worker runs: the submit task each success enqueues on commit
goes to an in-memory broker, so nothing is sent to the provider.
"""

import io
import threading

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.credits.services import verify, wallet_for
from accounts.models import Membership
from generations.models import Generation
from generations.services import GenerationRejected, create_generation, estimate
from tests.brokers import use_broker
from tests.conftest import make_member

MODEL = "openai/gpt-image-2"
ATTEMPTS = 50
AFFORDABLE = 7


def memory_broker():
    """Transactional tests really commit, so on_commit enqueues run: keep them in this process."""
    return use_broker("memory://")


def submit(membership, outcomes, start):
    try:
        start.wait()
        create_generation(membership=membership, provider_id="shark", model_id=MODEL, operation="text-to-image",
                          prompt="fifty people click at once")
        outcomes.append("ok")
    except GenerationRejected as exc:
        outcomes.append(str(exc))
    except Exception as exc:  # reported by the assertion below
        outcomes.append(f"unexpected {exc!r}")
    finally:
        connection.close()


@pytest.mark.postgres
def test_fifty_concurrent_submissions_create_exactly_what_the_wallet_can_pay_for(
        transactional_db, team, sandbox_key, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    sandbox_key(team, "shark")
    cost = estimate("shark", MODEL, "text-to-image", {})
    assert cost > 0
    user = make_member(team, "racer@acme.test", credits=cost * AFFORDABLE)
    membership = Membership.objects.select_related("team", "user").get(user=user, team=team)
    outcomes: list[str] = []
    start = threading.Barrier(ATTEMPTS)
    threads = [threading.Thread(target=submit, args=(membership, outcomes, start)) for _ in range(ATTEMPTS)]
    with memory_broker():
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)

    assert outcomes.count("ok") == AFFORDABLE
    refusals = [o for o in outcomes if o != "ok"]
    assert refusals == [f"This needs {cost:,} credits and you have 0 available."] * (ATTEMPTS - AFFORDABLE)
    assert Generation.objects.filter(author=user).count() == AFFORDABLE
    wallet = wallet_for(membership)
    wallet.refresh_from_db()
    assert (wallet.available, wallet.reserved) == (0, cost * AFFORDABLE)
    assert all(check.ok for check in verify())
    out = io.StringIO()
    call_command("credits", "verify", stdout=out)
    assert "match their ledger" in out.getvalue()


@pytest.mark.postgres
def test_concurrent_submissions_never_take_the_team_over_its_monthly_budget(transactional_db, team, sandbox_key,
                                                                           settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    sandbox_key(team, "shark")
    cost = estimate("shark", MODEL, "text-to-image", {})
    team.monthly_budget = cost * 3
    team.save()
    members = [Membership.objects.select_related("team", "user").get(
        team=team, user=make_member(team, f"m{i}@acme.test", credits=cost * 10)) for i in range(5)]
    outcomes: list[str] = []
    attempts = [members[i % 5] for i in range(20)]
    start = threading.Barrier(len(attempts))
    threads = [threading.Thread(target=submit, args=(m, outcomes, start)) for m in attempts]
    with memory_broker():
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)

    assert outcomes.count("ok") == 3
    assert set(outcomes) - {"ok"} == {f"This needs {cost:,} credits and the team's monthly budget has 0 left."}
    assert Generation.objects.filter(team=team).count() == 3
    assert all(check.ok for check in verify())
