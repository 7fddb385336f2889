"""The team's templates page: owners and admins register Sealink template ids with their
variables; members use them and cannot change them; another team's are a 404."""

import pytest

from accounts.models import Role
from generations.prompt_templates.models import PromptTemplate, TemplateVariable
from tests.conftest import make_member

URL = "/accounts/team/templates/"


def _post_data(template_id="tpl_sunset", name="Sunset pan", description="A lake at dusk.", variables=(), **extra):
    """What the page's form posts: the template, then one row per variable (3 blank rows to spare)."""
    rows = [*variables, *([{}] * 3)]
    data = {"template_id": template_id, "name": name, "description": description,
            "variables-TOTAL_FORMS": str(len(rows)), "variables-INITIAL_FORMS": "0",
            "variables-MIN_NUM_FORMS": "0", "variables-MAX_NUM_FORMS": "1000"}
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"variables-{i}-{key}"] = value
        if row.get("required", True) and row:
            data[f"variables-{i}-required"] = "on"
    data.update(extra)
    return data


def make_template(team, template_id="tpl_sunset", name="Sunset pan", variables=(("place", True), ("mood", False))):
    template = PromptTemplate.objects.create(team=team, template_id=template_id, name=name,
                                             description="A serene place at sunset.")
    for position, (var, required) in enumerate(variables):
        TemplateVariable.objects.create(template=template, position=position, name=var, required=required,
                                        label=var.capitalize(), hint=f"The {var}")
    return template


@pytest.fixture
def admin_client(client, team):
    client.force_login(make_member(team, "admin@acme.test", Role.ADMIN))
    return client


def test_an_admin_registers_a_template_with_its_variables(admin_client, team):
    response = admin_client.post(URL, _post_data(variables=[
        {"name": "place", "label": "Place", "hint": "A lake, a bay…"},
        {"name": "mood", "label": "Mood", "required": False}]))
    assert response.status_code == 302
    template = PromptTemplate.objects.get(team=team)
    assert (template.template_id, template.name, template.provider) == ("tpl_sunset", "Sunset pan", "sealink")
    assert [(v.name, v.label, v.hint, v.required) for v in template.variables.all()] == [
        ("place", "Place", "A lake, a bay…", True), ("mood", "Mood", "", False)]
    page = admin_client.get(URL).content.decode()
    assert "Sunset pan" in page and "tpl_sunset" in page and "registered with 2 variables" in page


def test_the_owner_edits_and_removes_a_variable(owner_client, team):
    template = make_template(team)
    place, mood = template.variables.all()
    data = _post_data(name="Sunset, renamed", variables=[
        {"id": str(place.pk), "name": "place", "label": "Where"},
        {"id": str(mood.pk), "name": "mood", "DELETE": "on"}], **{"variables-INITIAL_FORMS": "2"})
    response = owner_client.post(f"{URL}{template.public_id}/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    template.refresh_from_db()
    assert template.name == "Sunset, renamed"
    assert [(v.name, v.label) for v in template.variables.all()] == [("place", "Where")]


@pytest.mark.parametrize("template_id", ["tpl sunset", "", "-tpl", "tpl/../x", "x" * 101])
def test_a_template_id_sealink_would_not_take_is_refused(admin_client, team, template_id):
    response = admin_client.post(URL, _post_data(template_id=template_id))
    assert response.status_code == 400
    assert not PromptTemplate.objects.exists()


def test_a_template_id_is_registered_once_per_team(admin_client, team, other_team):
    make_template(team)
    make_template(other_team)  # another team's same id is no clash
    response = admin_client.post(URL, _post_data(name="Again"))
    assert response.status_code == 400
    assert "registered tpl_sunset already, as “Sunset pan”" in response.content.decode()
    assert PromptTemplate.objects.filter(team=team).count() == 1


@pytest.mark.parametrize("rows, message", [
    ([{"name": "1place"}], "is not a variable name"),
    ([{"name": "a place"}], "is not a variable name"),
    ([{"name": "place"}, {"name": "place"}], "place is given twice"),
    ([{"label": "No name"}], "This field is required"),
])
def test_bad_variables_are_refused_and_nothing_is_saved(admin_client, team, rows, message):
    response = admin_client.post(URL, _post_data(variables=rows))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not PromptTemplate.objects.exists() and not TemplateVariable.objects.exists()


def test_a_member_cannot_see_or_change_templates(teammate_client, team):
    template = make_template(team)
    assert teammate_client.get(URL).status_code == 403
    assert teammate_client.post(URL, _post_data(template_id="tpl_new")).status_code == 403
    assert teammate_client.post(f"{URL}{template.public_id}/", _post_data()).status_code == 403
    assert teammate_client.post(f"{URL}{template.public_id}/delete/").status_code == 403
    assert PromptTemplate.objects.count() == 1
    # The team tabs offer the page to managers only.
    assert "/accounts/team/templates/" not in teammate_client.get("/accounts/team/").content.decode()


def test_another_teams_template_is_a_404(owner_client, other_team):
    theirs = make_template(other_team)
    assert owner_client.get(f"{URL}{theirs.public_id}/").status_code == 404
    assert owner_client.post(f"{URL}{theirs.public_id}/", _post_data(name="Mine now")).status_code == 404
    assert owner_client.post(f"{URL}{theirs.public_id}/delete/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "Sunset pan"
    assert str(theirs.public_id) not in owner_client.get(URL).content.decode()


def test_delete_removes_it_from_the_picker(owner_client, team):
    template = make_template(team)
    assert owner_client.get(f"{URL}{template.public_id}/delete/").status_code == 405
    response = owner_client.post(f"{URL}{template.public_id}/delete/")
    assert response.status_code == 302
    assert not PromptTemplate.objects.exists() and not TemplateVariable.objects.exists()


def test_writes_need_the_csrf_token(team, owner):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(URL, _post_data()).status_code == 403
    assert not PromptTemplate.objects.exists()


def test_the_admin_site_applies_the_same_rules(admin_client, client, team, settings):
    from accounts.models import User

    staff = User.objects.create_superuser("staff@kiln.test", "pw-staff-123456")
    client.force_login(staff)
    make_template(team)
    data = {"team": team.pk, "template_id": "tpl_sunset", "name": "Dup", "description": "",
            "variables-TOTAL_FORMS": "1", "variables-INITIAL_FORMS": "0", "variables-MIN_NUM_FORMS": "0",
            "variables-MAX_NUM_FORMS": "1000", "variables-0-name": "bad name", "variables-0-position": "0"}
    response = client.post("/admin/generations/prompttemplate/add/", data)
    assert response.status_code == 200
    body = response.content.decode()
    assert "registered tpl_sunset already" in body and "is not a variable name" in body
    assert PromptTemplate.objects.count() == 1


def test_a_description_over_1000_characters_is_refused_with_a_message(admin_client, team):
    page = admin_client.get(URL).content.decode()
    assert "Up to 1,000 characters." in page and "maxlength" not in page.split('name="description"')[1][:200]
    response = admin_client.post(URL, _post_data(description="x" * 1001))
    assert response.status_code == 400
    assert "Ensure this value has at most 1000 characters (it has 1001)." in response.content.decode()
    assert not PromptTemplate.objects.exists()
    assert admin_client.post(URL, _post_data(description="x" * 1000)).status_code == 302


def test_the_admin_site_refuses_a_description_over_1000_characters(client, team):
    from accounts.models import User

    client.force_login(User.objects.create_superuser("staff@kiln.test", "pw-staff-123456"))
    data = {"team": team.pk, "template_id": "tpl_sunset", "name": "Sunset", "description": "x" * 1001,
            "variables-TOTAL_FORMS": "0", "variables-INITIAL_FORMS": "0", "variables-MIN_NUM_FORMS": "0",
            "variables-MAX_NUM_FORMS": "1000"}
    response = client.post("/admin/generations/prompttemplate/add/", data)
    assert response.status_code == 200
    assert "Ensure this value has at most 1000 characters (it has 1001)." in response.content.decode()
    assert not PromptTemplate.objects.exists()
