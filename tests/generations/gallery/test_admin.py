"""The admin's generation pages: searchable, filterable, read-mostly; a delete takes the files too."""

from django.urls import reverse

from accounts.models import User
from generations.models import Generation, Status
from tests.conftest import PASSWORD

from .conftest import add_media, make_generation


def superuser_client(client):
    admin = User.objects.create_superuser("root@kiln.test", PASSWORD)
    client.force_login(admin)
    return client


def test_the_admin_lists_searches_and_filters_generations(client, team, owner):
    lake = make_generation(team, owner, prompt="mountain lake", status=Status.FAILED, needs_review=True)
    make_generation(team, owner, prompt="city at night")
    c = superuser_client(client)
    changelist = reverse("admin:generations_generation_changelist")
    assert c.get(changelist).status_code == 200
    found = c.get(changelist, {"q": "lake"}).text
    assert str(lake.public_id) in found and "city at night" not in found
    by_id = c.get(changelist, {"q": str(lake.public_id)}).text
    assert "mountain lake" in by_id and "city at night" not in by_id
    review = c.get(changelist, {"needs_review__exact": "1", "status__exact": "failed"}).text
    assert "mountain lake" in review and "city at night" not in review


def test_the_admin_change_page_is_read_mostly(client, team, owner):
    g = make_generation(team, owner, prompt="mountain lake", raw_payload={"status": "done"})
    add_media(g)
    c = superuser_client(client)
    url = reverse("admin:generations_generation_change", args=[g.pk])
    page = c.get(url)
    assert page.status_code == 200 and "mountain lake" in page.text
    assert 'name="archived"' in page.text and 'name="status"' not in page.text and 'name="error"' not in page.text
    c.post(url, {"archived": "on", "media-TOTAL_FORMS": "1", "media-INITIAL_FORMS": "1",
                 "media-MIN_NUM_FORMS": "0", "media-MAX_NUM_FORMS": "1000",
                 "media-0-id": str(g.media.get().pk), "media-0-generation": str(g.pk)})
    g.refresh_from_db()
    assert g.archived


def test_deleting_in_the_admin_removes_the_files(client, team, owner, django_capture_on_commit_callbacks):
    g = make_generation(team, owner)
    media = add_media(g)
    storage, name = media.file.storage, media.file.name
    c = superuser_client(client)
    with django_capture_on_commit_callbacks(execute=True):
        response = c.post(reverse("admin:generations_generation_delete", args=[g.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Generation.objects.filter(pk=g.pk).exists()
    assert not storage.exists(name)
