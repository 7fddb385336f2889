"""AccessToken in the Django admin: read-only, no secret and no hash, a revoke action."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.utils import timezone

from accounts.models import Membership, User
from accounts.tokens.models import AccessToken
from accounts.tokens.services import create_token, find_token

LIST = "/admin/accounts/accesstoken/"


@pytest.fixture
def root_client(client, db):
    client.force_login(User.objects.create_superuser("root@kiln.test", "pw-not-used-here-123"))
    return client


def test_the_list_and_the_page_show_the_prefix_but_neither_secret_nor_hash(root_client, mate_m):
    token, secret = create_token(mate_m, "CI renders", ["read", "generate"])
    for url in (LIST, f"{LIST}{token.pk}/change/", f"{LIST}?q={token.prefix}"):
        body = root_client.get(url).content.decode()
        assert "CI renders" in body and f"{token.prefix}…" in body and "mate@acme.test" in body
        assert secret[16:] not in body and token.token_hash not in body and "token_hash" not in body
    page = root_client.get(f"{LIST}{token.pk}/change/").content.decode()
    assert 'name="_save"' not in page and 'name="name"' not in page  # nothing to edit
    assert root_client.get(f"{LIST}add/").status_code == 403


def test_the_revoke_action_stops_the_tokens_and_records_who(root_client, mate_m):
    a, secret_a = create_token(mate_m, "a", ["read"])
    b, secret_b = create_token(mate_m, "b", ["read"])
    _, secret_keep = create_token(mate_m, "keep", ["read"])
    response = root_client.post(LIST, {"action": "revoke_selected", ACTION_CHECKBOX_NAME: [a.pk, b.pk]}, follow=True)
    assert "Revoked 2 tokens" in response.content.decode()
    assert find_token(secret_a) is None and find_token(secret_b) is None and find_token(secret_keep) is not None
    assert set(AccessToken.objects.filter(revoked_by__email="root@kiln.test").values_list("name", flat=True)) == {"a", "b"}
    assert root_client.get(f"{LIST}?state=revoked").context["cl"].result_count == 2
    assert root_client.get(f"{LIST}?state=live").context["cl"].result_count == 1


def test_removing_a_member_in_the_admin_revokes_their_tokens(root_client, mate_m):
    token, secret = create_token(mate_m, "bot", ["read"])
    url = f"/admin/accounts/membership/{mate_m.pk}/change/"
    response = root_client.post(url, {"role": mate_m.role, "removed_at_0": timezone.localdate().isoformat(),
                                      "removed_at_1": "00:00:00"})
    assert response.status_code == 302, response.content.decode()[:2000]
    Membership.objects.filter(pk=mate_m.pk).update(removed_at=None)  # added again
    assert find_token(secret) is None
    token.refresh_from_db()
    assert token.revoked_by.email == "root@kiln.test"
