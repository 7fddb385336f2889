"""Personal access tokens: made once, stored as a hash, found only while they should work."""

import hashlib
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import services as membership_services
from accounts.models import Membership, Role
from accounts.tokens import services
from accounts.tokens.models import AccessToken, Scope
from accounts.tokens.services import TokenError, create_token, find_token, revoke_token


def test_the_secret_is_prefixed_shown_once_and_only_its_sha256_is_stored(mate_m):
    token, secret = create_token(mate_m, "CI", [Scope.READ, Scope.GENERATE])
    assert re.fullmatch(r"kiln_pat_[A-Za-z0-9_-]{43}", secret)
    assert token.prefix == secret[:16] and token.prefix.startswith("kiln_pat_")
    row = AccessToken.objects.filter(pk=token.pk).values().get()
    assert row["token_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    # Nothing read back from the database holds the secret, nor the part after the prefix.
    assert not any(secret[16:] in str(value) for value in row.values())
    assert token.scopes == ["generate", "read"]
    # Two tokens never share a secret.
    assert create_token(mate_m, "CI 2", [Scope.READ])[1] != secret


def test_a_live_token_is_found_with_its_member_team_and_wallet(mate_m):
    token, secret = create_token(mate_m, "bot", [Scope.READ])
    found = find_token(secret)
    assert found.pk == token.pk
    assert found.membership == mate_m and found.membership.team == mate_m.team
    assert found.scopes == ["read"]
    with CaptureQueriesContext(connection) as queries:  # the team, user and wallet came with it
        _ = found.membership.team.name, found.membership.user.email, found.membership.wallet.available
    assert len(queries) == 0


@pytest.mark.parametrize("secret", ["", "kiln_pat_", "kiln_pat_short", "Bearer kiln_pat_" + "a" * 43,
                                    "ghp_" + "a" * 43, "kiln_pat_" + "a" * 44, "kiln_pat_" + "a" * 42 + "!",
                                    "kiln_pat_" + "a" * 43, None])
def test_a_malformed_or_unknown_secret_finds_nothing(mate_m, secret):
    create_token(mate_m, "bot", [Scope.READ])
    assert find_token(secret) is None


def test_a_revoked_token_is_not_found(mate_m):
    token, secret = create_token(mate_m, "bot", [Scope.READ])
    assert revoke_token(token, actor=mate_m) is True
    assert find_token(secret) is None
    assert revoke_token(token, actor=mate_m) is False  # already revoked: nothing changes
    token.refresh_from_db()
    assert token.revoked_by == mate_m.user and not token.is_live


def test_an_expired_token_is_not_found(mate_m):
    token, secret = create_token(mate_m, "bot", [Scope.READ], expires_at=timezone.now() + timedelta(days=1))
    assert find_token(secret) is not None
    AccessToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert find_token(secret) is None
    token.refresh_from_db()
    assert token.is_expired and not token.is_live


def test_a_removed_member_s_token_stops_at_once_and_stays_stopped_when_they_come_back(team, owner_m, mate_m):
    token, secret = create_token(mate_m, "bot", [Scope.READ])
    membership_services.remove_member(mate_m, actor=owner_m)
    assert find_token(secret) is None
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == owner_m.user
    # Back in the team (the invitation flow clears removed_at): the old token stays dead.
    Membership.objects.filter(pk=mate_m.pk).update(removed_at=None)
    assert find_token(secret) is None


def test_a_removed_member_s_token_is_refused_even_without_the_service(mate_m):
    """The membership is checked at every use, not only through remove_member's revocation."""
    _, secret = create_token(mate_m, "bot", [Scope.READ])
    Membership.objects.filter(pk=mate_m.pk).update(removed_at=timezone.now())
    assert find_token(secret) is None


def test_a_demoted_member_s_token_acts_with_the_new_role(team, owner_m, admin_m):
    _, secret = create_token(admin_m, "bot", [Scope.READ])
    assert find_token(secret).membership.is_manager
    membership_services.change_role(admin_m, Role.MEMBER, actor=owner_m)
    assert find_token(secret).membership.role == Role.MEMBER


def test_an_inactive_user_s_token_is_not_found(mate_m):
    _, secret = create_token(mate_m, "bot", [Scope.READ])
    mate_m.user.is_active = False
    mate_m.user.save(update_fields=["is_active"])
    assert find_token(secret) is None


def test_last_used_is_written_at_most_once_a_minute(mate_m, monkeypatch):
    token, secret = create_token(mate_m, "bot", [Scope.READ])
    assert token.last_used_at is None
    start = timezone.now()
    monkeypatch.setattr(services.timezone, "now", lambda: start)
    assert find_token(secret).last_used_at == start
    monkeypatch.setattr(services.timezone, "now", lambda: start + timedelta(seconds=59))
    with CaptureQueriesContext(connection) as queries:
        find_token(secret)
    assert len(queries) == 1  # the read, no write
    token.refresh_from_db()
    assert token.last_used_at == start
    monkeypatch.setattr(services.timezone, "now", lambda: start + timedelta(seconds=61))
    find_token(secret)
    token.refresh_from_db()
    assert token.last_used_at == start + timedelta(seconds=61)


def test_the_owner_of_a_token_and_the_team_s_owners_and_admins_may_revoke_it(owner_m, admin_m, mate_m):
    for actor in (mate_m, admin_m, owner_m):
        token, secret = create_token(mate_m, f"by {actor.role}", [Scope.READ])
        assert revoke_token(token, actor=actor) is True
        token.refresh_from_db()
        assert token.revoked_by == actor.user and token.revoked_at is not None
        assert find_token(secret) is None


def test_another_member_or_another_team_s_admin_may_not_revoke(team, owner_m, mate_m, outsider_m):
    from tests.conftest import make_member

    other_member = Membership.objects.get(user=make_member(team, "third@acme.test"))
    token, secret = create_token(owner_m, "owner's", [Scope.READ])
    for actor in (mate_m, other_member, outsider_m):
        with pytest.raises(PermissionError):
            revoke_token(token, actor=actor)
    assert find_token(secret) is not None
    # An admin of another team who is also a plain member here is still refused.
    mates_token, _ = create_token(mate_m, "mate's", [Scope.READ])
    with pytest.raises(PermissionError):
        revoke_token(mates_token, actor=outsider_m)


@pytest.mark.parametrize(("name", "scopes", "expires", "message"), [
    ("", ["read"], None, "name"),
    ("   ", ["read"], None, "name"),
    ("x" * 101, ["read"], None, "at most 100"),
    ("CI", [], None, "at least one scope"),
    ("CI", None, None, "at least one scope"),
    ("CI", ["read", "admin"], None, "Unknown scope “admin”"),
    ("CI", ["read"], timedelta(seconds=-1), "in the past"),
])
def test_a_token_made_wrong_is_refused_with_a_reason_and_nothing_is_written(mate_m, name, scopes, expires, message):
    expires_at = timezone.now() + expires if expires is not None else None
    with pytest.raises(TokenError, match=message):
        create_token(mate_m, name, scopes, expires_at=expires_at)
    assert not AccessToken.objects.exists()


def test_a_removed_member_cannot_make_a_token(mate_m):
    Membership.objects.filter(pk=mate_m.pk).update(removed_at=timezone.now())
    mate_m.refresh_from_db()
    with pytest.raises(TokenError, match="no longer a member"):
        create_token(mate_m, "CI", ["read"])


def test_the_lists_keep_to_the_member_and_the_team(team, owner_m, mate_m, outsider_m):
    mine, _ = create_token(mate_m, "mine", ["read"])
    owners, _ = create_token(owner_m, "owner's", ["read"])
    create_token(outsider_m, "theirs", ["read"])
    assert list(services.tokens_of(mate_m)) == [mine]
    assert set(services.team_tokens(team)) == {mine, owners}
    Membership.objects.filter(pk=mate_m.pk).update(removed_at=timezone.now())
    assert list(services.team_tokens(team)) == [owners]
