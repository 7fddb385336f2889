"""The operator's commands: teams, providerkeys, demo."""

import io
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from accounts.credits.models import LedgerEntry
from accounts.models import Invitation, Membership, Role, Team, User
from generations.keys.models import ProviderKey
from generations.providers.registry import PROVIDERS
from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
CLEAR = "sk-cli-SecretFromStdin-5678-AB12"


def run(*args, stdin=None) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **({"stdin": stdin} if stdin is not None else {}))
    return out.getvalue()


def refused(*args, stdin=None) -> CommandError:
    with pytest.raises(CommandError) as excinfo:
        run(*args, stdin=stdin)
    assert excinfo.value.returncode == 2
    return excinfo.value


# -- teams ---------------------------------------------------------------------------------

def test_teams_create_e_mails_the_owner_an_invitation_and_prints_no_link(db, mailbox):
    out = run("teams", "create", "studio", "--name", "The Studio", "--owner", "Boss@Studio.test")
    team = Team.objects.get(slug="studio")
    assert team.name == "The Studio"
    assert not User.objects.filter(email="boss@studio.test").exists()  # no account until they accept
    invitation = Invitation.objects.get(team=team)
    assert (invitation.email, invitation.role, invitation.invited_by) == ("boss@studio.test", Role.OWNER, None)
    message = mailbox.wait(1)[0]
    link = mailbox.link(message)
    assert "Invitation e-mailed to boss@studio.test" in out
    assert "/accounts/invitation/" not in out and link not in out

    response = Client().post(urlsplit(link).path, {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert response.status_code == 302
    membership = Membership.objects.select_related("user", "wallet").get(team=team)
    assert (membership.user.email, membership.role, membership.wallet.available) == ("boss@studio.test", Role.OWNER, 0)


def test_teams_create_prints_the_link_only_when_asked(db, mailbox):
    out = run("teams", "create", "studio", "--name", "The Studio", "--owner", "boss@studio.test", "--print-link")
    link = mailbox.link(mailbox.wait(1)[0])
    assert link in out  # the same, still e-mailed


def test_teams_invite_and_invitations(team, owner, mailbox):
    out = run("teams", "invite", "acme", "New@Corp.example", "--role", "admin")
    assert "Invitation e-mailed to new@corp.example (admin of acme)" in out
    first = mailbox.link(mailbox.wait(1)[0])
    again = run("teams", "invite", "acme", "new@corp.example", "--role", "admin", "--print-link")
    second = mailbox.link(mailbox.wait(2)[1])
    assert second in again and first not in again and first != second  # a re-send: new link
    assert Client().get(urlsplit(first).path).status_code == 404
    listing = run("teams", "invitations", "acme")
    assert "new@corp.example" in listing and "admin" in listing and "pending" in listing and "operator" in listing
    assert "/accounts/invitation/" not in listing
    assert "Unknown role 'king'" in str(refused("teams", "invite", "acme", "x@corp.example", "--role", "king"))
    assert "Unknown team 'nope'" in str(refused("teams", "invite", "nope", "x@corp.example"))
    assert "Unknown team 'nope'" in str(refused("teams", "invitations", "nope"))
    assert "not a valid e-mail" in str(refused("teams", "invite", "acme", "nope"))
    assert "already a member" in str(refused("teams", "invite", "acme", owner.email))


def test_teams_invite_says_when_the_mail_server_refuses(team, settings):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                                    "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 5}}}
    with pytest.raises(CommandError) as excinfo:
        run("teams", "invite", "acme", "x@corp.example")
    assert excinfo.value.returncode == 1
    assert "could not be sent" in str(excinfo.value) and "--print-link" in str(excinfo.value)
    assert Invitation.objects.get(email="x@corp.example").sent is None


def test_teams_create_refuses_a_taken_slug_and_a_bad_email(team):
    assert "already exists" in str(refused("teams", "create", "acme", "--name", "Again", "--owner", "a@b.test"))
    assert "not a valid e-mail" in str(refused("teams", "create", "fresh", "--name", "Fresh", "--owner", "nope"))
    assert not Team.objects.filter(slug="fresh").exists()


def test_teams_list_shows_members_and_owners(owner, teammate, outsider):
    out = run("teams", "list")
    assert "acme" in out and "Acme Studio" in out and owner.email in out
    assert "rivals" in out and outsider.email in out


# -- providerkeys ----------------------------------------------------------------------------

def test_providerkeys_add_reads_the_key_from_stdin(team):
    out = run("providerkeys", "add", "--team", "acme", "--provider", "shark", "--label", "CLI",
              "--base-url", "https://api.example.com/v1", "--api-key-stdin", stdin=io.StringIO(CLEAR + "\n"))
    key = ProviderKey.objects.get(team=team)
    assert key.get_api_key() == CLEAR
    assert key.base_url == "https://api.example.com/v1"
    assert "••••AB12" in out and CLEAR not in out
    assert str(key.public_id) in out


def test_providerkeys_add_reads_the_key_from_the_environment(team, monkeypatch):
    monkeypatch.setenv("KILN_API_KEY", CLEAR)
    run("providerkeys", "add", "--team", "acme", "--provider", "gateway", "--label", "GW", "--models", "a/b,c/d")
    key = ProviderKey.objects.get(team=team)
    assert key.get_api_key() == CLEAR
    assert key.model_ids == ["a/b", "c/d"]


def test_providerkeys_add_has_no_way_to_take_the_key_from_argv(team):
    with pytest.raises(CommandError, match="unrecognized arguments: --api-key "):
        run("providerkeys", "add", "--team", "acme", "--provider", "shark", "--label", "X", "--api-key", CLEAR)


def test_providerkeys_add_without_a_key_is_refused(team, monkeypatch):
    monkeypatch.delenv("KILN_API_KEY", raising=False)
    assert "No API key on KILN_API_KEY" in str(refused("providerkeys", "add", "--team", "acme", "--provider", "shark", "--label", "X"))
    assert "No API key on stdin" in str(refused("providerkeys", "add", "--team", "acme", "--provider", "shark",
                                                "--label", "X", "--api-key-stdin", stdin=io.StringIO("")))
    assert not ProviderKey.objects.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--team", "nope", "--provider", "shark"], "Unknown team 'nope'"),
    (["--team", "acme", "--provider", "acme-ai"], "Unknown provider 'acme-ai'"),
    (["--team", "acme", "--provider", "shark", "--base-url", "ftp://x.example/"], "is not an http(s) URL"),
    (["--team", "acme", "--provider", "shark", "--base-url", "http//missing-colon"], "is not an http(s) URL"),
])
def test_providerkeys_add_refuses_bad_input_with_status_2(team, monkeypatch, args, message):
    monkeypatch.setenv("KILN_API_KEY", CLEAR)
    assert message in str(refused("providerkeys", "add", "--label", "X", *args))
    assert not ProviderKey.objects.exists()


def test_providerkeys_list_is_masked_and_scoped_to_the_team(team, other_team, monkeypatch):
    monkeypatch.setenv("KILN_API_KEY", CLEAR)
    run("providerkeys", "add", "--team", "acme", "--provider", "shark", "--label", "Ours")
    monkeypatch.setenv("KILN_API_KEY", "sk-theirs-0000-ZZZZ")
    run("providerkeys", "add", "--team", "rivals", "--provider", "shark", "--label", "Theirs")
    out = run("providerkeys", "list", "--team", "acme")
    assert "Ours" in out and "••••AB12" in out
    assert "Theirs" not in out and CLEAR not in out
    assert "Unknown team" in str(refused("providerkeys", "list", "--team", "nope"))


def test_providerkeys_disable_and_enable_by_id(team, monkeypatch):
    monkeypatch.setenv("KILN_API_KEY", CLEAR)
    run("providerkeys", "add", "--team", "acme", "--provider", "shark", "--label", "Ours")
    key = ProviderKey.objects.get()
    assert "Disabled 'Ours'" in run("providerkeys", "disable", str(key.public_id))
    key.refresh_from_db()
    assert not key.is_active
    run("providerkeys", "enable", str(key.public_id))
    key.refresh_from_db()
    assert key.is_active
    assert "is not a key id" in str(refused("providerkeys", "disable", "42"))
    assert "No provider key with id" in str(refused("providerkeys", "disable", "00000000-0000-0000-0000-000000000000"))


def test_providerkeys_rotate_reports_how_many(team, settings, monkeypatch):
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    monkeypatch.setenv("KILN_API_KEY", CLEAR)
    run("providerkeys", "add", "--team", "acme", "--provider", "shark", "--label", "A")
    run("providerkeys", "add", "--team", "acme", "--provider", "sealink", "--label", "B")
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    assert "Re-encrypted 2 provider keys" in run("providerkeys", "rotate")
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert {k.get_api_key() for k in ProviderKey.objects.all()} == {CLEAR}


def test_the_commands_exit_with_status_2_on_bad_input(tmp_path):
    """Through manage.py, as an operator runs them (a fresh database under a temp var/)."""
    env = {**os.environ, "KILN_VAR_DIR": str(tmp_path), "KILN_API_KEY": CLEAR}
    env.pop("DATABASE_URL", None)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, capture_output=True)
    done = subprocess.run([*manage, "providerkeys", "add", "--team", "ghost", "--provider", "shark", "--label", "X"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert "Unknown team 'ghost'" in done.stderr
    env.pop("EMAIL_HOST", None)
    done = subprocess.run([*manage, "teams", "create", "crew", "--name", "Crew", "--owner", "cap@crew.test"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # No EMAIL_HOST (make run): the invitation is shown in the terminal, labelled as not sent.
    assert "Kiln e-mail (not sent: no EMAIL_HOST set)" in done.stdout
    assert "To: cap@crew.test" in done.stdout and "Subject: Crew invites you to Kiln" in done.stdout
    done = subprocess.run([*manage, "teams", "invite", "crew", "x@crew.test", "--role", "boss"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 2 and "Unknown role 'boss'" in done.stderr
    done = subprocess.run([*manage, "providerkeys", "add", "--team", "crew", "--provider", "shark", "--label", "K",
                           "--api-key-stdin"], cwd=ROOT, env=env, input=CLEAR + "\n", capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert CLEAR not in done.stdout + done.stderr


# -- demo ----------------------------------------------------------------------------------------

def test_demo_sets_everything_up_once(db, settings):
    settings.KILN_SANDBOX_URL = "http://127.0.0.1:8765"
    first = run("demo")
    assert "Sign in as demo@kiln.local with password: " in first
    password = first.split("password: ", 1)[1].split()[0]
    user = User.objects.get(email="demo@kiln.local")
    assert user.check_password(password) and user.is_superuser and user.is_staff
    membership = Membership.objects.get(user=user, team__slug="demo")
    assert membership.team.name == "Demo Team" and membership.role == Role.OWNER
    assert membership.wallet.available == 500_000
    keys = {k.provider: k for k in ProviderKey.objects.filter(team=membership.team)}
    assert set(keys) == set(PROVIDERS)
    assert keys["shark"].base_url == "http://127.0.0.1:8765/shark"
    assert keys["shark"].get_api_key() == "sk-sandbox-shark"
    assert all(k.is_active and k.label == "Sandbox" for k in keys.values())

    second = run("demo")
    assert "demo@kiln.local already exists" in second
    assert "manage.py changepassword demo@kiln.local" in second  # how to get in when the password is lost
    assert "with password:" not in second and password not in second
    membership.wallet.refresh_from_db()
    assert membership.wallet.available == 500_000
    assert LedgerEntry.objects.filter(wallet=membership.wallet).count() == 1
    assert ProviderKey.objects.filter(team=membership.team).count() == len(PROVIDERS)


def test_demo_registers_the_sandboxs_sealink_templates_once(db, settings):
    from generations.prompt_templates.models import PromptTemplate
    from generations.sandbox.sealink import TEMPLATES

    settings.KILN_SANDBOX_URL = "http://127.0.0.1:8765"
    run("demo")
    run("demo")
    templates = PromptTemplate.objects.filter(team__slug="demo").prefetch_related("variables")
    assert {t.template_id for t in templates} == set(TEMPLATES)
    for template in templates:  # the variables the sandbox renders, the required ones required
        known = TEMPLATES[template.template_id]
        assert {v.name for v in template.variables.all() if v.required} == set(known["required"])
        assert {v.name for v in template.variables.all()} == {*known["required"], *known["defaults"]}
