"""Found in review of the OpenID Connect sign-in: an address the provider gives to someone else,
the break-glass link when the provider refuses Kiln, and a recheck already in flight."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import User
from accounts.oidc import services
from accounts.oidc.adapter import SESSION_CHECKED
from accounts.oidc.models import Identity
from tests.accounts.oidc.conftest import CLIENT_ID, CLIENT_SECRET
from tests.accounts.oidc.test_sign_in import signed_in_as
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_an_address_the_provider_gives_to_someone_else_does_not_open_the_first_persons_account(
        oidc, client, sign_in_via_idp):
    oidc.person("alice@acme.test")
    sign_in_via_idp(Client(), "alice@acme.test")
    alice = User.objects.get(email="alice@acme.test")
    # The company renames Alice's address at the provider and hands the old one to a newcomer
    # (another person there: another subject).
    oidc.rename("alice@acme.test", "alice.smith@acme.test")
    oidc.person("alice@acme.test")

    response, _ = sign_in_via_idp(client, "alice@acme.test")
    assert response.status_code == 403 and b"already linked to someone else" in response.content
    assert signed_in_as(client) is None
    assert Identity.objects.filter(user=alice).count() == 1
    # Alice herself still signs in (her subject), under her new address.
    again = Client()
    sign_in_via_idp(again, "alice.smith@acme.test")
    assert signed_in_as(again) == alice


def test_break_glass_holds_when_the_provider_refuses_kiln(oidc, settings, capsys, sign_in_via_idp):
    settings.KILN_PASSWORD_LOGIN = False
    root = User.objects.create_superuser("root@acme.test", PASSWORD)
    oidc.person(root.email)
    sign_in_via_idp(Client(), root.email)  # the superuser has signed in through the provider before
    Identity.objects.filter(user=root).update(confirmed_at=timezone.now() - timedelta(hours=1))
    with _refusing(oidc):
        call_command("breakglass", root.email, base_url="http://testserver")
        path = capsys.readouterr().out.strip().removeprefix("http://testserver")
        client = Client()
        assert client.post(path).status_code == 302 and signed_in_as(client) == root
        # The operator is in to fix things: the admin opens, and stays open.
        assert client.get("/admin/").status_code == 200
        assert client.get("/admin/accounts/identity/").status_code == 200
        assert signed_in_as(client) == root


class _refusing:
    """The provider no longer takes Kiln's client secret (it expired, as Entra's do)."""

    def __init__(self, idp):
        self.idp = idp
        self.uris = ["http://testserver/accounts/oidc/idp/login/callback/"]

    def __enter__(self):
        self.idp.client(CLIENT_ID, "a-secret-kiln-does-not-have-" + "x" * 20, self.uris)

    def __exit__(self, *exc):
        self.idp.client(CLIENT_ID, CLIENT_SECRET, self.uris)


def test_a_session_that_finds_the_recheck_in_flight_asks_again_soon_not_a_whole_bound_later(
        oidc, sign_in_via_idp, teammate, settings):
    settings.KILN_OIDC_RECHECK_SECONDS = 900
    oidc.person(teammate.email)
    laptop = Client()
    sign_in_via_idp(laptop, teammate.email)
    identity = Identity.objects.get(user=teammate)
    oidc.disable(teammate.email)
    Identity.objects.filter(pk=identity.pk).update(confirmed_at=timezone.now() - timedelta(hours=1))
    session = laptop.session
    session[SESSION_CHECKED] = 0
    session.save()

    # A request from another of their sessions (a phone, a script) claims the recheck just
    # before the laptop's does, and is refused by the provider.
    claimed = {}

    def phone_first(execute, sql, params, many, context):
        if not claimed and sql.startswith('UPDATE "accounts_identity"'):
            claimed["phone"] = None
            claimed["phone"] = services.recheck(teammate)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(phone_first):
        assert laptop.get("/gallery/").status_code == 200  # the old word holds while the phone asks
    assert claimed["phone"].problem  # the phone's recheck was refused
    # 31 seconds later (RETRY_SECONDS), not a whole bound later, the laptop is signed out too.
    session = laptop.session
    session[SESSION_CHECKED] -= services.RETRY_SECONDS + 1
    session.save()
    response = laptop.get("/gallery/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert signed_in_as(laptop) is None


@pytest.mark.parametrize(("how", "why"), [({"nonce": "minted-for-another-sign-in"}, "nonce does not match"),
                                          ({"foreign_key": True}, "InvalidSignatureError")],
                         ids=["nonce", "signature"])
def test_an_id_token_with_another_nonce_or_signed_by_another_key_is_refused(oidc, client, sign_in_via_idp, caplog,
                                                                            how, why):
    oidc.person("token@acme.test")
    oidc.misbehave(**how)
    response, _ = sign_in_via_idp(client, "token@acme.test")
    assert response.status_code == 400 and b"did not complete" in response.content
    assert why in caplog.text  # refused for that reason, not another
    assert signed_in_as(client) is None
    assert not User.objects.filter(email="token@acme.test").exists()
