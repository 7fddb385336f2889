"""The studio offers the team's registered Sealink templates: a picker, the chosen one's
description, a field per variable; the request carries ``template_id`` and ``variables`` as
the Sealink adapter takes them. An unregistered id can still be typed. And a job that failed
because of what it asked is edited in the studio ("Edit and retry"), never re-sent as it is."""

import pytest
from django.urls import reverse

from accounts.credits.models import LedgerEntry, Wallet
from generations.models import ErrorKind, Generation, Prompt, Status
from tests.generations.prompt_templates.test_templates_views import make_template

T2V = "sealink:wan2.6-t2v"
MODE = "template-to-video"
HX = {"HX-Request": "true"}


@pytest.fixture
def sealink(team, sandbox_key):
    return sandbox_key(team, "sealink")


@pytest.fixture
def sunset(team):
    return make_template(team)


def studio(client, **query):
    return client.get(reverse("generations:studio"), {"model": T2V, "operation": MODE, **query})


def post(client, **fields):
    import uuid

    data = {"model": T2V, "operation": MODE, "prompt": "", "idempotency_key": uuid.uuid4().hex, "size": "1280x720",
            "duration": "5", "n": "1", **fields}
    return client.post(reverse("generations:generate"), data, headers=HX)


def test_the_studio_offers_the_teams_templates_with_a_field_per_variable(teammate_client, sealink, sunset, other_team):
    make_template(other_team, template_id="tpl_rival", name="Rival secret")
    page = studio(teammate_client).content.decode()
    assert 'name="template"' in page and ">Sunset pan<" in page and "Another template id (type it)" in page
    assert "A serene place at sunset." in page  # its description
    assert 'name="var_place"' in page and 'name="var_mood"' in page
    assert "The place" in page  # a variable's hint
    assert 'name="template_id"' not in page and 'name="variables"' not in page
    assert "Rival secret" not in page and "tpl_rival" not in page
    assert "Manage the team's templates" not in page  # a member uses them, an admin manages them


def test_picking_one_and_filling_it_sends_what_sealink_expects(teammate_client, sealink, sunset):
    response = post(teammate_client, template="tpl_sunset", var_place="Lisbon harbour", var_mood="")
    assert response.status_code == 200, response.content.decode()[:3000]
    generation = Generation.objects.get()
    assert generation.operation == MODE
    assert generation.params["template_id"] == "tpl_sunset"
    assert generation.params["variables"] == "place=Lisbon harbour"  # a blank optional one is left out
    # The form that comes back keeps the template and what was typed for it.
    assert 'value="Lisbon harbour"' in response.content.decode()


def test_a_required_variable_left_empty_is_refused_before_anything_is_spent(teammate_client, teammate, team, sealink,
                                                                            sunset):
    wallet = Wallet.objects.get(membership__user=teammate, membership__team=team)
    response = post(teammate_client, template="tpl_sunset", var_place="  ", var_mood="blue")
    assert response.status_code == 422
    assert "Fill in Place: the template needs it." in response.content.decode()
    assert not Generation.objects.exists()
    assert Wallet.objects.get(pk=wallet.pk).available == wallet.available


def test_another_template_id_can_still_be_typed(teammate_client, sealink, sunset):
    fields = teammate_client.get(reverse("generations:studio_fields"),
                                 {"model": T2V, "operation": MODE, "template": ""}, headers=HX).content.decode()
    assert 'name="template_id"' in fields and 'name="variables"' in fields and 'name="var_place"' not in fields
    response = post(teammate_client, template="", template_id="tpl_product", variables="product=a teapot")
    assert response.status_code == 200
    assert Generation.objects.get().params["template_id"] == "tpl_product"


def test_a_form_sent_without_the_picker_is_taken_as_typed(teammate_client, sealink, sunset):
    response = post(teammate_client, template_id="tpl_sunset", variables="place=Porto")
    assert response.status_code == 200
    assert Generation.objects.get().params["variables"] == "place=Porto"


def test_the_picked_template_survives_another_mode_and_back(teammate_client, sealink, sunset):
    query = {"model": T2V, "operation": MODE, "template": "tpl_sunset", "var_place": "Nice", "prompt": "Slow"}
    fields = teammate_client.get(reverse("generations:studio_fields"), query, headers=HX).content.decode()
    assert 'value="Nice"' in fields and "A serene place at sunset." in fields


def test_with_nothing_registered_the_id_is_typed_and_an_admin_is_told_where_to_register(owner_client, sealink):
    page = studio(owner_client).content.decode()
    assert 'name="template_id"' in page and 'name="template"' not in page
    assert "register your team's templates" in page and reverse("accounts:templates") in page


# -- Edit and retry ------------------------------------------------------------------


def failed_job(team, author, *, kind=ErrorKind.INPUT, template_id="tpl_sunset", variables="mood=blue"):
    prompt = Prompt.objects.create(team=team, author=author, text="")
    return Generation.objects.create(
        team=team, author=author, prompt=prompt, provider="sealink", model="wan2.6-t2v", kind="video",
        operation=MODE, status=Status.FAILED, error_kind=kind,
        error="Template 'tpl_sunset' needs the variable 'place'.",
        params={"template_id": template_id, "variables": variables, "duration": 5, "size": "1280x720", "n": 1})


def test_retry_of_a_job_that_failed_on_its_input_reserves_nothing_and_opens_the_studio(teammate_client, team, owner,
                                                                                       teammate, sealink):
    job = failed_job(team, owner)
    wallet = Wallet.objects.get(membership__user=teammate, membership__team=team)
    entries = LedgerEntry.objects.count()
    response = teammate_client.post(reverse("generations:retry", args=[job.public_id]))
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('generations:studio')}?remix={job.public_id}"
    assert Generation.objects.count() == 1
    assert LedgerEntry.objects.count() == entries
    assert Wallet.objects.get(pk=wallet.pk).available == wallet.available
    page = teammate_client.get(response["Location"]).content.decode()
    assert "would fail again" in page  # the message said why


def test_card_and_page_offer_edit_and_retry_instead_of_retry(teammate_client, team, owner, sealink):
    job = failed_job(team, owner)
    other = failed_job(team, owner, kind="")
    studio_link = f"{reverse('generations:studio')}?remix={job.public_id}"
    gallery = teammate_client.get(reverse("generations:gallery")).content.decode()
    assert studio_link in gallery and "Edit and retry" in gallery
    assert reverse("generations:retry", args=[job.public_id]) not in gallery
    assert reverse("generations:retry", args=[other.public_id]) in gallery  # other failures keep Retry
    detail = teammate_client.get(reverse("generations:detail", args=[job.public_id])).content.decode()
    assert studio_link in detail and "Sent again as it is, it would fail again" in detail


def test_edit_and_retry_opens_the_studio_prefilled_and_links_the_new_job(teammate_client, team, owner, sealink, sunset):
    job = failed_job(team, owner)
    page = studio(teammate_client, remix=str(job.public_id)).content.decode()
    assert "Edit and retry." in page and "needs the variable" in page
    assert '<option value="tpl_sunset" selected>' in page  # the registered template is picked
    assert 'name="var_mood"' in page and 'value="blue"' in page  # its variables fill their fields
    response = post(teammate_client, template="tpl_sunset", var_place="Lisbon", var_mood="blue",
                    remix_of=str(job.public_id))
    assert response.status_code == 200
    new = Generation.objects.exclude(pk=job.pk).get()
    assert (new.parent, new.parent_relation) == (job, "retry")
    assert new.params["variables"] == "place=Lisbon\nmood=blue" or new.params["variables"] == "mood=blue\nplace=Lisbon"


def test_an_unregistered_template_comes_back_typed(teammate_client, team, owner, sealink, sunset):
    job = failed_job(team, owner, template_id="tpl_sunsett", variables="place=Lisbon")
    page = studio(teammate_client, remix=str(job.public_id)).content.decode()
    assert 'value="tpl_sunsett"' in page and "place=Lisbon" in page
    assert '<option value="" selected>' in page


def test_another_teams_failed_job_cannot_be_opened(teammate_client, other_team, outsider, sealink):
    theirs = failed_job(other_team, outsider)
    assert studio(teammate_client, remix=str(theirs.public_id)).status_code == 404
    assert teammate_client.post(reverse("generations:retry", args=[theirs.public_id])).status_code == 404


def test_a_variable_is_never_cut_by_the_browser_and_an_overlong_one_is_refused(teammate_client, sealink, sunset):
    page = studio(teammate_client).content.decode()
    field = page[page.index('name="var_place"'):][:300]
    assert "maxlength" not in field.split(">")[0] and 'data-limit="1000"' in field.split(">")[0]
    response = post(teammate_client, template="tpl_sunset", var_place="x" * 1001)
    assert response.status_code == 422
    assert "1000 characters" in response.content.decode() or "1,000" in response.content.decode()
    assert not Generation.objects.exists()
