"""The team's Webhooks page (/accounts/team/webhooks/): owners and admins only (members 403,
another team's endpoint 404), CSRF on every POST, the secret shown once and kept encrypted, the
delivery log and its buttons; and share.viewed, throttled."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from generations.share import services as sharing
from generations.team_webhooks import delivery
from generations.team_webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from tests.generations.share.conftest import make_result

pytestmark = pytest.mark.django_db

LIST = reverse("accounts:webhooks")


def add(client, url="https://hooks.example.com/kiln", events=("generation.succeeded",), **extra):
    return client.post(LIST, {"url": url, "events": list(events), "description": "CI bot", **extra})


def secret_in(page: str) -> str | None:
    match = re.search(r'value="(whsec_[A-Za-z0-9+/=]+)"', page)
    return match.group(1) if match else None


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(owner_client, team):
    response = add(owner_client, events=("generation.succeeded", "share.viewed"))
    assert response.status_code == 201
    page = response.content.decode()
    secret = secret_in(page)
    assert secret and len(secret) > 40 and "will not be shown again" in page
    assert "no-store" in response["Cache-Control"]

    endpoint = WebhookEndpoint.objects.get(team=team)
    assert endpoint.events == ["generation.succeeded", "share.viewed"]
    assert endpoint.get_secret() == secret and secret not in endpoint.secret_encrypted  # encrypted at rest
    # Never again: not on the list, not on the endpoint's page.
    for url in (LIST, reverse("accounts:webhook_detail", args=[endpoint.public_id])):
        later = owner_client.get(url).content.decode()
        assert secret not in later and secret_in(later) is None
        assert "hooks.example.com/kiln" in later


@pytest.mark.parametrize(("url", "error"), [
    ("http://hooks.example.com/kiln", "must start with https://"),
    ("https://10.0.0.7/kiln", "private address"),
    ("https://localhost:9000/kiln", "private address"),
    ("https://user:pw@hooks.example.com/", "no user name or password"),
    ("ftp://hooks.example.com/", "must start with https://"),
])
def test_an_endpoint_url_that_cannot_be_sent_to_is_refused_with_a_reason(owner_client, team, url, error, settings):
    settings.KILN_ALLOW_PRIVATE_URLS = False
    response = add(owner_client, url=url)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_no_event_chosen_is_refused(owner_client):
    response = add(owner_client, events=())
    assert response.status_code == 400 and "Choose at least one event" in response.content.decode()


def signed_in(user):
    from django.test import Client

    c = Client()
    c.force_login(user)
    return c


def test_members_get_403_and_another_teams_endpoint_is_404(owner_client, teammate, outsider, team):
    teammate_client, outsider_client = signed_in(teammate), signed_in(outsider)
    add(owner_client)
    endpoint = WebhookEndpoint.objects.get()
    item = WebhookDelivery.objects.create(endpoint=endpoint, event_type="webhook.test", event_key="k", payload={})
    urls = [reverse(f"accounts:webhook_{name}", args=[endpoint.public_id])
            for name in ("detail", "rotate", "disable", "enable", "delete", "test")]
    urls.append(reverse("accounts:webhook_resend", args=[endpoint.public_id, item.msg_id]))
    assert teammate_client.get(LIST).status_code == 403
    assert add(teammate_client).status_code == 403
    for url in urls:
        assert teammate_client.post(url).status_code == 403, url
        assert outsider_client.post(url).status_code == 404, url  # the outsider manages another team
    assert outsider_client.get(urls[0]).status_code == 404
    endpoint.refresh_from_db()
    assert endpoint.is_active and WebhookDelivery.objects.count() == 1


def test_the_team_tabs_show_webhooks_to_managers_only(owner_client, teammate):
    teammate_client = signed_in(teammate)
    assert 'href="/accounts/team/webhooks/"' in owner_client.get(reverse("accounts:members")).content.decode()
    assert 'href="/accounts/team/webhooks/"' not in teammate_client.get(reverse("accounts:members")).content.decode()


def test_every_post_needs_the_csrf_token(csrf_client, owner_client):
    assert add(csrf_client).status_code == 403
    add(owner_client)
    endpoint = WebhookEndpoint.objects.get()
    for name in ("rotate", "disable", "delete", "test"):
        assert csrf_client.post(reverse(f"accounts:webhook_{name}", args=[endpoint.public_id])).status_code == 403
    assert WebhookEndpoint.objects.get().is_active and not WebhookDelivery.objects.exists()


def test_the_log_resend_disable_enable_rotate_and_delete(owner_client, team, woken, django_capture_on_commit_callbacks):
    add(owner_client)
    endpoint = WebhookEndpoint.objects.get()
    detail = reverse("accounts:webhook_detail", args=[endpoint.public_id])

    with django_capture_on_commit_callbacks(execute=True):
        assert owner_client.post(reverse("accounts:webhook_test", args=[endpoint.public_id])).status_code == 302
    test = WebhookDelivery.objects.get()
    assert test.event_type == "webhook.test" and woken == [test.pk]
    # Delivered, then re-sent on purpose: the same message id, pending now, its worker woken.
    WebhookDelivery.objects.filter(pk=test.pk).update(status=DeliveryStatus.DELIVERED, attempts=1,
                                                      last_status_code=200)
    page = owner_client.get(detail).content.decode()
    assert test.msg_id in page and "HTTP 200" in page and "Delivered" in page
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(reverse("accounts:webhook_resend", args=[endpoint.public_id, test.msg_id]))
    test.refresh_from_db()
    assert test.status == DeliveryStatus.PENDING and woken == [test.pk, test.pk]
    assert WebhookDelivery.objects.count() == 1
    # While a worker holds it, a re-send is refused (it would race the send in flight).
    delivery.claim(test.pk)
    response = owner_client.post(reverse("accounts:webhook_resend", args=[endpoint.public_id, test.msg_id]), follow=True)
    assert "being sent right now" in response.content.decode()

    old_secret = endpoint.get_secret()
    response = owner_client.post(reverse("accounts:webhook_rotate", args=[endpoint.public_id]))
    endpoint.refresh_from_db()
    assert secret_in(response.content.decode()) == endpoint.get_secret() != old_secret
    assert "no-store" in response["Cache-Control"]

    owner_client.post(reverse("accounts:webhook_disable", args=[endpoint.public_id]))
    endpoint.refresh_from_db()
    assert not endpoint.is_active and "Disabled by owner@acme.test" in endpoint.disabled_reason
    page = owner_client.get(detail).content.decode()
    assert "Disabled by owner@acme.test" in page and ">Enable</button>" in page
    owner_client.post(reverse("accounts:webhook_enable", args=[endpoint.public_id]))
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.disabled_reason == ""

    owner_client.post(reverse("accounts:webhook_delete", args=[endpoint.public_id]))
    assert not WebhookEndpoint.objects.exists() and not WebhookDelivery.objects.exists()


def test_the_log_is_newest_first_and_paginated(owner_client):
    add(owner_client)
    endpoint = WebhookEndpoint.objects.get()
    for n in range(30):
        WebhookDelivery.objects.create(endpoint=endpoint, event_type="webhook.test", event_key=f"k{n}",
                                       payload={"n": n})
    newest = WebhookDelivery.objects.order_by("-id").first()
    oldest = WebhookDelivery.objects.order_by("id").first()
    detail = reverse("accounts:webhook_detail", args=[endpoint.public_id])
    first = owner_client.get(detail).content.decode()
    assert newest.msg_id in first and oldest.msg_id not in first and "Page 1 of 2" in first
    assert oldest.msg_id in owner_client.get(detail + "?page=2").content.decode()


def test_a_share_page_viewed_sends_share_viewed_once_per_viewer_in_ten_minutes(
        client, owner, team, owner_client, woken, django_capture_on_commit_callbacks):
    add(owner_client, events=("share.viewed",))
    result = make_result(team, owner)
    share, token = sharing.create_share(owner.memberships.get(team=team), [result], title="Preview")
    url = reverse("generations:share_public", args=[token])
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):  # a reload storm
            assert client.get(url, REMOTE_ADDR="203.0.113.9").status_code == 200
        client.get(url, REMOTE_ADDR="198.51.100.4")  # someone else
    items = list(WebhookDelivery.objects.order_by("id"))
    assert [d.event_type for d in items] == ["share.viewed", "share.viewed"] and len(woken) == 2
    data = items[0].payload["data"]
    assert data["share"]["id"] == str(share.public_id) and data["generation_ids"] == [str(result.public_id)]
    assert "203.0.113.9" not in str(items[0].payload)  # the viewer is not sent


def test_the_django_admin_never_shows_the_secret(admin_client, owner_client):
    add(owner_client)
    endpoint = WebhookEndpoint.objects.get()
    secret = endpoint.get_secret()
    for url in (reverse("admin:generations_webhookendpoint_changelist"),
                reverse("admin:generations_webhookendpoint_change", args=[endpoint.pk])):
        page = admin_client.get(url).content.decode()
        assert endpoint.url in page
        assert secret not in page and endpoint.secret_encrypted not in page and "whsec_" not in page
