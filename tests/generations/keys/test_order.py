"""A provider's keys have an explicit order: one default, the others fallbacks.

The issue this answers: a Shark key labelled "Production" with a wrong base URL was
added, became "the newest key" and took every Shark job over while the working key sat
unused. Now a new key is a fallback unless the admin makes it the default, and the keys
page, the studio, the admin and ``providerkeys`` all say which key serves a provider."""

import io

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from accounts.models import Role
from generations.keys import services as keys
from generations.keys.models import ProviderKey
from generations.providers.registry import get_provider
from generations.services import _key_and_model, team_catalog
from tests.conftest import make_member

CLEAR = "sk-test-OrderedKeyValue-0001-ABCD"


def add(team, label, provider="shark", **extra):
    return keys.create_key(team=team, provider=provider, label=label, api_key=f"{CLEAR}-{label.replace(' ', '-')}",
                           **extra)


def order(team, provider="shark"):
    return [(k.label, k.role) for k in ProviderKey.objects.filter(team=team, provider=provider)]


# -- the order -------------------------------------------------------------------------

def test_a_new_key_is_a_fallback_and_the_working_key_keeps_serving(team):
    working = add(team, "Working")
    production = add(team, "Production", base_url="https://shark.wrong.example")
    assert order(team) == [("Working", "Default"), ("Production", "Fallback 1")]
    key, model = _key_and_model(team, get_provider("shark"), "alibaba/wan-2.7")
    assert key == working and model is not None
    assert {entry.key for entry in team_catalog(team) if entry.provider_id == "shark"} == {working}
    assert production.role == "Fallback 1"


def test_a_key_made_the_default_when_added_serves_and_the_others_follow_in_order(team):
    add(team, "A")
    add(team, "B")
    add(team, "C", make_default=True)
    assert order(team) == [("C", "Default"), ("A", "Fallback 1"), ("B", "Fallback 2")]
    assert _key_and_model(team, get_provider("shark"), "alibaba/wan-2.7")[0].label == "C"


def test_the_first_key_of_a_provider_is_its_default_whatever_other_providers_have(team):
    add(team, "Shark main")
    sealink = add(team, "Sealink main", provider="sealink")
    assert sealink.is_default
    assert order(team, "sealink") == [("Sealink main", "Default")]


def test_make_default_move_up_and_delete_keep_the_order_dense(team):
    add(team, "A")
    b, c = add(team, "B"), add(team, "C")
    keys.make_default(c)
    assert order(team) == [("C", "Default"), ("A", "Fallback 1"), ("B", "Fallback 2")]
    keys.move_up(b)
    assert order(team) == [("C", "Default"), ("B", "Fallback 1"), ("A", "Fallback 2")]
    keys.move_up(b)  # the first fallback moving up becomes the default
    assert order(team) == [("B", "Default"), ("C", "Fallback 1"), ("A", "Fallback 2")]
    keys.delete_key(ProviderKey.objects.get(label="B"))  # deleting the default: the first fallback takes over
    assert order(team) == [("C", "Default"), ("A", "Fallback 1")]
    assert sorted(ProviderKey.objects.values_list("position", flat=True)) == [0, 1]


def test_a_disabled_default_gives_way_to_the_first_active_fallback(team):
    default, fallback = add(team, "Main"), add(team, "Backup")
    keys.set_active(default, False)
    [group] = keys.provider_groups(team)
    assert group.serving == fallback
    assert _key_and_model(team, get_provider("shark"), "alibaba/wan-2.7")[0] == fallback


def test_the_database_holds_one_default_per_provider_and_team(team, other_team):
    add(team, "Main")
    add(other_team, "Theirs")  # another team's default is its own
    with pytest.raises(IntegrityError), transaction.atomic():
        ProviderKey.objects.create(team=team, provider="shark", label="Sneaky", position=0,
                                   api_key_encrypted="x", api_key_last4="")


def test_a_key_saved_outside_the_services_joins_at_the_end(team):
    add(team, "Main")
    key = ProviderKey(team=team, provider="shark", label="Fixture")
    key.set_api_key(CLEAR)
    key.save()
    assert key.role == "Fallback 1"


# -- the keys page -----------------------------------------------------------------------

def test_the_keys_page_says_which_key_serves_each_provider(owner_client, team):
    add(team, "Working")
    add(team, "Production")
    body = owner_client.get("/accounts/team/keys/").content.decode()
    assert "Served by <strong>“Working”</strong>, the default." in body
    assert body.index("Working") < body.index("Production")
    assert "Fallback 1" in body and "Make default" in body


def test_the_page_says_when_a_fallback_serves_because_the_default_is_disabled(owner_client, team):
    keys.set_active(add(team, "Main"), False)
    add(team, "Backup")
    body = owner_client.get("/accounts/team/keys/").content.decode()
    assert "Served by <strong>“Backup”</strong>, fallback 1: the default is disabled." in body


def test_adding_from_the_page_keeps_the_default_unless_asked(owner_client, team):
    add(team, "Working")
    form = {"provider": "shark", "label": "Production", "api_key": CLEAR, "base_url": "", "models_override": ""}
    response = owner_client.post("/accounts/team/keys/add/", form, follow=True)
    assert "It is fallback 1: Shark AI jobs still start with the default key" in response.content.decode()
    assert order(team) == [("Working", "Default"), ("Production", "Fallback 1")]
    owner_client.post("/accounts/team/keys/add/", {**form, "label": "New main", "make_default": "on"})
    assert order(team) == [("New main", "Default"), ("Working", "Fallback 1"), ("Production", "Fallback 2")]


def test_make_default_and_move_up_from_the_page(owner_client, team):
    add(team, "A")
    b, c = add(team, "B"), add(team, "C")
    response = owner_client.post(f"/accounts/team/keys/{c.public_id}/default/", follow=True)
    assert "“C” is now the default Shark AI key" in response.content.decode()
    owner_client.post(f"/accounts/team/keys/{b.public_id}/up/")
    assert order(team) == [("C", "Default"), ("B", "Fallback 1"), ("A", "Fallback 2")]


def test_only_managers_of_the_team_reorder_and_with_a_csrf_token(teammate, outsider, csrf_client, team):
    from django.test import Client

    add(team, "A")
    b = add(team, "B")
    member, stranger = Client(), Client()
    member.force_login(teammate)
    stranger.force_login(outsider)
    for action in ("default", "up"):
        assert member.post(f"/accounts/team/keys/{b.public_id}/{action}/").status_code == 403
        assert stranger.post(f"/accounts/team/keys/{b.public_id}/{action}/").status_code == 404
        assert csrf_client.post(f"/accounts/team/keys/{b.public_id}/{action}/").status_code == 403
    assert order(team) == [("A", "Default"), ("B", "Fallback 1")]


def test_the_studio_model_card_names_the_key_that_serves(owner_client, team):
    add(team, "Working")
    add(team, "Production")
    body = owner_client.get("/", {"model": "shark:alibaba/wan-2.7"}).content.decode()
    assert "Sent with the team's key “Working”, the Shark AI default." in body


# -- the command and the admin -----------------------------------------------------------

def run(*args, stdin: str = "") -> str:
    out = io.StringIO()
    call_command("providerkeys", *args, stdout=out, stdin=io.StringIO(stdin))
    return out.getvalue()


def test_providerkeys_adds_fallbacks_lists_the_order_and_makes_a_default(team):
    assert "as default" in run("add", "--team", "acme", "--provider", "shark", "--label", "Working",
                               "--api-key-stdin", stdin=CLEAR + "\n")
    added = run("add", "--team", "acme", "--provider", "shark", "--label", "Production", "--api-key-stdin",
                stdin=CLEAR + "\n")
    assert "as fallback 1" in added
    listing = run("list", "--team", "acme")
    assert "Default" in listing and "Fallback 1" in listing
    assert "Shark AI is served by 'Working' (default)." in listing
    production = ProviderKey.objects.get(label="Production")
    assert "is now the default Shark AI key" in run("default", str(production.public_id))
    assert order(team) == [("Production", "Default"), ("Working", "Fallback 1")]
    run("add", "--team", "acme", "--provider", "shark", "--label", "Third", "--default", "--api-key-stdin",
        stdin=CLEAR + "\n")
    assert order(team)[0] == ("Third", "Default")


def test_the_admin_shows_the_order_adds_a_fallback_and_makes_a_default(client, team):
    root = make_member(team, "root@acme.test", Role.OWNER)
    root.is_staff = root.is_superuser = True
    root.save()
    client.force_login(root)
    add(team, "Working")
    assert "Make it the default" in client.get("/admin/generations/providerkey/add/").content.decode()
    response = client.post("/admin/generations/providerkey/add/", {
        "team": team.pk, "provider": "shark", "label": "Production", "new_api_key": CLEAR, "base_url": "",
        "models_override": "", "is_active": "on", "last_error": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert order(team) == [("Working", "Default"), ("Production", "Fallback 1")]
    listing = client.get("/admin/generations/providerkey/").content.decode()
    assert "Fallback 1" in listing and "Default" in listing
    production = ProviderKey.objects.get(label="Production")
    client.post("/admin/generations/providerkey/", {"action": "make_default_action",
                                                    "_selected_action": [production.pk]})
    assert order(team) == [("Production", "Default"), ("Working", "Fallback 1")]
    page = client.get(f"/admin/generations/providerkey/{production.pk}/change/").content.decode()
    assert 'name="provider"' not in page and 'name="team"' not in page  # fixed once saved
    client.post("/admin/generations/providerkey/add/", {
        "team": team.pk, "provider": "shark", "label": "New main", "new_api_key": CLEAR, "base_url": "",
        "models_override": "", "is_active": "on", "last_error": "", "make_default": "on"})
    assert order(team) == [("New main", "Default"), ("Production", "Fallback 1"), ("Working", "Fallback 2")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_makes_the_key_the_old_rule_picked_the_default(team, other_team):
    """0006 and 0007 on a database that has keys from before (run on PostgreSQL too: the
    numbering's UPDATEs and the constraint's ALTER TABLE sit in separate migrations)."""
    from datetime import timedelta

    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor
    from django.utils import timezone

    before, latest = [("generations", "0005_short_key_masks")], [("generations", "0007_one_default_key")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("generations", "ProviderKey")
    now = timezone.now()
    for team_id, label, days, active in [(team.pk, "Old", 3, True), (team.pk, "Newest", 1, True),
                                         (team.pk, "Off", 0, False), (other_team.pk, "Theirs, off", 5, False),
                                         (other_team.pk, "Theirs, older", 9, False)]:
        old.objects.create(team_id=team_id, provider="shark", label=label, api_key_encrypted="x", api_key_last4="",
                           created=now - timedelta(days=days), is_active=active)
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(latest)
        # The old rule: the newest active key served; the other active ones next, newest first,
        # then the disabled ones. Only disabled keys: the newest is the default.
        assert order(team) == [("Newest", "Default"), ("Old", "Fallback 1"), ("Off", "Fallback 2")]
        assert order(other_team) == [("Theirs, off", "Default"), ("Theirs, older", "Fallback 1")]
    finally:
        ProviderKey.objects.all().delete()
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
