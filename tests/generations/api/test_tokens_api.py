"""Tokens at the API's door, over real HTTP against gunicorn: who is let in, as whom, and with what."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import Membership, Role
from accounts.services import change_role, remove_member
from accounts.tokens.models import AccessToken
from accounts.tokens.services import hash_token, revoke_token

pytestmark = pytest.mark.django_db(transaction=True)

PROBLEM = "application/problem+json"


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"].startswith("https://")
    return body


def test_a_token_acts_as_its_member_in_its_team(call, token_for, owner, team):
    token = token_for(owner, team)
    answer = call("GET", "/me", token)
    assert answer.status_code == 200, answer.text
    me = answer.json()
    assert (me["email"], me["team"], me["role"]) == ("owner@acme.test", "acme", "owner")
    assert me["balance"]["available"] == 1_000_000
    assert me["token"]["prefix"] == token[:16] and me["token"]["scopes"] == ["generate", "read", "share"]
    row = AccessToken.objects.get(token_hash=hash_token(token))
    assert row.last_used_at is not None


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer kiln_pat_" + "x" * 43, "Basic b3duZXI6cGFzcw==",
                                    "Token kiln_pat_abc"])
def test_no_or_a_wrong_token_is_401_problem_with_www_authenticate(call, owner, header):
    headers = {"Authorization": header} if header is not None else {}
    answer = call("GET", "/me", headers=headers)
    body = assert_problem(answer, 401)
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert "kiln_pat_" in body["detail"]


def test_a_signed_in_browser_session_does_not_authenticate_the_api(api_url, owner):
    import httpx
    from django.test import Client

    signed_in = Client()
    signed_in.force_login(owner)  # a real session row, which the server reads
    with httpx.Client(base_url=api_url.removesuffix("/api/v1"), follow_redirects=False) as browser:
        browser.cookies.set("sessionid", signed_in.cookies["sessionid"].value)
        assert browser.get("/gallery/").status_code == 200  # the cookie works for pages
        csrf = browser.cookies.get("csrftoken", "")
        assert_problem(browser.get("/api/v1/me"), 401)
        assert_problem(browser.post("/api/v1/estimate", json={"model": "shark:x"},
                                    headers={"X-CSRFToken": csrf}), 401)


def test_revoked_and_expired_tokens_are_refused_at_once(call, token_for, owner, team):
    token = token_for(owner, team)
    assert call("GET", "/me", token).status_code == 200
    membership = Membership.objects.get(user=owner, team=team)
    revoke_token(AccessToken.objects.get(token_hash=hash_token(token)), actor=membership)
    assert_problem(call("GET", "/me", token), 401)

    soon = token_for(owner, team, expires_at=timezone.now() + dt.timedelta(hours=1))
    assert call("GET", "/me", soon).status_code == 200
    AccessToken.objects.filter(token_hash=hash_token(soon)).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert_problem(call("GET", "/me", soon), 401)


def test_a_removed_member_s_token_stops_working_and_a_demotion_applies_to_the_next_request(
        call, token_for, owner, teammate, team):
    from tests.conftest import make_member

    admin = make_member(team, "admin@acme.test", Role.ADMIN)
    admin_token = token_for(admin, team)
    mate_token = token_for(teammate, team)
    owner_membership = Membership.objects.get(user=owner, team=team)
    assert call("GET", "/me", admin_token).json()["role"] == "admin"

    change_role(Membership.objects.get(user=admin, team=team), Role.MEMBER, actor=owner_membership)
    assert call("GET", "/me", admin_token).json()["role"] == "member"

    remove_member(Membership.objects.get(user=teammate, team=team), actor=owner_membership)
    assert_problem(call("GET", "/me", mate_token), 401)


def test_a_token_without_the_scope_is_403_naming_it(call, token_for, owner, team):
    token = token_for(owner, team, scopes=("share",))
    body = assert_problem(call("GET", "/models", token), 403)
    assert "“read”" in body["detail"] and body["type"].endswith("missing-scope")


def test_each_token_is_limited_per_minute_with_retry_after(call, token_for, owner, team, kiln_web):
    # The test server allows 60 a minute (conftest); each of its two processes counts its own,
    # and a minute's boundary may fall between: 300 requests pass 2 x 2 x 60.
    token = token_for(owner, team)
    statuses = [call("GET", "/me", token) for _ in range(300)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, "no 429 after 300 requests"
    body = assert_problem(limited[0], 429)
    assert 1 <= int(limited[0].headers["retry-after"]) <= 60
    assert "try again" in body["detail"]
    # Another token of the same member has its own count.
    assert call("GET", "/me", token_for(owner, team, name="second")).status_code == 200
