"""Password reset by e-mail, from the sign-in page (issue 14). The e-mail goes over SMTP to a
real server on loopback; the task that sends it runs eagerly here (a worker in production)."""

from datetime import datetime
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.test import Client

from tests.brokers import celery_conf
from tests.conftest import PASSWORD

NEW_PASSWORD = "reset to something new 314"


@pytest.fixture(autouse=True)
def _eager_tasks(settings):
    from django.core.cache import cache

    cache.clear()  # the rate-limit counters
    with celery_conf(task_always_eager=True):
        yield


def _ask(client, email, ip="10.0.0.1"):
    return client.post("/accounts/password/reset/", {"email": email}, REMOTE_ADDR=ip)


def test_the_sign_in_page_offers_a_reset_by_e_mail(db):
    assert 'href="/accounts/password/reset/"' in Client().get("/accounts/login/").content.decode()


def test_a_member_resets_their_password_through_the_e_mailed_link_once(mailbox, owner):
    client = Client()
    response = _ask(client, "OWNER@acme.test")
    assert response.status_code == 302 and response["Location"] == "/accounts/password/reset/sent/"
    message = mailbox.wait(1)[0]
    assert message["To"] == owner.email and message["Subject"] == "Reset your Kiln password"
    assert owner.email in mailbox.text(message) and "60 minutes" in mailbox.text(message)
    link = urlsplit(mailbox.link(message, "/accounts/password/reset/")).path
    assert link in mailbox.html(message)

    form_url = client.get(link)["Location"]  # Django moves the token into the session
    page = client.get(form_url)
    assert "Choose your password" in page.content.decode() and "no-store" in page["Cache-Control"]
    done = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, follow=True)
    assert "Your password is set" in done.content.decode()
    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)
    assert "_auth_user_id" not in client.session  # not signed in by the link: the sign-in form (and axes) is the way

    again = Client().get(link, follow=True)
    assert "This link no longer works" in again.content.decode()


def test_the_answer_is_the_same_whether_or_not_the_address_has_an_account(mailbox, owner):
    known, unknown = _ask(Client(), owner.email), _ask(Client(), "nobody@acme.test")
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    page = Client().get(known["Location"]).content.decode()
    assert "If an account has that address" in page
    mailbox.wait(1)
    assert [m["To"] for m in mailbox.messages] == [owner.email]  # only the real account got one


def test_the_reset_link_expires(mailbox, owner, settings, monkeypatch):
    settings.PASSWORD_RESET_TIMEOUT = 600
    _ask(Client(), owner.email)
    link = urlsplit(mailbox.link(mailbox.wait(1)[0], "/accounts/password/reset/")).path
    later = default_token_generator._now().timestamp() + 601
    # Django's token clock, moved past the timeout (the only clock the link depends on).
    monkeypatch.setattr(type(default_token_generator), "_now", lambda self: datetime.fromtimestamp(later))
    assert "This link no longer works" in Client().get(link, follow=True).content.decode()


def test_reset_requests_are_throttled_the_same_for_every_address(mailbox, owner, settings):
    settings.KILN_PASSWORD_RESETS_PER_HOUR = 2
    for email in (owner.email, "nobody@acme.test"):
        answers = [_ask(Client(), email, ip=f"10.0.1.{n}").status_code for n in range(3)]
        assert answers == [302, 302, 429], email
    assert len(mailbox.wait(2)) == 2  # the third request for the owner sent nothing
    # Per client address too: many addresses from one client.
    answers = [_ask(Client(), f"a{n}@acme.test", ip="10.0.2.1").status_code for n in range(9)]
    assert answers[:8] == [302] * 8 and answers[8] == 429


def test_a_reset_does_not_lift_the_sign_in_lock_out(mailbox, owner, settings):
    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(2):
        Client().post("/accounts/login/", {"username": owner.email, "password": "wrong"}, REMOTE_ADDR="10.0.3.1")
    _ask(Client(), owner.email)
    client = Client()
    form_url = client.get(urlsplit(mailbox.link(mailbox.wait(1)[0], "/accounts/password/reset/")).path)["Location"]
    client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    locked = Client().post("/accounts/login/", {"username": owner.email, "password": NEW_PASSWORD},
                           REMOTE_ADDR="10.0.3.1")
    assert locked.status_code == 429
    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD) and not owner.check_password(PASSWORD)


def test_asking_for_a_reset_needs_a_csrf_token(mailbox, owner):
    assert Client(enforce_csrf_checks=True).post("/accounts/password/reset/", {"email": owner.email}).status_code == 403
    assert mailbox.messages == []
