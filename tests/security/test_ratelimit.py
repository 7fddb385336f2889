"""Rate limits: the fixed-window counter, the webhook endpoint per address, and the
generate endpoint per member."""

import secrets

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from generations.models import Generation
from project import ratelimit
from tests.generations.studio.conftest import GPT_IMAGE, form_data


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def test_a_window_allows_the_limit_then_refuses_until_it_resets():
    decisions = [ratelimit.hit("t", "ann", limit=3, window=60, now=1200.5) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert decisions[-1].retry_after == 59  # the window began at 1200 and ends at 1260
    assert ratelimit.hit("t", "ann", limit=3, window=60, now=1260.0).allowed  # the next window
    assert ratelimit.hit("t", "bob", limit=3, window=60, now=1200.5).allowed  # someone else
    assert ratelimit.hit("other", "ann", limit=3, window=60, now=1200.5).allowed  # another scope


def test_the_decorator_answers_429_with_retry_after():
    from django.http import HttpResponse
    from django.test import RequestFactory

    @ratelimit.rate_limit("deco", limit=2, key=ratelimit.client_address, message="Slow down, please.")
    def view(request):
        return HttpResponse("ok")

    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.9")
    assert [view(request).status_code for _ in range(3)] == [200, 200, 429]
    refused = view(request)
    assert refused.content == b"Slow down, please." and 1 <= int(refused["Retry-After"]) <= 60
    assert view(RequestFactory().get("/", REMOTE_ADDR="192.0.2.10")).status_code == 200


def test_the_webhook_endpoint_is_limited_per_address(settings, db):
    settings.KILN_WEBHOOK_IP_LIMIT = 5
    client = Client()
    url = reverse("generations:webhook", args=["shark", secrets.token_urlsafe(32)])
    statuses = [client.post(url, REMOTE_ADDR="198.51.100.7").status_code for _ in range(7)]
    assert statuses == [404] * 5 + [429] * 2
    assert client.post(url, REMOTE_ADDR="198.51.100.8").status_code == 404  # another address is not affected


def test_the_generate_endpoint_is_limited_per_member_with_a_clear_message(
        owner_client, teammate, team, sandbox_key, settings):
    settings.KILN_GENERATE_PER_MINUTE = 3
    sandbox_key(team, "shark")
    answers = [owner_client.post(reverse("generations:generate"), form_data(GPT_IMAGE), headers={"HX-Request": "true"})
               for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    refused = answers[3]
    assert refused.status_code == 429 and refused["Retry-After"]
    assert escape("at most 3 a minute") in refused.content.decode()
    assert Generation.objects.count() == 3
    # Another member of the team has their own allowance.
    other = Client()
    other.force_login(teammate)
    assert other.post(reverse("generations:generate"), form_data(GPT_IMAGE),
                      headers={"HX-Request": "true"}).status_code == 200


def _submit_through_the_studio(user, outcomes, start):
    from django.db import connection

    client = Client()
    client.force_login(user)
    try:
        start.wait()
        for _ in range(2):
            response = client.post(reverse("generations:generate"), form_data(GPT_IMAGE),
                                   headers={"HX-Request": "true"})
            outcomes.append(response.status_code)
    except Exception as exc:  # reported by the assertion below
        outcomes.append(f"unexpected {exc!r}")
    finally:
        connection.close()


@pytest.mark.postgres
def test_concurrent_submits_of_one_member_get_exactly_the_per_minute_limit(transactional_db, team, owner,
                                                                           sandbox_key, settings):
    """48 submits from one member at once (24 threads, two each, real connections), limit 30:
    counting then creating let 35 through; exactly 30 are created now, and 18 get a 429."""
    import threading

    from tests.brokers import use_broker

    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.KILN_GENERATE_PER_MINUTE = 30
    sandbox_key(team, "shark")
    outcomes: list = []
    start = threading.Barrier(24)
    threads = [threading.Thread(target=_submit_through_the_studio, args=(owner, outcomes, start)) for _ in range(24)]
    with use_broker("memory://"):  # the submit tasks enqueued on commit stay in this process
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert sorted(outcomes, key=str) == [200] * 30 + [429] * 18
    assert Generation.objects.filter(author=owner).count() == 30
