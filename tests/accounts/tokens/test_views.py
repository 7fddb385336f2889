"""The API tokens pages: a member's own (make, see once, revoke) and the team's tab."""

import html
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from accounts.tokens.models import AccessToken
from accounts.tokens.services import create_token, find_token

SECRET = re.compile(r"kiln_pat_[A-Za-z0-9_-]{43}")


def _make(client, **data):
    return client.post(reverse("accounts:tokens"), {"name": "CI", "scopes": ["read"], "expiry": "never", **data})


def test_the_page_says_which_team_the_tokens_act_in(teammate_client, team):
    page = teammate_client.get(reverse("accounts:tokens")).content.decode()
    assert "Tokens act as you in <strong>Acme Studio</strong>" in page
    assert "You have no tokens in Acme Studio yet." in page
    for scope in ("read", "generate", "share"):
        assert f'name="scopes" value="{scope}"' in page


def test_a_new_token_is_shown_once_with_a_curl_line_and_never_again(teammate_client, mate_m):
    response = _make(teammate_client, name="Release videos", scopes=["read", "generate"], expiry="30")
    page = response.content.decode()
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    secret = SECRET.search(page).group(0)
    assert "you will not see it again" in page
    assert f'curl -H "Authorization: Bearer {secret}" http://testserver/api/v1/me' in page
    token = AccessToken.objects.get()
    assert token.membership == mate_m and token.scopes == ["generate", "read"] and token.name == "Release videos"
    assert timedelta(days=29, hours=23) < token.expires_at - timezone.now() <= timedelta(days=30)
    assert find_token(secret) == token
    # Afterwards: the prefix only.
    later = teammate_client.get(reverse("accounts:tokens")).content.decode()
    assert secret not in later and secret[16:] not in later
    assert f"{secret[:16]}…" in later and "Release videos" in later and "never" in later


@pytest.mark.parametrize(("data", "message"), [
    ({"name": ""}, "This field is required."),
    ({"scopes": []}, "Choose at least one scope."),
    ({"scopes": ["admin"]}, "Select a valid choice."),
    ({"expiry": "date", "expires_on": ""}, "Choose the date the token expires."),
    ({"expiry": "date", "expires_on": "2001-01-01"}, "Choose a date after today."),
    ({"expiry": "365"}, "Select a valid choice."),
])
def test_a_wrong_form_is_refused_at_the_form_and_nothing_is_made(teammate_client, data, message):
    response = _make(teammate_client, **data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not SECRET.search(response.content.decode())
    assert not AccessToken.objects.exists()


def test_a_date_expiry_ends_with_that_day(teammate_client):
    day = timezone.localdate() + timedelta(days=3)
    assert _make(teammate_client, expiry="date", expires_on=day.isoformat()).status_code == 200
    expires = timezone.localtime(AccessToken.objects.get().expires_at)
    assert expires.date() == day + timedelta(days=1) and expires.hour == 0 and expires.minute == 0


def test_the_list_shows_each_state_and_who_revoked(teammate_client, mate_m, owner_m):
    create_token(mate_m, "alive", ["read"])
    expired, _ = create_token(mate_m, "old", ["read"])
    AccessToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    stopped, _ = create_token(mate_m, "stopped", ["read"])
    from accounts.tokens.services import revoke_token

    revoke_token(stopped, actor=owner_m)
    page = teammate_client.get(reverse("accounts:tokens")).content.decode()
    assert "Live" in page and "Expired" in page and "Revoked" in page
    assert "by owner@acme.test" in page


def test_a_member_revokes_their_own_token_with_a_post(teammate_client, mate_m):
    token, secret = create_token(mate_m, "bot", ["read"])
    url = reverse("accounts:token_revoke", args=[token.pk])
    assert teammate_client.get(url).status_code == 405
    response = teammate_client.post(url, follow=True)
    assert "Revoked “bot”" in response.content.decode()
    assert find_token(secret) is None


def test_revoking_needs_the_csrf_token(csrf_client, owner_m):
    token, secret = create_token(owner_m, "bot", ["read"])
    assert csrf_client.post(reverse("accounts:token_revoke", args=[token.pk])).status_code == 403
    assert csrf_client.post(reverse("accounts:tokens"), {"name": "x", "scopes": ["read"], "expiry": "never"}).status_code == 403
    assert find_token(secret) is not None and AccessToken.objects.count() == 1


def test_someone_else_s_token_is_404_on_the_member_page(teammate_client, owner_m, outsider_m):
    for other in (owner_m, outsider_m):
        token, secret = create_token(other, "theirs", ["read"])
        assert teammate_client.post(reverse("accounts:token_revoke", args=[token.pk])).status_code == 404
        assert find_token(secret) is not None


def test_tokens_of_another_team_are_not_listed(client, teammate, mate_m, outsider_m):
    create_token(outsider_m, "rival secret plan", ["read"])
    client.force_login(teammate)
    assert "rival secret plan" not in client.get(reverse("accounts:tokens")).content.decode()


# The team tab -----------------------------------------------------------------------

def test_the_team_tab_lists_every_current_member_s_tokens(owner_client, owner_m, mate_m, outsider_m, team):
    create_token(mate_m, "mate bot", ["read", "share"])
    create_token(owner_m, "owner ci", ["generate"])
    create_token(outsider_m, "rival bot", ["read"])
    response = owner_client.get(reverse("accounts:team_tokens"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "mate bot" in page and "owner ci" in page and "rival bot" not in page
    assert "mate@acme.test" in page and 'aria-current="page">API tokens</a>' in page


def test_the_team_tab_is_403_for_a_member_and_the_tab_is_not_shown(teammate_client, mate_m):
    token, secret = create_token(mate_m, "bot", ["read"])
    assert teammate_client.get(reverse("accounts:team_tokens")).status_code == 403
    assert teammate_client.post(reverse("accounts:team_token_revoke", args=[token.pk])).status_code == 403
    assert find_token(secret) is not None
    assert reverse("accounts:team_tokens") not in teammate_client.get(reverse("accounts:members")).content.decode()


def test_an_admin_revokes_a_member_s_token_and_the_list_says_who_and_when(client, admin_user, mate_m):
    token, secret = create_token(mate_m, "mate bot", ["read"])
    client.force_login(admin_user)
    response = client.post(reverse("accounts:team_token_revoke", args=[token.pk]), follow=True)
    page = html.unescape(response.content.decode())
    assert "Revoked mate@acme.test's token “mate bot”" in page
    assert find_token(secret) is None
    token.refresh_from_db()
    assert token.revoked_by == admin_user
    assert re.search(r'by you, <time datetime="[^"]+">\d+ \w+ \d{4} \d\d:\d\d</time>', page)
    # The member sees who did it.
    client.force_login(mate_m.user)
    assert "by admin@acme.test" in client.get(reverse("accounts:tokens")).content.decode()


def test_another_team_s_token_is_404_on_the_team_tab(owner_client, outsider_m, mate_m):
    token, secret = create_token(outsider_m, "rival bot", ["read"])
    assert owner_client.post(reverse("accounts:team_token_revoke", args=[token.pk])).status_code == 404
    assert find_token(secret) is not None
    # A removed member's token is not the team's to act on either.
    gone, _ = create_token(mate_m, "gone", ["read"])
    Membership.objects.filter(pk=mate_m.pk).update(removed_at=timezone.now())
    assert owner_client.post(reverse("accounts:team_token_revoke", args=[gone.pk])).status_code == 404


def test_the_header_links_to_the_tokens_page(teammate_client):
    assert f'href="{reverse("accounts:tokens")}"' in teammate_client.get(reverse("accounts:members")).content.decode()
