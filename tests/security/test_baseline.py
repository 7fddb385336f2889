"""The security baseline: CSP with nonces and no inline code, login throttling,
password rules, production cookie flags, authorization on every URL, and API
keys that never leak."""

import base64
import json
import logging
import os
import re
import secrets
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts.models import Invitation, Membership, Role
from generations.keys.models import ProviderKey
from generations.models import Generation, Kind, Media, Status
from generations.share.models import ShareLink
from generations.share.services import create_share
from tests.conftest import PASSWORD
from tests.generations.studio.conftest import png_bytes
from tests.security.test_deploy_check import PRODUCTION_ENV

ROOT = Path(__file__).resolve().parents[2]


# -- CSP and inline code ----------------------------------------------------------


def script_src(csp: str) -> str:
    return next((d for d in csp.split(";") if d.strip().startswith("script-src")), "")


def assert_csp_with_nonce(response) -> None:
    csp = response["Content-Security-Policy"]
    scripts = script_src(csp)
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, csp
    assert "'unsafe-inline'" not in next((d for d in csp.split(";") if d.strip().startswith("style-src")), ""), csp
    html = response.content.decode()
    tags = re.findall(r"<script\b[^>]*>", html)
    if not tags:
        return  # a page without scripts (the public share page) needs no nonce
    nonce = re.search(r"'nonce-([^']+)'", scripts)
    assert nonce, f"no nonce in {csp!r} for {response.request['PATH_INFO']}"
    assert all(f'nonce="{nonce.group(1)}"' in tag for tag in tags if "/static/vendor/" in tag
                        or "/static/kiln/kiln.js" in tag)


def test_every_html_page_has_a_csp_with_a_nonce_and_no_unsafe_script_sources(owner_client, victim):
    pages = [reverse("generations:studio"), reverse("generations:gallery"),
             reverse("generations:detail", args=[victim["generation"].public_id]), reverse("accounts:keys"),
             reverse("accounts:members"), reverse("accounts:my_usage"), reverse("accounts:password_change"),
             reverse("generations:share_list"), reverse("accounts:team_usage"), reverse("accounts:wallets")]
    for url in pages:
        response = owner_client.get(url)
        assert response.status_code == 200, url
        assert_csp_with_nonce(response)
    anonymous = Client().get(reverse("accounts:login"))
    assert_csp_with_nonce(anonymous)
    public = Client().get(reverse("generations:share_public", args=[victim["share_token"]]))
    assert public.status_code == 200
    assert_csp_with_nonce(public)


INLINE_RULES = {
    "inline <script> without src": re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.I),
    "style= attribute": re.compile(r"\sstyle\s*=", re.I),
    "hx-on attribute": re.compile(r"\shx-on[:-]", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
    "htmx trigger filter [..]": re.compile(r"hx-trigger\s*=\s*[\"'][^\"']*\[", re.I),
    "inline event handler": re.compile(r"\son(click|load|error|submit|change|input|mouseover)\s*=", re.I),
}


def test_templates_and_scripts_have_no_inline_code_the_csp_would_block():
    found = []
    files = [*ROOT.glob("templates/**/*.html"), *ROOT.glob("*/templates/**/*.html")]
    # E-mails are read in mail clients, never served under Kiln's CSP; they need inline styles.
    files = [path for path in files if "email" not in path.relative_to(ROOT).parts]
    files += list(ROOT.glob("static/js/**/*.js"))
    for path in files:
        text = path.read_text()
        rules = INLINE_RULES if path.suffix == ".html" else {
            "eval": re.compile(r"\beval\(|new Function\("), "javascript: URL": INLINE_RULES["javascript: URL"],
            "inline style injection": re.compile(r"\.style\.cssText|setAttribute\(\s*[\"']style")}
        for name, rule in rules.items():
            for match in rule.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert found == []


def test_htmx_is_configured_for_the_csp():
    base = (ROOT / "templates/base.html").read_text()
    config = json.loads(re.search(r'name="htmx-config" content=\'([^\']+)\'', base).group(1))
    assert config == {**config, "includeIndicatorStyles": False, "allowEval": False, "allowScriptTags": False}


# -- logins and passwords ---------------------------------------------------------


def login(client: Client, email: str, password: str, ip: str):
    return client.post(reverse("accounts:login"), {"username": email, "password": password}, REMOTE_ADDR=ip)


def test_logins_lock_after_the_failure_limit_for_that_username_and_address_only(settings, owner, teammate):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        assert login(Client(), "owner@acme.test", "wrong password", "203.0.113.7").status_code == 200
    assert login(Client(), "owner@acme.test", "wrong password", "203.0.113.7").status_code == 429  # the third
    locked = login(Client(), "owner@acme.test", PASSWORD, "203.0.113.7")  # even the right password now
    assert locked.status_code in (403, 429)
    assert "_auth_user_id" not in locked.client.session
    # Another address for that user, or another user from that address, may still sign in.
    assert login(Client(), "owner@acme.test", PASSWORD, "198.51.100.2").status_code == 302
    assert login(Client(), "mate@acme.test", PASSWORD, "203.0.113.7").status_code == 302


@pytest.mark.parametrize("weak", ["password", "12345678", "owner@acme.test", "short"])
def test_a_new_password_must_pass_the_validators(owner_client, owner, weak):
    response = owner_client.post(reverse("accounts:password_change"), {
        "old_password": PASSWORD, "new_password1": weak, "new_password2": weak})
    assert response.status_code in (200, 400)
    assert "errorlist" in response.content.decode() or "error" in response.content.decode()
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_production_settings_harden_cookies_and_transport(tmp_path):
    code = ("import json, django; django.setup(); from django.conf import settings as s; print(json.dumps({k: "
            "getattr(s, k) for k in ['SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', "
            "'SESSION_COOKIE_SAMESITE', 'SECURE_PROXY_SSL_HEADER', 'SECURE_HSTS_SECONDS', 'SECURE_SSL_REDIRECT', "
            "'DEBUG', 'X_FRAME_OPTIONS', 'SECURE_CONTENT_TYPE_NOSNIFF', 'KILN_ALLOW_PRIVATE_URLS']}))")
    env = {**{k: v for k, v in os.environ.items() if k != "DEBUG"}, **PRODUCTION_ENV, "KILN_VAR_DIR": str(tmp_path),
           "DJANGO_SETTINGS_MODULE": "project.settings"}
    env.pop("KILN_ALLOW_PRIVATE_URLS", None)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values == {
        "SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True, "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax", "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SECURE_HSTS_SECONDS": 31536000, "SECURE_SSL_REDIRECT": True, "DEBUG": False, "X_FRAME_OPTIONS": "DENY",
        "SECURE_CONTENT_TYPE_NOSNIFF": True, "KILN_ALLOW_PRIVATE_URLS": False}


# -- authorization on every URL ---------------------------------------------------

VICTIM_PROMPT = "VICTIM-PROMPT lanterns over the harbour 7731"


@pytest.fixture
def victim(team, owner, teammate, settings):
    """Everything team "acme" has that an outsider must never reach."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from generations.models import Prompt

    key = ProviderKey(team=team, provider="shark", label="Victim production key", base_url="https://api.example.com")
    key.set_api_key("sk-live-VICTIM-0000-9999")
    key.save()
    prompt = Prompt.objects.create(team=team, author=owner, text=VICTIM_PROMPT)
    generation = Generation.objects.create(team=team, author=owner, prompt=prompt, provider="shark",
                                           model="openai/gpt-image-2", kind=Kind.IMAGE, operation="text-to-image",
                                           status=Status.SUCCEEDED, params={"n": 1}, provider_key=key)
    content = png_bytes()
    media = Media(generation=generation, position=0, kind=Kind.IMAGE, mime_type="image/png", bytes=len(content),
                  sha256="0" * 64, width=64, height=48)
    media.file.save("0.png", ContentFile(content), save=False)
    media.thumbnail.save("0.thumb.png", ContentFile(content), save=False)
    media.save()
    review = Generation.objects.create(team=team, author=owner, prompt=prompt, provider="shark",
                                       model="openai/gpt-image-2", kind=Kind.IMAGE, operation="text-to-image",
                                       status=Status.EXPIRED, needs_review=True, params={"n": 1},
                                       finished_at=timezone.now() - timedelta(minutes=5))
    owner_membership = Membership.objects.get(user=owner, team=team)
    share, token = create_share(owner_membership, [generation], show_prompt=True)
    invitation = Invitation.objects.create(team=team, email="invitee@acme.test", invited_by=owner,
                                           expires=timezone.now() + timedelta(days=7), token_hash="f" * 64)
    return {"generation": generation, "media": media, "review": review, "key": key, "share": share,
            "share_token": token, "membership": Membership.objects.get(user=teammate, team=team),
            "team": team, "invitation": invitation}


def url_patterns(patterns=None, prefix="", namespace=""):
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(p, URLResolver):
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            yield from url_patterns(p.url_patterns, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), f"{namespace}{p.name}" if p.name else None, p.pattern.converters


def fillings(converters: dict, victim: dict) -> list[dict]:
    """Values for a URL's converters: every object of the victim team, a random uuid, and junk."""
    uuids = [victim["generation"].public_id, victim["media"].public_id, victim["review"].public_id,
             victim["key"].public_id, victim["share"].public_id, victim["membership"].public_id,
             victim["team"].public_id, victim["invitation"].public_id, uuid.uuid4()]
    options = []
    for index in range(len(uuids)):
        values = {}
        for name, converter in converters.items():
            kind = type(converter).__name__
            if kind == "UUIDConverter":
                values[name] = uuids[index]
            elif kind == "IntConverter":
                values[name] = 0
            elif kind == "SlugConverter":
                values[name] = "first_frame"
            elif name == "provider":
                values[name] = "shark"
            else:
                values[name] = secrets.token_urlsafe(24)  # tokens are capabilities: a guess, never the real one
        options.append(values)
        if not any(type(c).__name__ == "UUIDConverter" for c in converters.values()):
            break
    return options


def secrets_of(victim) -> list[str]:
    return [VICTIM_PROMPT, "owner@acme.test", "mate@acme.test", "Acme Studio", "Victim production key",
            "sk-live-VICTIM", str(victim["media"].public_id), "invitee@acme.test"]


def snapshot(victim) -> tuple:
    g, key, share, m = victim["generation"], victim["key"], victim["share"], victim["membership"]
    g.refresh_from_db()
    wallets = list(Membership.objects.filter(team=victim["team"]).order_by("pk")
                   .values_list("wallet__available", "wallet__reserved"))
    return (Generation.objects.filter(team=victim["team"]).count(), g.archived, g.favourites.count(), g.status,
            ProviderKey.objects.get(pk=key.pk).is_active, ShareLink.objects.get(pk=share.pk).revoked_at,
            Membership.objects.get(pk=m.pk).role, Membership.objects.get(pk=m.pk).removed_at,
            Generation.objects.get(pk=victim["review"].pk).needs_review, wallets,
            Invitation.objects.get(pk=victim["invitation"].pk).state)


ALLOWED = {301, 302, 400, 401, 403, 404, 405, 422}  # 401: the API asking for a token


def test_no_url_gives_an_outsider_or_an_anonymous_visitor_another_teams_data(victim, outsider, settings):
    settings.AXES_ENABLED = False
    outsider_client = Client()
    outsider_client.force_login(outsider)
    anonymous = Client()
    before = snapshot(victim)
    forbidden = secrets_of(victim)
    post_body = {"team": str(victim["team"].public_id), "public_id": str(victim["generation"].public_id),
                 "role": Role.OWNER, "generation": str(victim["generation"].public_id),
                 "generations": str(victim["generation"].public_id), "amount": "1000", "reason": "x",
                 "member": str(victim["membership"].public_id), "action": "release", "is_active": "0",
                 "ids": str(victim["generation"].public_id)}
    checked, leaks = 0, []
    for route, name, converters in url_patterns():
        if route.startswith("admin/") or name is None:
            continue
        for kwargs in fillings(converters, victim):
            url = reverse(name, kwargs=kwargs)
            if name == "generations:status_batch":
                url += f"?ids={victim['generation'].public_id}"
            for who, client in (("outsider", outsider_client), ("anonymous", anonymous)):
                for method in ("get", "post"):
                    response = getattr(client, method)(url, post_body if method == "post" else None)
                    checked += 1
                    body = b"".join(response.streaming_content) if response.streaming else response.content
                    text = body.decode(errors="replace")
                    leaked = [s for s in forbidden if s in text]
                    if (response.status_code not in ALLOWED and response.status_code != 200) or leaked:
                        leaks.append(f"{who} {method.upper()} {url} -> {response.status_code} {leaked}")
                    if who == "anonymous" and response.status_code == 200 and name not in PUBLIC:
                        leaks.append(f"anonymous {method.upper()} {url} -> 200 (should ask to sign in)")
    assert leaks == []
    assert checked > 300
    assert snapshot(victim) == before  # and nothing of the victim team changed


PUBLIC = {"accounts:login", "accounts:password_reset", "accounts:password_reset_done",
          "accounts:password_reset_confirm", "accounts:invitation", "generations:share_public", "generations:share_media",
          "generations:share_thumbnail", "generations:share_download", "generations:webhook",
          # The API's description and its docs page: no team's data, the same for everyone.
          "api:openapi-json", "api:openapi-view"}


def test_the_admin_sends_members_who_are_not_staff_to_its_login(outsider_client, victim):
    for url in ("/admin/", "/admin/generations/generation/", "/admin/generations/providerkey/",
                f"/admin/generations/providerkey/{victim['key'].pk}/change/", "/admin/accounts/user/"):
        response = outsider_client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), url
        assert Client().get(url).status_code == 302


# -- API keys never leak ----------------------------------------------------------

CANARY = "sk-live-SECRET-canary-1234"


def test_an_api_key_never_appears_in_pages_logs_errors_or_task_messages(
        team, owner, sandbox, sandbox_key, caplog, tmp_path, django_capture_on_commit_callbacks):
    """A job runs end to end with a known key (and one the provider refuses, echoing the key in its
    error); the key is looked for everywhere a person or a log could see it."""
    from generations.engine.recovery import requeue_stuck
    from generations.engine.submit import submit
    from generations.services import create_generation
    from tests.brokers import celery_conf, use_broker
    from tests.generations.engine.conftest import IMAGE, drive

    caplog.set_level(logging.DEBUG)
    owner.is_staff = owner.is_superuser = True
    owner.save()
    key = sandbox_key(team, "shark", api_key=CANARY, label="Canary key")
    membership = Membership.objects.get(user=owner, team=team)

    # Task messages: the filesystem broker in a temp dir, not eager; read what was queued.
    queue = tmp_path / "broker"
    queue.mkdir()
    options = {"data_folder_in": str(queue), "data_folder_out": str(queue), "processed_folder": str(tmp_path),
               "control_folder": str(tmp_path / "control"), "store_processed": False}
    with celery_conf(task_always_eager=False), use_broker("filesystem://", options):
        with django_capture_on_commit_callbacks(execute=True):
            ok = create_generation(membership=membership, provider_id="shark", model_id=IMAGE,
                                   operation="text-to-image", prompt="a canary in a kiln",
                                   params={"quality": "low", "size": "1024x1024"})
        sandbox.fault(r"^/shark/api/v1/images/generations$", method="POST", status=401,
                      message=f"Incorrect API key provided: {CANARY} is not valid.")
        with django_capture_on_commit_callbacks(execute=True):
            refused = create_generation(membership=membership, provider_id="shark", model_id=IMAGE,
                                        operation="text-to-image", prompt="a refused canary",
                                        params={"quality": "low", "size": "1024x1024"})
        with django_capture_on_commit_callbacks(execute=True):
            submit(refused.pk)
            drive(ok.pk)
            requeue_stuck(now=timezone.now() + timedelta(hours=1))
        messages = [p.read_bytes() for p in queue.iterdir()]
    assert len(messages) >= 3, "the test should have queued task messages"
    for raw in messages:
        assert CANARY.encode() not in raw
        decoded = base64.b64decode(json.loads(raw)["body"]).decode()
        assert CANARY not in decoded
        args = json.loads(decoded)[0]
        assert args and all(isinstance(a, int) for a in args)  # tasks take primary keys only

    client = Client()
    client.force_login(owner)
    ok.refresh_from_db()
    refused.refresh_from_db()
    assert ok.status == Status.SUCCEEDED
    assert refused.status == Status.FAILED and "Incorrect API key provided" in refused.error
    pages = [reverse("generations:studio"), reverse("generations:gallery"),
             reverse("generations:detail", args=[ok.public_id]), reverse("generations:detail", args=[refused.public_id]),
             reverse("accounts:keys"), "/admin/generations/providerkey/",
             f"/admin/generations/providerkey/{key.pk}/change/", f"/admin/generations/generation/{ok.pk}/change/",
             f"/admin/generations/generation/{refused.pk}/change/"]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert CANARY not in response.content.decode(), url
    key.refresh_from_db()
    said = [r.getMessage() for r in caplog.records] + [repr(r.exc_info) for r in caplog.records if r.exc_info]
    said += [ok.error, refused.error, key.last_error, json.dumps(ok.raw_payload), json.dumps(refused.raw_payload)]
    assert [s for s in said if CANARY in (s or "")] == []
    assert "1234" in client.get(reverse("accounts:keys")).content.decode()  # the last 4 may show
