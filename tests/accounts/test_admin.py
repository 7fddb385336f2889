"""The Django admin for superusers: users by e-mail, teams, memberships, masked keys."""

import pytest

from accounts.models import Membership, Role, User
from generations.models import ProviderKey

CLEAR = "sk-admin-ClearValue-0123456789-K3Y9"


@pytest.fixture
def admin_client(client, db):
    superuser = User.objects.create_superuser("root@kiln.test", "pw-not-used-here-123")
    client.force_login(superuser)
    return client


@pytest.fixture
def key(team):
    key = ProviderKey(team=team, provider="shark", label="Main")
    key.set_api_key(CLEAR)
    key.save()
    return key


def test_the_key_list_and_form_show_only_the_last_four(admin_client, key):
    for url in ("/admin/generations/providerkey/", f"/admin/generations/providerkey/{key.pk}/change/"):
        body = admin_client.get(url).content.decode()
        assert "••••K3Y9" in body
        assert CLEAR not in body
        assert key.api_key_encrypted not in body
        assert "api_key_encrypted" not in body


def test_a_new_key_entered_in_the_admin_is_encrypted(admin_client, team):
    response = admin_client.post("/admin/generations/providerkey/add/", {
        "team": team.pk, "provider": "sealink", "label": "Ops", "new_api_key": CLEAR,
        "base_url": "", "models_override": "", "is_active": "on", "last_error": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    key = ProviderKey.objects.get(label="Ops")
    assert key.get_api_key() == CLEAR
    assert key.api_key_last4 == "K3Y9"
    assert key.created_by.email == "root@kiln.test"


def test_saving_a_key_without_a_new_value_keeps_the_old_one(admin_client, key, team):
    response = admin_client.post(f"/admin/generations/providerkey/{key.pk}/change/", {
        "team": team.pk, "provider": "shark", "label": "Renamed", "new_api_key": "",
        "base_url": "https://api.example.com", "models_override": "", "is_active": "on", "last_error": ""})
    assert response.status_code == 302
    key.refresh_from_db()
    assert (key.label, key.get_api_key()) == ("Renamed", CLEAR)


def test_the_admin_refuses_a_malformed_base_url(admin_client, key, team):
    response = admin_client.post(f"/admin/generations/providerkey/{key.pk}/change/", {
        "team": team.pk, "provider": "shark", "label": "Main", "new_api_key": "",
        "base_url": "javascript:alert(1)", "models_override": "", "is_active": "on", "last_error": ""})
    assert response.status_code == 200
    assert "is not an http(s) URL" in response.content.decode()


def test_the_key_search_and_filters_work(admin_client, key):
    assert "Main" in admin_client.get("/admin/generations/providerkey/?q=acme").content.decode()
    assert "Main" not in admin_client.get("/admin/generations/providerkey/?is_active__exact=0").content.decode()


def test_users_are_listed_and_created_by_email(admin_client, owner):
    assert owner.email in admin_client.get("/admin/accounts/user/?q=owner").content.decode()
    response = admin_client.post("/admin/accounts/user/add/", {
        "email": "Someone@Kiln.TEST", "usable_password": "false", "password1": "", "password2": ""})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert User.objects.filter(email="someone@kiln.test").exists()


def test_teams_and_memberships_have_their_admin_pages(admin_client, owner, teammate, team):
    assert "Acme Studio" in admin_client.get("/admin/accounts/team/?q=acme").content.decode()
    body = admin_client.get("/admin/accounts/membership/?role__exact=owner").content.decode()
    assert owner.email in body and teammate.email not in body


def test_a_membership_added_in_the_admin_gets_a_wallet(admin_client, team, outsider):
    response = admin_client.post("/admin/accounts/membership/add/", {
        "team": team.pk, "user": outsider.pk, "role": "member", "removed_at_0": "", "removed_at_1": ""})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Membership.objects.get(team=team, user=outsider).wallet.available == 0


def test_the_admin_keeps_the_last_owner(admin_client, owner, team):
    membership = Membership.objects.get(team=team, user=owner)
    response = admin_client.post(f"/admin/accounts/membership/{membership.pk}/change/", {
        "role": "member", "removed_at_0": "", "removed_at_1": ""})
    assert "A team must keep at least one owner" in response.content.decode()
    membership.refresh_from_db()
    assert membership.role == Role.OWNER
    assert admin_client.post(f"/admin/accounts/membership/{membership.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_the_admin_says_it_is_kiln(admin_client):
    body = admin_client.get("/admin/").content.decode()
    assert "<title>Teams, provider keys and credits | Kiln admin</title>" in body
    assert "Kiln administration" in body and "Django administration" not in body
