"""Every API path that names an object, walked from the served OpenAPI document: another
team's object is a 404 problem, the caller's own is not; and the roles the pages enforce hold.

Walking the document (rather than a list written here) means a path added later is checked
without anyone remembering to: a path parameter this test cannot fill fails it.
"""

from __future__ import annotations

import httpx
import pytest

from accounts.models import Membership
from generations.share.services import create_share
from tests.generations.api.test_tokens_api import assert_problem
from tests.generations.gallery.conftest import add_media, make_generation

pytestmark = pytest.mark.django_db(transaction=True)


def objects_of(team, author):
    generation = make_generation(team, author, prompt="a lighthouse")
    media = add_media(generation)
    membership = Membership.objects.get(user=author, team=team)
    share, _token = create_share(membership, [generation])
    return {"generation": generation, "media": media, "share": share}


def fill(path: str, objects) -> str:
    """The path with its parameter filled by the object it names (by the path's first segment)."""
    kind = path.removeprefix("/api/v1/").split("/")[0]
    ids = {"generations": objects["generation"].public_id, "media": objects["media"].public_id,
           "shares": objects["share"].public_id}
    if "{" not in path:
        return path
    assert kind in ids, f"{path}: this test does not know what object its parameter names; teach it"
    head, _, rest = path.partition("{")
    return head + str(ids[kind]) + rest.partition("}")[2]


def operations_with_ids(api_url):
    schema = httpx.get(f"{api_url}/openapi.json").json()
    return [(method.upper(), path) for path, ops in schema["paths"].items() for method in ops if "{" in path]


def test_every_path_naming_an_object_is_404_for_another_team_s_and_not_for_ours(
        call, token_for, api_url, owner, team, outsider, other_team):
    ours, theirs = objects_of(team, owner), objects_of(other_team, outsider)
    token = token_for(owner, team)
    operations = operations_with_ids(api_url)
    assert len(operations) >= 10
    for method, path in operations:
        where = f"{method} {path}"
        answer = call(method, fill(path, theirs).removeprefix("/api/v1"), token, json={})
        body = assert_problem(answer, 404)
        assert str(theirs["generation"].public_id) not in body["detail"], where
        own = call(method, fill(path, ours).removeprefix("/api/v1"), token, json={})
        assert own.status_code != 404, f"{where} on our own object: {own.status_code} {own.text[:200]}"
    # Nothing of theirs moved.
    theirs["generation"].refresh_from_db()
    theirs["share"].refresh_from_db()
    assert not theirs["generation"].archived and theirs["share"].revoked_at is None


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/generations/{id}/archive"),
    ("POST", "/generations/{id}/cancel"),
    ("GET", "/usage"),
])
def test_a_member_is_refused_what_only_the_author_or_an_admin_may_do(
        call, token_for, owner, teammate, team, method, path):
    owners = make_generation(team, owner, prompt="the owner's job", status="running")
    answer = call(method, path.replace("{id}", str(owners.public_id)), token_for(teammate, team), json={})
    assert_problem(answer, 403)
    owners.refresh_from_db()
    assert not owners.archived and owners.status == "running"
