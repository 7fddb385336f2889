"""Browser: WCAG 2.2 A and AA on every page, in the light theme and the dark one.

axe-core (tests/e2e/axe.py) runs on each page with real content (a team with results,
keys, tokens, webhooks, templates, boards and shares), on the studio's form of each
provider, with the dialogs and menus open, on the public share pages, the admin index,
the error pages and the signed-out pages; each page also has exactly one h1. Then what axe
does not check: the focus ring of an input, a button and a link is 3:1 against what is
around it (WCAG's contrast formula on getComputedStyle), repeated buttons say what they act
on, videos have names, "Copied" goes back to "Copy link", the lightbox's video does not
start by itself under prefers-reduced-motion.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from generations.models import Kind
from tests.conftest import PASSWORD, make_member
from tests.e2e.axe import axe_available, describe, focus_ring, violations
from tests.generations.gallery.conftest import add_media, make_generation

pytestmark = pytest.mark.e2e

SCHEMES = ["light", "dark"]
PROVIDERS = ["shark", "shuttleai", "sealink", "gateway"]


@pytest.fixture
def a11y(page):
    """``page`` plus a checker: ``check(label)`` runs axe and counts the h1s; ``report()``
    fails with every page's findings at once."""
    axe_available()
    found: dict[str, str] = {}

    def check(label: str, context: str | None = None):
        page.wait_for_load_state("networkidle")
        items = violations(page, context)
        if items:
            found[label] = describe(items)
        if context is None:
            # A template comment that ran over two lines shows as text ({# … #}).
            if "{#" in page.inner_text("body") or "{%" in page.inner_text("body"):
                found[f"{label} (template text)"] = f"template syntax shown as text on {page.url}"
            h1 = page.locator("h1").count()
            if h1 != 1:
                found[f"{label} (h1)"] = f"{h1} h1 elements on {page.url}, not one"

    def report():
        assert not found, "\n\n".join(f"== {label}\n{text}" for label, text in found.items())

    page.check, page.report = check, report
    return page


def rich_team(team, owner, teammate):
    """A team with something on every page: results (image, video, failed), a board, shares,
    provider keys, a template, a webhook, tokens, an invitation."""
    from accounts.invitations import invite
    from accounts.models import Membership
    from accounts.tokens.services import create_token
    from generations.boards.models import Board
    from generations.models import Status
    from generations.prompt_templates.models import PromptTemplate
    from generations.share import services as sharing
    from generations.team_webhooks.forms import EndpointForm
    from generations.team_webhooks.services import create_endpoint

    membership = Membership.objects.get(team=team, user=owner)
    image = make_generation(team, owner, prompt="a lighthouse at dusk, volumetric light")
    add_media(image)
    video = make_generation(team, teammate, prompt="waves over black sand, slow dolly", kind=Kind.VIDEO,
                            model="alibaba/wan-2.7")
    add_media(video)
    for i in range(3):
        add_media(make_generation(team, owner, prompt=f"a red fox in fresh snow #{i}"))
    make_generation(team, owner, prompt="a glass teapot", status=Status.FAILED,
                    error="Content was blocked by the safety system.")
    board = Board.objects.create(team=team, name="Coastal moodboard", created_by=owner)
    board.items.create(generation=image, added_by=owner)
    sharing.create_share(membership, [image], show_prompt=True, title="Lighthouse")
    revoked, _ = sharing.create_share(membership, [video])
    sharing.revoke(revoked, membership)
    create_token(membership, "CI renders", ["read", "generate"])
    create_token(membership, "Nightly batch", ["read"])
    form = EndpointForm(data={"url": "https://ci.example.com/hooks/kiln", "events": ["generation.succeeded"],
                              "description": "CI"})
    if form.is_valid():
        create_endpoint(form, membership=membership)
    PromptTemplate.objects.create(team=team, template_id="tpl_product", name="Product shot",
                                  description="A product on a plain background.", created_by=owner)
    invite(team, "newbie@corp.example", actor=membership, base_url="http://testserver")
    return image, video


@pytest.fixture
def team_with_content(transactional_db, team, owner, sandbox_key):
    teammate = make_member(team, "mate@kiln.test")
    for provider in PROVIDERS:
        sandbox_key(team, provider, label=f"{provider.capitalize()} production")
    return rich_team(team, owner, teammate)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_signed_in_page_has_no_violations_and_one_h1(a11y, live_server, login, owner, team_with_content, scheme):
    page = a11y
    page.emulate_media(color_scheme=scheme)
    image, video = team_with_content
    login(page, live_server, owner.email, PASSWORD)

    # The studio: each provider's form, each of its modes.
    page.goto("/")
    page.wait_for_selector("#studio-form")
    models = page.eval_on_selector_all("#studio-model option", "os => os.map(o => o.value)")
    for provider in PROVIDERS:
        value = next(v for v in models if v.startswith(provider + ":"))
        if page.input_value("#studio-model") != value:
            page.select_option("#studio-model", value)
            page.wait_for_selector(f"#studio-fieldset .model-meta code:text-is('{value.split(':', 1)[1]}')")
        operations = page.eval_on_selector_all(".op-tab input", "is => is.map(i => i.value)") or [""]
        for operation in operations:
            if operation:
                page.click(f".op-tab:has(input[value='{operation}'])")
                page.wait_for_load_state("networkidle")
            page.check(f"studio {value} {operation}")
            picker = page.locator("a[hx-target='#studio-picker-body']").first
            if operation and picker.count() and "studio picker" not in str(page.url):
                picker.click()
                expect(page.locator("#studio-picker")).to_be_visible()
                page.wait_for_load_state("networkidle")
                page.check(f"studio {value} {operation}: gallery picker open")
                page.keyboard.press("Escape")

    # The gallery, its lightbox and a card's ⋯ menu.
    page.goto("/gallery/")
    page.wait_for_selector("[data-card]")
    page.check("gallery")
    page.locator("[data-card] a.card-media[data-kind=video]").first.click()
    expect(page.locator(".lightbox")).to_be_visible()
    page.check("gallery: lightbox open (video)")
    page.keyboard.press("Escape")
    page.locator("[data-card] a.card-media[data-kind=image]").first.click()
    expect(page.locator(".lightbox")).to_be_visible()
    page.check("gallery: lightbox open (image)")
    page.keyboard.press("Escape")
    menu = page.locator(".card-menu > summary").first
    menu.click()
    page.check("gallery: ⋯ menu open")

    for path, label in [
        (f"/g/{image.public_id}/", "result (image)"),
        (f"/g/{video.public_id}/", "result (video)"),
        ("/shares/", "shares"),
        ("/boards/", "boards"),
        ("/accounts/usage/", "my usage"),
        ("/accounts/team/", "team: members"),
        ("/accounts/team/keys/", "team: provider keys"),
        ("/accounts/team/templates/", "team: templates"),
        ("/accounts/team/webhooks/", "team: webhooks"),
        ("/accounts/team/credits/", "team: credits"),
        ("/accounts/team/usage/", "team: usage"),
        ("/accounts/team/sign-in/", "team: sign-in"),
        ("/accounts/team/tokens/", "team: API tokens"),
        ("/accounts/tokens/", "API tokens"),
        ("/accounts/password/", "password change"),
        ("/studio/prompts/", "recent prompts"),
        ("/does-not-exist/", "404"),
    ]:
        page.goto(path)
        page.check(label)
    page.goto(f"/g/{image.public_id}/")
    page.click("summary.share-form-title")
    page.check("result: share form open")
    page.goto(f"/shares/new/?ids={image.public_id},{video.public_id}")
    page.check("share form (a selection)")
    page.get_by_role("button", name="Create share link").click()
    page.wait_for_selector("#share-url")
    page.check("share link created")
    page.goto("/boards/")
    page.get_by_role("link", name="Share… board “Coastal moodboard”").click()
    page.check("share form (a board)")
    page.report()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_public_signed_out_and_admin_pages_have_no_violations(a11y, browser, live_server, login, transactional_db,
                                                              team, owner, scheme):
    from accounts.invitations import invite
    from accounts.models import Membership
    from generations.share import services as sharing

    page = a11y
    page.emulate_media(color_scheme=scheme)
    membership = Membership.objects.get(team=team, user=owner)
    image = make_generation(team, owner, prompt="a lighthouse at dusk")
    add_media(image)
    video = make_generation(team, owner, prompt="waves over black sand", kind=Kind.VIDEO, model="alibaba/wan-2.7")
    add_media(video)
    _, one = sharing.create_share(membership, [image], show_prompt=True, title="Lighthouse")
    _, many = sharing.create_share(membership, [image, video], title="Two takes")
    gone, gone_token = sharing.create_share(membership, [video])
    sharing.revoke(gone, membership)
    link = invite(team, "newbie@corp.example", actor=membership, base_url=live_server.url).link

    for path, label in [
        ("/accounts/login/", "sign in"),
        ("/accounts/password/reset/", "password reset"),
        ("/accounts/password/reset/sent/", "password reset sent"),
        ("/accounts/password/reset/MQ/not-a-token/", "password reset: a link that no longer works"),
        (link.removeprefix(live_server.url), "invitation"),
        (f"/s/{one}/", "public share (image)"),
        (f"/s/{many}/", "public share (two)"),
        (f"/s/{gone_token}/", "public share: revoked"),
    ]:
        page.goto(path)
        page.check(label)

    # Staff: the admin index; a member on a manager's page: 403.
    from accounts.models import User
    User.objects.create_superuser("root@kiln.test", PASSWORD)
    login(page, live_server, "root@kiln.test", PASSWORD, "/admin/")
    page.goto("/admin/")
    page.check("admin index")
    page.context.clear_cookies()
    mate = make_member(team, "mate@kiln.test")
    login(page, live_server, mate.email, PASSWORD)
    response = page.goto("/accounts/team/keys/")
    assert response.status == 403
    page.check("403")
    page.report()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_focus_rings_of_an_input_a_button_and_a_link_are_3_to_1(page, live_server, login, transactional_db, owner,
                                                                scheme):
    """axe does not check focus indicators: measured here on the sign-in page (a text input,
    the primary button, a link), reached by Tab."""
    page.emulate_media(color_scheme=scheme)
    page.goto(f"{live_server.url}/accounts/login/")
    rings = {}
    for name, selector in [("input", "input[name=username]"), ("button", "button[type=submit]"),
                           ("link", "main a[href]")]:
        page.locator(selector).first.evaluate("el => el.setAttribute('data-ring', '')")
        page.focus("input[name=username]")
        # Reach it by keyboard, so :focus-visible applies as it does for a person.
        for _ in range(12):
            if page.evaluate("document.activeElement.hasAttribute('data-ring')"):
                break
            page.keyboard.press("Tab")
        rings[name] = focus_ring(page, "[data-ring]")
        page.locator("[data-ring]").evaluate("el => el.removeAttribute('data-ring')")
    for name, ring in rings.items():
        assert ring["focusVisible"], (name, ring)
        assert ring["style"] == "solid" and ring["width"] >= 2, (name, ring)
        assert ring["againstBackground"] >= 3, (name, ring)
        # A ring drawn away from the control (outline-offset > 0) touches only the background;
        # one drawn on its edge must stand out from the control's fill too.
        assert ring["offset"] > 0 or ring["againstControl"] >= 3, (name, ring)
    # The input's ring stands out from the field itself as well (it was a 1.3:1 glow).
    assert rings["input"]["againstControl"] >= 3, rings["input"]


def test_repeated_buttons_say_what_they_act_on(page, live_server, login, owner, team_with_content):
    """Screen readers list buttons by name: "Delete" five times says nothing of which key."""
    login(page, live_server, owner.email, PASSWORD)
    page.goto("/accounts/team/keys/")
    expect(page.get_by_role("button", name="Delete key “Shark production”")).to_have_count(1)
    expect(page.get_by_role("button", name="Disable key “Sealink production”")).to_have_count(1)
    expect(page.get_by_role("button", name="Test key “Gateway production”")).to_have_count(1)
    # What a sighted person sees is unchanged.
    # What a sighted person sees is unchanged: "Delete", the rest visually hidden.
    delete = page.locator("tr[id^=key-] button.danger").first
    assert delete.evaluate("b => b.firstChild.textContent.trim()") == "Delete"
    assert delete.locator(".visually-hidden").evaluate("s => s.getBoundingClientRect().width") <= 1
    page.goto("/accounts/tokens/")
    expect(page.get_by_role("button", name="Revoke token “CI renders”")).to_have_count(1)
    expect(page.get_by_role("button", name="Revoke token “Nightly batch”")).to_have_count(1)
    page.goto("/accounts/team/tokens/")
    expect(page.get_by_role("button", name="Revoke owner@acme.test's token “CI renders”")).to_have_count(1)
    page.goto("/accounts/team/")
    expect(page.get_by_role("button", name="Remove mate@kiln.test")).to_have_count(1)
    expect(page.get_by_role("button", name="Revoke the invitation of newbie@corp.example")).to_have_count(1)
    page.goto("/accounts/team/webhooks/")
    expect(page.get_by_role("link", name="Delivery log of https://ci.example.com/hooks/kiln")).to_have_count(1)
    page.goto("/accounts/team/templates/")
    expect(page.get_by_role("button", name="Delete template “Product shot”")).to_have_count(1)
    page.goto("/boards/")
    expect(page.get_by_role("button", name="Delete board “Coastal moodboard”")).to_have_count(1)
    page.goto("/shares/")
    expect(page.get_by_role("button", name=re.compile("^Revoke the link “Lighthouse” of "))).to_have_count(1)
    assert page.problems == []


def test_videos_are_named_and_the_lightbox_video_waits_under_reduced_motion(page, live_server, login, transactional_db,
                                                                           team, owner):
    from accounts.models import Membership
    from generations.share import services as sharing

    video = make_generation(team, owner, prompt="waves over black sand, slow dolly", kind=Kind.VIDEO,
                            model="alibaba/wan-2.7")
    add_media(video)
    login(page, live_server, owner.email, PASSWORD)
    page.goto(f"/g/{video.public_id}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("waves over black sand, slow dolly")
    expect(page.locator("video.player")).to_have_attribute("aria-label", "Video: waves over black sand, slow dolly")

    page.emulate_media(reduced_motion="reduce")
    page.goto("/gallery/")
    page.locator("[data-card] a.card-media[data-kind=video]").click()
    lightbox_video = page.locator(".lightbox video")
    expect(lightbox_video).to_have_attribute("aria-label", "Video: waves over black sand, slow dolly")
    expect(lightbox_video).to_have_js_property("autoplay", False)
    page.wait_for_function("() => document.querySelector('.lightbox video').readyState >= 1")  # its metadata: preload=metadata may stop there
    assert lightbox_video.evaluate("v => v.paused") is True
    page.keyboard.press("Escape")
    page.emulate_media(reduced_motion="no-preference")
    expect(page.locator(".lightbox")).to_be_hidden()
    page.locator("[data-card] a.card-media[data-kind=video]").click()
    expect(page.locator(".lightbox video")).to_have_js_property("autoplay", True)
    page.keyboard.press("Escape")
    expect(page.locator(".lightbox")).to_be_hidden()

    membership = Membership.objects.get(team=team, user=owner)
    _, token = sharing.create_share(membership, [video], show_prompt=True)
    page.goto(f"/s/{token}/")
    expect(page.locator("video.sp-media")).to_have_attribute("aria-label", "Video: waves over black sand, slow dolly")
    assert page.problems == []


def test_copied_goes_back_to_copy_link(page, live_server, login, transactional_db, team, owner):
    image = make_generation(team, owner, prompt="a lighthouse at dusk")
    add_media(image)
    login(page, live_server, owner.email, PASSWORD)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(f"/g/{image.public_id}/")
    page.click("summary.share-form-title")
    page.get_by_role("button", name="Create share link").click()
    copy = page.locator("button[data-copy='#share-url']")
    expect(copy).to_have_text("Copy link")
    copy.click()
    expect(copy).to_have_text("Copied")
    expect(copy).to_have_text("Copy link", timeout=5_000)
    expect(copy).not_to_have_class(re.compile("is-copied"))
    copy.click()  # and again: the second time it comes back too
    expect(copy).to_have_text("Copied")
    expect(copy).to_have_text("Copy link", timeout=5_000)
    assert page.problems == []


@pytest.mark.parametrize("scheme", SCHEMES)
def test_board_share_and_company_sign_in_pages_have_no_violations(a11y, live_server, login, transactional_db, team,
                                                                  owner, settings, scheme):
    """Pages the other tests do not reach: a board's public link, and the sign-in pages with an
    identity provider configured (its button; with password sign-in off; the team's sign-in
    rules tab that offers it). Rendering them does not call the provider."""
    from accounts.models import Membership
    from accounts.oidc.config import socialaccount_providers
    from generations.boards.models import Board
    from generations.share import services as sharing

    page = a11y
    page.emulate_media(color_scheme=scheme)
    membership = Membership.objects.get(team=team, user=owner)
    image = make_generation(team, owner, prompt="a lighthouse at dusk")
    add_media(image)
    board = Board.objects.create(team=team, name="Coastal moodboard", created_by=owner)
    board.items.create(generation=image, added_by=owner)
    _, board_token = sharing.create_share(membership, [], board=board, title="Coastal moodboard")
    page.goto(f"/s/{board_token}/")
    page.check("public share (a board)")

    config = {"id": "idp", "label": "Acme SSO", "issuer": "https://idp.example.com", "client_id": "kiln",
              "secret": "s" * 40, "scopes": ["openid", "email"], "auth_params": {}, "domains": []}
    settings.KILN_OIDC_PROVIDERS = [config]
    settings.SOCIALACCOUNT_PROVIDERS = socialaccount_providers([config])
    page.goto("/accounts/login/")
    expect(page.get_by_role("button", name="Sign in with Acme SSO")).to_be_visible()
    page.check("sign in (password and identity provider)")
    login(page, live_server, owner.email, PASSWORD)
    page.goto("/accounts/team/sign-in/")
    page.check("team: sign-in (identity provider configured)")
    page.context.clear_cookies()
    settings.KILN_PASSWORD_LOGIN = False
    page.goto("/accounts/login/")
    page.check("sign in (identity provider only)")
    page.report()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_gallery_selection_bar_has_no_violations(a11y, live_server, login, owner, team_with_content, scheme):
    """The bar that appears when results are selected (its own dark colours in either theme)."""
    page = a11y
    page.emulate_media(color_scheme=scheme)
    login(page, live_server, owner.email, PASSWORD)
    page.goto("/gallery/")
    page.locator("[data-card] input[data-select]").first.check()
    expect(page.locator("#bulk-form")).to_be_visible()
    page.check("gallery: a result selected, the selection bar shown")
    page.report()
