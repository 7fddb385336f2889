"""Every page that shows a secret once says ``Cache-Control: no-store``: no proxy, browser
disk cache or back button keeps the only copy of a one-time link."""

import re

from django.urls import reverse

from accounts import invitations
from accounts.models import Role
from project.cache_headers import no_store, shows_a_secret_once
from tests.generations.share.conftest import image_result  # noqa: F401 (a fixture)


def test_the_page_an_invitation_link_opens_is_not_stored(client, team, mailbox):
    """The link carries the invitation's token; the page it opens (choose a password) too."""
    sent = invitations.invite(team, "newbie@acme.test", Role.MEMBER, base_url="http://testserver")
    response = client.get(sent.link.removeprefix("http://testserver"))
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]


def test_the_page_with_a_new_share_link_is_not_stored(owner_client, image_result):  # noqa: F811
    response = owner_client.post(reverse("generations:share_create", args=[image_result.public_id]),
                                 {"title": "Dusk", "expiry": "never"})
    assert re.search(r"http://testserver/s/[A-Za-z0-9_-]{43}/", response.content.decode())
    assert "no-store" in response["Cache-Control"]


def test_the_password_reset_page_the_e_mailed_link_opens_is_not_stored(client, teammate):
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    uid, token = urlsafe_base64_encode(force_bytes(teammate.pk)), default_token_generator.make_token(teammate)
    response = client.get(reverse("accounts:password_reset_confirm", args=[uid, token]), follow=True)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]


def test_the_helpers_keep_what_a_view_already_said(rf):
    from django.http import HttpResponse

    @shows_a_secret_once
    def view(request):
        response = HttpResponse("token")
        response["Cache-Control"] = "private"
        return response

    assert sorted(view(rf.get("/"))["Cache-Control"].split(", ")) == ["no-store", "private"]
    assert no_store(HttpResponse())["Cache-Control"] == "no-store"
