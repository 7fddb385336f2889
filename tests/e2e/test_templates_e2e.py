"""Browser: Sealink templates are discoverable (issue 16, point 5).

- A team admin registers a Sealink template id with its variables and a description on the
  team's Templates tab; a member picks it in the studio, fills one field per variable and
  generates against the sandbox.
- A job that failed because of what it asked (an unknown template id) offers "Edit and retry",
  which opens the studio prefilled; picking the registered template fixes it, and the new job
  is linked to the failed one as its retry.

Screenshots at 1280 px and 390 px go to /tmp/shots-templates16/ (KILN_SHOTS_DIR to change it).
"""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from accounts.credits.models import Wallet
from accounts.models import Role
from generations.models import ErrorKind, Generation, Status
from generations.prompt_templates.models import PromptTemplate
from tests.conftest import PASSWORD, make_member
from tests.e2e.test_studio_e2e import eager_tasks, run_engine_until  # noqa: F401 (a fixture)
from tests.generations.prompt_templates.test_templates_views import make_template

SHOTS = Path(os.environ.get("KILN_SHOTS_DIR", "/tmp/shots-templates16"))
T2V = "sealink:wan2.6-t2v"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}


def take(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True, caret="initial")


def both_shots(page, name: str, show: str = "") -> None:
    """At 1280 px (the studio's panel scrolled to ``show``, if given) and at 390 px."""
    if show:
        page.locator(show).evaluate("el => { el.scrollIntoView({block: 'start'}); window.scrollTo(0, 0); }")
    take(page, f"{name}-1280")
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(150)
    take(page, f"{name}-390")
    page.set_viewport_size(DESKTOP)


def problems(page) -> list[str]:
    return [p for p in page.problems if "422" not in p]


def template_mode(page) -> None:
    """The studio on Wan 2.6 text to video, in its "Prompt template to video" mode."""
    page.goto(f"/?model={T2V}")
    page.wait_for_selector("#studio-form")
    page.click(".op-tab:has-text('Prompt template to video')")
    page.wait_for_selector("#studio-fieldset .template-group")
    page.wait_for_load_state("networkidle")


def test_an_admin_registers_a_template_and_a_member_generates_with_it(page, live_server, login, team, teammate,
                                                                     sandbox, sandbox_key, eager_tasks):  # noqa: F811
    sandbox.control(duration=1.0)
    sandbox_key(team, "sealink")
    make_member(team, "admin@acme.test", Role.ADMIN)

    # The admin: Team → Templates, registers Sealink's tpl_product with two variables.
    login(page, live_server, "admin@acme.test", PASSWORD)
    page.goto("/accounts/team/")
    page.click("nav.tabs >> text=Templates")
    page.wait_for_selector("#template-form")
    take(page, "01-templates-empty-1280")
    # A mistake first: an id with a space, a variable name Sealink would refuse. Nothing is saved.
    page.fill("#id_template_id", "tpl product")
    page.fill("#id_name", "Product turntable")
    page.fill("#id_variables-0-name", "1st product")
    expect(page.locator("#template-form")).to_contain_text("Up to 1,000 characters.")
    page.fill("#id_description", "d" * 1001)  # pasted whole, not cut by the browser
    page.click("button:has-text('Register template')")
    expect(page.locator("#template-form")).to_contain_text("A template id is letters, digits and _ - . :")
    expect(page.locator("#template-form")).to_contain_text("is not a variable name Sealink takes")
    expect(page.locator("#template-form")).to_contain_text("Ensure this value has at most 1000 characters (it has 1001).")
    assert len(page.input_value("#id_description")) == 1001  # kept, to be shortened
    both_shots(page, "01-templates-refused")
    assert not PromptTemplate.objects.exists()
    page.fill("#id_template_id", "tpl_product")
    page.fill("#id_name", "Product turntable")
    page.fill("#id_description", "A product turning slowly on a turntable, soft studio light. "
                                 "The surface is white unless you name another.")
    page.fill("#id_variables-0-name", "product")
    page.fill("#id_variables-0-label", "Product")
    page.fill("#id_variables-0-hint", "What turns on the table, e.g. a celadon teapot")
    page.fill("#id_variables-1-name", "surface")
    page.fill("#id_variables-1-label", "Surface")
    page.fill("#id_variables-1-hint", "e.g. walnut, marble")
    page.uncheck("#id_variables-1-required")
    page.click("button:has-text('Register template')")
    expect(page.locator("ul.messages")).to_contain_text("Product turntable")
    expect(page.locator("table.templates")).to_contain_text("tpl_product")
    expect(page.locator("table.templates")).to_contain_text("surface optional")
    both_shots(page, "02-template-registered")
    template = PromptTemplate.objects.get(team=team)
    assert [(v.name, v.required) for v in template.variables.all()] == [("product", True), ("surface", False)]

    # The member: picks it in the studio, fills the product, generates.
    page.context.clear_cookies()
    login(page, live_server, "mate@acme.test", PASSWORD)
    assert page.goto("/accounts/team/templates/").status == 403  # members use templates, admins manage them
    page.problems.clear()  # that 403, which the console reports
    template_mode(page)
    expect(page.locator("#id_template")).to_have_value("tpl_product")
    expect(page.locator(".template-about")).to_contain_text("The surface is white unless you name another.")
    expect(page.locator("label[for=id_var_product]")).to_contain_text("Product")
    expect(page.locator("label[for=id_var_surface]")).to_contain_text("Surface")
    assert not page.locator("#id_template_id").count()
    page.fill("#id_var_product", "a celadon teapot")
    page.fill("#id_prompt", "slow push-in")
    page.wait_for_load_state("networkidle")
    # The draft keeps the template and its variables across a reload.
    page.reload()
    page.wait_for_selector("#id_var_product")
    expect(page.locator("#id_template")).to_have_value("tpl_product")
    expect(page.locator("#id_var_product")).to_have_value("a celadon teapot")
    expect(page.locator("#id_prompt")).to_have_value("slow push-in")
    page.wait_for_load_state("networkidle")
    both_shots(page, "03-studio-template-picked", show=".template-group")

    page.click(".studio-submit")
    page.wait_for_selector("#gallery-grid [data-card]")
    run_engine_until(page, "() => document.querySelector('#gallery-grid [data-card].status-succeeded') !== null")
    generation = Generation.objects.get()
    assert generation.status == Status.SUCCEEDED
    assert (generation.params["template_id"], generation.params["variables"]) == ("tpl_product",
                                                                                  "product=a celadon teapot")
    # The next try keeps the template and what was typed for it.
    expect(page.locator("#id_template")).to_have_value("tpl_product")
    expect(page.locator("#id_var_product")).to_have_value("a celadon teapot")
    page.wait_for_load_state("networkidle")
    both_shots(page, "04-studio-template-generated", show=".template-group")
    assert problems(page) == []


def test_a_job_failed_on_an_unknown_template_is_edited_and_retried(page, live_server, login, team, teammate,
                                                                   sandbox, sandbox_key, eager_tasks):  # noqa: F811
    sandbox.control(duration=1.0)
    sandbox_key(team, "sealink")
    make_template(team, template_id="tpl_product", name="Product turntable",
                  variables=(("product", True), ("surface", False)))
    wallet = Wallet.objects.get(membership__user=teammate, membership__team=team)
    login(page, live_server, "mate@acme.test", PASSWORD)
    template_mode(page)

    # An id typed by hand, with a typo: Sealink answers 404, the job fails at once.
    page.select_option("#id_template", "")
    page.wait_for_selector("#id_template_id")
    page.fill("#id_template_id", "tpl_prodcut")
    page.fill("#id_variables", "product=a walnut bowl")
    page.wait_for_load_state("networkidle")
    # A reload gives back the typed id, not the picker's first template (the draft asks the server
    # for the fields of "another template id").
    page.reload()
    expect(page.locator("#id_template")).to_have_value("")
    expect(page.locator("#id_template_id")).to_have_value("tpl_prodcut")
    expect(page.locator("#id_variables")).to_have_value("product=a walnut bowl")
    page.wait_for_load_state("networkidle")
    page.click(".studio-submit")
    page.wait_for_selector("#gallery-grid [data-card].status-failed")
    failed = Generation.objects.get()
    assert (failed.status, failed.error_kind) == (Status.FAILED, ErrorKind.INPUT)
    assert Wallet.objects.get(pk=wallet.pk).available == wallet.available  # released
    card = page.locator(f"#card-{failed.public_id}")
    expect(card).to_contain_text("Sealink has no prompt template 'tpl_prodcut'")
    card.locator("summary[aria-label='More actions']").click()
    expect(card.locator(".menu a.edit-retry")).to_have_text("Edit and retry")
    assert not card.locator(".menu button:has-text('Retry')").count()  # no blind re-send
    both_shots(page, "05-failed-card-edit-and-retry")

    # Edit and retry: the studio opens with the job in it, saying what failed.
    card.locator(".menu a.edit-retry").click()
    page.wait_for_selector(".edit-banner")
    expect(page.locator(".edit-banner")).to_contain_text("Sealink has no prompt template 'tpl_prodcut'")
    expect(page.locator("#studio-model")).to_have_value(T2V)
    expect(page.locator("#id_template")).to_have_value("")
    expect(page.locator("#id_template_id")).to_have_value("tpl_prodcut")
    expect(page.locator("#id_variables")).to_have_value("product=a walnut bowl")
    page.wait_for_load_state("networkidle")
    both_shots(page, "06-studio-edit-and-retry")

    # The registered template, with the variables already typed, and it goes through.
    page.select_option("#id_template", "tpl_product")
    page.wait_for_selector("#id_var_product")
    expect(page.locator("#id_var_product")).to_have_value("a walnut bowl")
    expect(page.locator(".edit-banner")).to_be_visible()  # still says what is being fixed
    page.fill("#id_var_surface", "marble")
    page.click(".studio-submit")
    expect(page.locator("#gallery-grid [data-card]")).to_have_count(2)
    run_engine_until(page, "() => document.querySelector('#gallery-grid [data-card].status-succeeded') !== null")
    retry = Generation.objects.exclude(pk=failed.pk).get()
    assert (retry.status, retry.parent, retry.parent_relation) == (Status.SUCCEEDED, failed, "retry")
    assert retry.params["template_id"] == "tpl_product"
    assert retry.params["variables"] == "product=a walnut bowl\nsurface=marble"
    page.goto(f"/g/{failed.public_id}/")
    expect(page.locator(".detail-error")).to_contain_text("Sent again as it is, it would fail again")
    expect(page.locator("a.edit-retry")).to_be_visible()
    both_shots(page, "07-failed-detail")
    assert problems(page) == []


@pytest.fixture(autouse=True)
def _shots_dir():
    SHOTS.mkdir(parents=True, exist_ok=True)
