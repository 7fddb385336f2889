"""Every page that shows a secret once says ``Cache-Control: no-store``: no proxy, browser
disk cache or back button keeps the only copy of a one-time link."""

import re

from django.urls import reverse

from accounts.models import User
from accounts.services import set_password_path
from project.cache_headers import no_store, shows_a_secret_once
from tests.share.conftest import image_result  # noqa: F401 (a fixture)


def test_the_page_with_a_new_members_set_password_link_is_not_stored(owner_client, team):
    response = owner_client.post("/accounts/team/members/add/", {"email": "newbie@acme.test", "role": "member"})
    assert response.status_code == 200 and "/accounts/set-password/" in response.content.decode()
    assert "no-store" in response["Cache-Control"]


def test_the_page_with_a_new_share_link_is_not_stored(owner_client, image_result):  # noqa: F811
    response = owner_client.post(reverse("generations:share_create", args=[image_result.public_id]),
                                 {"title": "Dusk", "expiry": "never"})
    assert re.search(r"http://testserver/s/[A-Za-z0-9_-]{43}/", response.content.decode())
    assert "no-store" in response["Cache-Control"]


def test_the_set_password_page_the_link_opens_is_not_stored(client, team):
    user = User.objects.create_user("fresh@acme.test", None)
    response = client.get(set_password_path(user), follow=True)
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
