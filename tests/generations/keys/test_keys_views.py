"""The team's provider keys page: owners and admins only, and the clear key never comes back."""

import pytest

from accounts.models import Role
from generations.keys.models import ProviderKey
from generations.models import Generation, Prompt, Status
from tests.conftest import make_member

CLEAR = "sk-test-SuperSecretValue-9f8e7d6c5b4a-Q7Z9"


def _key(team, *, provider="shark", label="Main", clear=CLEAR, **extra):
    key = ProviderKey(team=team, provider=provider, label=label, **extra)
    key.set_api_key(clear)
    key.save()
    return key


def _form(**overrides):
    data = {"provider": "shark", "label": "Production", "api_key": CLEAR, "base_url": "", "models_override": ""}
    data.update(overrides)
    return data


def assert_no_secret(response):
    body = response.content.decode()
    assert CLEAR not in body
    assert CLEAR[:-4] not in body


@pytest.fixture
def key(team, owner):
    return _key(team, created_by=owner, base_url="https://api.shark.example/v1")


@pytest.fixture
def rival_key(other_team, outsider):
    return _key(other_team, label="Rival main", clear="sk-rival-0000000000-RIVL")


# -- listing ----------------------------------------------------------------------

def test_an_owner_sees_the_teams_keys_masked(owner_client, key, rival_key):
    response = owner_client.get("/accounts/team/keys/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "Main" in body and "Shark AI" in body
    assert "••••Q7Z9" in body
    assert "https://api.shark.example/v1" in body
    assert "never" in body  # last used
    assert "Rival main" not in body and "RIVL" not in body
    assert_no_secret(response)
    assert key.api_key_encrypted not in body


def test_an_admin_manages_keys_too(client, team, key):
    client.force_login(make_member(team, "admin@acme.test", Role.ADMIN))
    assert client.get("/accounts/team/keys/").status_code == 200


def test_a_member_gets_403(teammate_client, key):
    response = teammate_client.get("/accounts/team/keys/")
    assert response.status_code == 403
    assert_no_secret(response)


def test_an_outsider_sees_only_their_own_teams_keys(outsider_client, key, rival_key):
    body = outsider_client.get("/accounts/team/keys/").content.decode()
    assert "Rival main" in body
    assert "••••Q7Z9" not in body


def test_the_last_error_is_shown_in_the_providers_words(owner_client, key):
    ProviderKey.objects.filter(pk=key.pk).update(last_error="Invalid API key provided.")
    assert "Invalid API key provided." in owner_client.get("/accounts/team/keys/").content.decode()


# -- adding ---------------------------------------------------------------------------

def test_adding_a_key_stores_it_encrypted_and_shows_only_the_last_four(owner_client, team, owner):
    response = owner_client.post("/accounts/team/keys/add/", _form(base_url="https://gw.example.com/v1",
                                                                  models_override="a/one\n\n b/two \n"), follow=True)
    assert response.status_code == 200
    assert_no_secret(response)
    assert "••••Q7Z9" in response.content.decode()
    key = ProviderKey.objects.get(team=team)
    assert key.get_api_key() == CLEAR
    assert CLEAR not in key.api_key_encrypted
    assert (key.provider, key.label, key.base_url, key.created_by) == ("shark", "Production", "https://gw.example.com/v1", owner)
    assert key.model_ids == ["a/one", "b/two"]


def test_the_key_field_is_a_password_input_that_is_never_filled_in(owner_client):
    body = owner_client.get("/accounts/team/keys/").content.decode()
    assert 'type="password" name="api_key"' in body
    assert 'name="api_key" value' not in body


@pytest.mark.parametrize(("overrides", "message"), [
    ({"base_url": "ftp://files.example.com/"}, "is not an http(s) URL"),
    ({"base_url": "not a url"}, "is not an http(s) URL"),
    ({"provider": "acme-ai"}, "Select a valid choice"),
    ({"api_key": ""}, "This field is required"),
    ({"api_key": "sk has spaces-Q7Z9"}, "must not contain spaces"),
    ({"label": ""}, "This field is required"),
])
def test_bad_input_is_a_400_that_names_the_problem_and_never_echoes_the_key(owner_client, team, overrides, message):
    response = owner_client.post("/accounts/team/keys/add/", _form(**overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert_no_secret(response)
    assert "Q7Z9" not in response.content.decode()
    assert not ProviderKey.objects.filter(team=team).exists()


def test_a_duplicate_label_is_a_400(owner_client, key):
    response = owner_client.post("/accounts/team/keys/add/", _form(label="Main"))
    assert response.status_code == 400
    assert "already has a Shark AI key labelled" in response.content.decode()
    assert_no_secret(response)


def test_a_member_cannot_add_keys(teammate_client, team):
    assert teammate_client.post("/accounts/team/keys/add/", _form()).status_code == 403
    assert not ProviderKey.objects.filter(team=team).exists()


def test_an_outsider_adds_keys_only_to_their_own_team(outsider_client, team, other_team):
    outsider_client.post("/accounts/team/keys/add/", _form())
    assert not ProviderKey.objects.filter(team=team).exists()
    assert ProviderKey.objects.filter(team=other_team).count() == 1


def test_adding_needs_a_csrf_token(csrf_client, team):
    assert csrf_client.post("/accounts/team/keys/add/", _form()).status_code == 403
    assert not ProviderKey.objects.filter(team=team).exists()


# -- disable, enable, delete -------------------------------------------------------------

def test_an_owner_disables_and_enables_a_key(owner_client, key):
    response = owner_client.post(f"/accounts/team/keys/{key.public_id}/active/", {"active": "0"}, follow=True)
    assert "is disabled" in response.content.decode()
    key.refresh_from_db()
    assert not key.is_active
    owner_client.post(f"/accounts/team/keys/{key.public_id}/active/", {"active": "1"})
    key.refresh_from_db()
    assert key.is_active


def test_a_bad_active_value_is_a_400(owner_client, key):
    assert owner_client.post(f"/accounts/team/keys/{key.public_id}/active/", {"active": "maybe"}).status_code == 400


def test_an_owner_deletes_a_key(owner_client, key):
    response = owner_client.post(f"/accounts/team/keys/{key.public_id}/delete/", follow=True)
    assert "deleted" in response.content.decode()
    assert not ProviderKey.objects.filter(pk=key.pk).exists()


def test_a_key_that_unfinished_generations_use_is_not_deleted(owner_client, team, owner, key):
    prompt = Prompt.objects.create(team=team, author=owner, text="a kiln")
    Generation.objects.create(team=team, author=owner, prompt=prompt, provider="shark", model="m", kind="image",
                              operation="text-to-image", provider_key=key, status=Status.RUNNING)
    response = owner_client.post(f"/accounts/team/keys/{key.public_id}/delete/", follow=True)
    assert "1 unfinished generation still uses this key" in response.content.decode()
    assert ProviderKey.objects.filter(pk=key.pk).exists()


def test_a_member_cannot_disable_or_delete(teammate_client, key):
    assert teammate_client.post(f"/accounts/team/keys/{key.public_id}/active/", {"active": "0"}).status_code == 403
    assert teammate_client.post(f"/accounts/team/keys/{key.public_id}/delete/").status_code == 403
    key.refresh_from_db()
    assert key.is_active


def test_an_outsider_cannot_touch_another_teams_key(outsider_client, key):
    assert outsider_client.post(f"/accounts/team/keys/{key.public_id}/active/", {"active": "0"}).status_code == 404
    assert outsider_client.post(f"/accounts/team/keys/{key.public_id}/delete/").status_code == 404
    key.refresh_from_db()
    assert key.is_active


def test_disabling_and_deleting_need_a_csrf_token(csrf_client, key):
    assert csrf_client.post(f"/accounts/team/keys/{key.public_id}/active/", {"active": "0"}).status_code == 403
    assert csrf_client.post(f"/accounts/team/keys/{key.public_id}/delete/").status_code == 403
    key.refresh_from_db()
    assert key.is_active


# -- a short key's mask ---------------------------------------------------------------

SHORT = "tok-Zq9X"  # 8 characters: "••••Zq9X" would show half of it


def test_a_short_key_is_masked_with_bullets_only_everywhere(owner_client, team, owner, monkeypatch):
    import io

    from django.core.management import call_command

    short = _key(team, label="Short", clear=SHORT)
    _key(team, label="Fifteen", clear="fifteen-chr-W8v")       # 15: still bullets only
    _key(team, label="Sixteen", clear="sixteen-chars-K4")      # 16: its last four
    assert short.get_api_key() == SHORT  # the key itself is kept whole, encrypted
    stored = dict(ProviderKey.objects.values_list("label", "api_key_last4"))
    assert stored == {"Short": "", "Fifteen": "", "Sixteen": "s-K4"}  # nothing of a short key in clear

    page = owner_client.get("/accounts/team/keys/").content.decode()
    out = io.StringIO()
    call_command("providerkeys", "list", "--team", "acme", stdout=out)
    root = make_member(team, "root@acme.test", Role.OWNER)
    root.is_staff = root.is_superuser = True
    root.save()
    owner_client.force_login(root)
    admin = owner_client.get("/admin/generations/providerkey/").content.decode()
    for shown in (page, out.getvalue(), admin, str(short)):
        assert "Zq9X" not in shown and "W8v" not in shown
        assert "••••••••" in shown
    for shown in (page, out.getvalue(), admin):
        assert "••••s-K4" in shown


def test_the_migration_forgets_the_tail_of_short_keys_saved_before(team):
    from django.apps import apps

    from generations.migrations import __name__ as package

    forget = __import__(f"{package}.0005_short_key_masks", fromlist=["forget_short_tails"]).forget_short_tails
    short = _key(team, label="Short", clear=SHORT)
    _key(team, label="Long")
    ProviderKey.objects.filter(pk=short.pk).update(api_key_last4=SHORT[-4:])  # as the old code stored it
    forget(apps, None)
    assert dict(ProviderKey.objects.values_list("label", "api_key_last4")) == {"Short": "", "Long": "Q7Z9"}


def test_a_403_is_logged_on_one_line_without_a_traceback(teammate_client, key, caplog):
    with caplog.at_level("WARNING", logger="django.request"):
        response = teammate_client.get("/accounts/team/keys/")
    assert response.status_code == 403
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.getMessage() == "Forbidden (Permission denied): /accounts/team/keys/"
    assert record.exc_info is None and "Traceback" not in caplog.text
