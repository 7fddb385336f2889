"""Signing in and out, and passwords."""

from django.test import Client

from tests.conftest import PASSWORD

NEW_PASSWORD = "a much newer passphrase 77"


def test_a_member_signs_in_with_email_and_password(owner):
    client = Client()
    response = client.post("/accounts/login/", {"username": "OWNER@acme.test", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/accounts/team/").status_code == 200


def test_a_wrong_password_is_refused_with_a_message(owner):
    response = Client().post("/accounts/login/", {"username": owner.email, "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct email and password" in response.content.decode()


def test_the_sign_in_form_needs_a_csrf_token(owner):
    client = Client(enforce_csrf_checks=True)
    assert client.post("/accounts/login/", {"username": owner.email, "password": PASSWORD}).status_code == 403


def test_sign_in_goes_back_to_the_page_asked_for_but_never_off_site(owner):
    response = Client().post("/accounts/login/?next=/accounts/team/",
                             {"username": owner.email, "password": PASSWORD, "next": "/accounts/team/"})
    assert response["Location"] == "/accounts/team/"
    response = Client().post("/accounts/login/", {"username": owner.email, "password": PASSWORD,
                                                  "next": "https://evil.test/"})
    assert response["Location"] == "/"


def test_a_signed_in_member_is_not_shown_the_sign_in_form(owner_client):
    assert owner_client.get("/accounts/login/").status_code == 302


def test_sign_out_is_a_post_from_the_header(owner_client):
    page = owner_client.get("/accounts/team/").content.decode()
    assert 'action="/accounts/logout/"' in page
    assert owner_client.get("/accounts/logout/").status_code == 405
    response = owner_client.post("/accounts/logout/")
    assert response.status_code == 302
    assert owner_client.get("/accounts/team/").status_code == 302


def test_sign_out_needs_a_csrf_token(csrf_client):
    assert csrf_client.post("/accounts/logout/").status_code == 403
    assert csrf_client.get("/accounts/team/").status_code == 200


def test_a_member_changes_their_password(owner_client, owner):
    response = owner_client.post("/accounts/password/", {
        "old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, follow=True)
    assert "Your password has been changed." in response.content.decode()
    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)
    assert owner_client.get("/accounts/team/").status_code == 200  # still signed in


def test_a_wrong_old_password_changes_nothing(owner_client, owner):
    response = owner_client.post("/accounts/password/", {
        "old_password": "nope", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert "Your old password was entered incorrectly" in response.content.decode()
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_changing_the_password_needs_a_csrf_token(csrf_client, owner):
    response = csrf_client.post("/accounts/password/", {
        "old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 403
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_a_visitor_must_sign_in_to_change_a_password(client, db):
    assert client.get("/accounts/password/").status_code == 302


def test_a_forged_reset_link_does_nothing(owner):
    response = Client().get("/accounts/password/reset/MQ/abc-123/")
    assert "This link no longer works" in response.content.decode()
    assert "no-store" in response["Cache-Control"]
