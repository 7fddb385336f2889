"""Share links over real HTTP against gunicorn: create (the URL opens the public page), list
(never a token), revoke (the page is gone at once), by the Share links page's rules."""

from __future__ import annotations

import httpx
import pytest

from accounts.models import Membership
from generations.boards.models import Board, BoardItem
from generations.models import Status
from generations.share import services as sharing
from generations.share.models import ShareLink
from tests.generations.api.test_tokens_api import assert_problem
from tests.generations.share.conftest import make_result

pytestmark = pytest.mark.django_db(transaction=True)


def site(api_url: str) -> str:
    return api_url.removesuffix("/api/v1")


def test_create_answers_the_url_once_it_opens_the_public_page_and_the_list_never_shows_the_token(
        call, token_for, owner, team, api_url):
    a, b = make_result(team, owner), make_result(team, owner, prompt="a second lighthouse")
    token = token_for(owner, team, scopes=("share",))
    answer = call("POST", "/shares", token, json={"generations": [str(a.public_id), str(b.public_id)],
                                                   "title": "Lighthouses", "show_prompt": True,
                                                   "expires_in_days": 7})
    assert answer.status_code == 201, answer.text
    assert answer.headers["cache-control"] == "no-store"
    created = answer.json()
    url = created["url"]
    assert url.startswith(site(api_url) + "/s/")
    assert created["title"] == "Lighthouses" and created["state"] == "live" and created["show_prompt"] is True
    assert [g["id"] for g in created["generations"]] == [str(a.public_id), str(b.public_id)]
    assert created["expires_at"] and created["created_by"] == "owner@acme.test"

    public = httpx.get(url)
    assert public.status_code == 200 and "Lighthouses" in public.text and "a second lighthouse" in public.text

    secret = url.rstrip("/").rsplit("/", 1)[-1]
    listed = call("GET", "/shares", token)  # a share-only token may list
    assert listed.status_code == 200, listed.text
    assert secret not in listed.text
    [item] = listed.json()["items"]
    assert item["id"] == created["id"] and item["views"] == 1 and "url" not in item
    assert listed.json()["page"] == 1 and listed.json()["next_url"] is None
    assert ShareLink.objects.get(public_id=created["id"]).token_hash == sharing.hash_token(secret)


def test_revoke_closes_the_page_at_once_as_the_site_does(call, token_for, owner, team, api_url):
    result = make_result(team, owner)
    token = token_for(owner, team, scopes=("share",))
    created = call("POST", "/shares", token, json={"generations": [str(result.public_id)]}).json()
    assert httpx.get(created["url"]).status_code == 200
    answer = call("DELETE", f"/shares/{created['id']}", token)
    assert answer.status_code == 204, answer.text
    assert httpx.get(created["url"]).status_code == 410  # the site's answer for a revoked link
    # Again: already revoked, nothing changes, still 204.
    assert call("DELETE", f"/shares/{created['id']}", token).status_code == 204
    [item] = call("GET", "/shares", token).json()["items"]
    assert item["state"] == "revoked" and item["revoked_by"] == "owner@acme.test" and item["revoked_at"]


def test_a_member_may_revoke_a_teammate_s_link_as_on_the_page(call, token_for, owner, teammate, team):
    # The Share links page lets any member of the team revoke any of its links.
    link, _ = sharing.create_share(Membership.objects.get(user=owner, team=team), [make_result(team, owner)])
    answer = call("DELETE", f"/shares/{link.public_id}", token_for(teammate, team, scopes=("share",)))
    assert answer.status_code == 204, answer.text
    link.refresh_from_db()
    assert link.revoked_at is not None and link.revoked_by == teammate


def test_a_board_link_and_its_page(call, token_for, owner, team):
    board = Board.objects.create(team=team, name="Coast", created_by=owner)
    BoardItem.objects.create(board=board, generation=make_result(team, owner, prompt="cliffs"), added_by=owner)
    answer = call("POST", "/shares", token_for(owner, team), json={"board": str(board.public_id), "title": "Coast"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["board"] == str(board.public_id) and answer.json()["board_name"] == "Coast"
    assert httpx.get(answer.json()["url"]).status_code == 200


def test_another_team_s_objects_are_404(call, token_for, owner, team, outsider, other_team):
    theirs = make_result(other_team, outsider)
    their_link, _ = sharing.create_share(Membership.objects.get(user=outsider, team=other_team), [theirs])
    their_board = Board.objects.create(team=other_team, name="Rival", created_by=outsider)
    token = token_for(owner, team)
    assert_problem(call("DELETE", f"/shares/{their_link.public_id}", token), 404)
    their_link.refresh_from_db()
    assert their_link.revoked_at is None
    body = assert_problem(call("POST", "/shares", token, json={"generations": [str(theirs.public_id)]}), 404)
    assert body["field"] == "generations"
    body = assert_problem(call("POST", "/shares", token, json={"board": str(their_board.public_id)}), 404)
    assert body["field"] == "board"
    assert call("GET", "/shares", token).json()["items"] == []


@pytest.mark.parametrize(("payload", "field"), [
    ({}, "generations"),
    ({"generations": ["nope"]}, "generations"),
    ({"generations": ["UNFINISHED"]}, "generations"),
    ({"generations": ["OK"], "expires_in_days": 0}, "expires_in_days"),
    ({"generations": ["OK"], "expires_at": "2001-01-01T00:00:00+00:00"}, "expires_at"),
    ({"generations": ["OK"], "expires_at": "tomorrow"}, "expires_at"),
    ({"generations": ["OK"], "expires_at": "2099-01-01T00:00:00"}, "expires_at"),
    ({"generations": ["OK"], "expires_in_days": 1, "expires_at": "2099-01-01T00:00:00+00:00"}, "expires_at"),
    ({"generations": ["OK"], "title": "x" * 201}, "title"),
    ({"generations": ["OK"], "show_prompt": "perhaps"}, "show_prompt"),
])
def test_a_refused_share_is_422_naming_the_field_and_nothing_is_made(call, token_for, owner, team, payload, field):
    done, running = make_result(team, owner), make_result(team, owner, status=Status.RUNNING)
    ids = {"OK": str(done.public_id), "UNFINISHED": str(running.public_id)}
    payload = {**payload, **({"generations": [ids.get(i, i) for i in payload["generations"]]}
                             if "generations" in payload else {})}
    body = assert_problem(call("POST", "/shares", token_for(owner, team), json=payload), 422)
    assert body["field"] == field, body
    assert not ShareLink.objects.exists()


def test_writes_need_the_share_scope_and_the_list_read_or_share(call, token_for, owner, team):
    result = make_result(team, owner)
    link, _ = sharing.create_share(Membership.objects.get(user=owner, team=team), [result])
    read_only = token_for(owner, team, scopes=("read",))
    body = assert_problem(call("POST", "/shares", read_only, json={"generations": [str(result.public_id)]}), 403)
    assert "“share”" in body["detail"]
    assert_problem(call("DELETE", f"/shares/{link.public_id}", read_only), 403)
    link.refresh_from_db()
    assert link.revoked_at is None
    assert call("GET", "/shares", read_only).status_code == 200
    assert_problem(call("GET", "/shares", token_for(owner, team, scopes=("generate",))), 403)
