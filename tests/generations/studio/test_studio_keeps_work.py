"""A studio that keeps your work (issue 16, points 6-8), as the server sees it: no text is
cut silently (a counter's limit instead of a browser's maxlength, a clear refusal that keeps
everything), what a submit or a model switch gives back for the draft, and a member short of
credits told why Generate is off and whom to ask. The browser's half is in
tests/e2e/test_studio_keeps_work_e2e.py."""

import re

import pytest
from django.urls import reverse
from django.utils.html import escape

from accounts.credits.services import grant, wallet_for
from accounts.models import Membership, Role, Team
from generations.models import Generation
from generations.services import estimate
from tests.conftest import make_member
from tests.generations.studio.conftest import GPT_IMAGE, WAN, form_data, make_gallery_media

HTMX = {"HX-Request": "true"}
STUDIO = reverse("generations:studio")
GENERATE = reverse("generations:generate")
FIELDS = reverse("generations:studio_fields")
ESTIMATE = reverse("generations:studio_estimate")
GATEWAY = "gateway:viduq3p-540p"


def textarea(html: str, name: str) -> tuple[str, str]:
    """(the attributes, the text) of the textarea called ``name``."""
    found = re.search(rf'<textarea ([^>]*name="{name}"[^>]*)>(.*?)</textarea>', html, re.S)
    assert found, f"no textarea {name}"
    return found.group(1), found.group(2)


def counter(html: str, field_id: str) -> str:
    found = re.search(rf'<p class="char-count" data-count-for="{field_id}" data-limit="(\d+)">([^<]*)</p>', html)
    assert found, f"no counter for {field_id}"
    return f"{found.group(1)}: {found.group(2)}"


def generate_button(html: str) -> str:
    return re.search(r'<button type="submit" class="primary studio-submit"[^>]*>', html).group(0)


# ---------------------------------------------------------------------------
# 6. Nothing is cut silently


@pytest.mark.parametrize("model, limit", [(GPT_IMAGE, 4000), (GATEWAY, 2000)])
def test_the_prompt_has_a_counter_of_its_models_limit_and_no_maxlength(owner_client, every_provider, model, limit):
    """A browser cuts a paste at maxlength without a word: the limit is the counter's."""
    html = owner_client.get(STUDIO, {"model": model}).content.decode()
    attributes, _ = textarea(html, "prompt")
    assert "maxlength" not in attributes
    assert f'data-limit="{limit}"' in attributes
    assert counter(html, "id_prompt") == f"{limit}: Up to {limit:,} characters"


def test_no_text_field_of_any_model_has_a_maxlength(owner_client, every_provider):
    """The negative prompts (Shark 2,000, Sealink 1,024) and Sealink's template fields too."""
    pages = [owner_client.get(FIELDS, {"model": WAN}, headers=HTMX),
             owner_client.get(FIELDS, {"model": "sealink:wan2.6-t2v"}, headers=HTMX),
             owner_client.get(FIELDS, {"model": "sealink:wan2.6-t2v", "operation": "template-to-video"}, headers=HTMX)]
    wan, sealink, template = (p.content.decode() for p in pages)
    for html in (wan, sealink, template):
        assert "maxlength" not in html
    assert counter(wan, "id_negative_prompt") == "2000: Up to 2,000 characters"
    assert counter(sealink, "id_negative_prompt") == "1024: Up to 1,024 characters"
    assert counter(template, "id_variables") == "20000: Up to 20,000 characters"
    assert counter(template, "id_template_id") == "100: Up to 100 characters"


@pytest.mark.parametrize("model, limit", [(GPT_IMAGE, 4000), (GATEWAY, 2000)])
def test_an_over_long_prompt_is_refused_with_a_message_and_kept_whole(owner_client, every_provider, model, limit):
    prompt = "A paper lantern drifting over a river at night. " * 1041  # 49,968 characters
    data = form_data(model=model, prompt=prompt)
    response = owner_client.post(GENERATE, data, headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 422
    too_many = len(prompt.strip()) - limit
    label = "GPT Image 2" if model == GPT_IMAGE else "Vidu Q3 Pro 540p"
    assert escape(f"{label} takes a prompt of at most {limit:,} characters; this one has {len(prompt.strip()):,} "
                  f"({too_many:,} too many). Nothing was cut: shorten it and generate again.") in html
    _, text = textarea(html, "prompt")
    assert text.strip() == escape(prompt.strip())  # all of it, to shorten
    assert Generation.objects.count() == 0


def test_a_prompt_at_the_limit_goes_through(owner_client, every_provider):
    response = owner_client.post(GENERATE, form_data(model=GATEWAY, prompt="x" * 2000), headers=HTMX)
    assert response.status_code == 200
    assert len(Generation.objects.get().prompt.text) == 2000


def test_a_line_break_counts_as_one_character_as_the_counter_counts_it(owner_client, every_provider):
    """A browser sends line breaks as CRLF: 2,000 characters on screen are 2,000, not 2,039."""
    prompt = "\r\n".join(["y" * 49] * 40)  # 40 lines: 1,960 + 39 breaks = 1,999 on screen
    response = owner_client.post(GENERATE, form_data(model=GATEWAY, prompt=prompt), headers=HTMX)
    assert response.status_code == 200, response.content.decode()[:500]
    assert Generation.objects.get().prompt.text == prompt.replace("\r\n", "\n")


def test_an_over_long_negative_prompt_is_refused_with_its_own_limit(owner_client, every_provider):
    data = form_data(model="sealink:wan2.6-t2v", negative_prompt="blur " * 300)  # 1,499 after trimming
    html = owner_client.post(GENERATE, data, headers=HTMX).content.decode()
    assert ("takes a negative prompt of at most 1,024 characters; this one has 1,499 (475 too many). "
            "Nothing was cut") in html
    assert Generation.objects.count() == 0


# ---------------------------------------------------------------------------
# 7. The draft survives: the server's half


def test_after_a_submit_the_form_keeps_the_picked_input_and_the_compare_ticks(owner_client, owner, team,
                                                                              every_provider):
    media = make_gallery_media(team, owner)
    data = form_data(model="sealink:wan2.6-i2v", operation="image-to-video", prompt="The pot starts to turn",
                     first_frame_media=str(media.public_id), compare_models=["sealink:wan2.6-i2v-flash"])
    response = owner_client.post(GENERATE, data, headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200, html[:1000]
    assert Generation.objects.exclude(pk=media.generation_id).count() == 2
    assert f'name="first_frame_media" value="{media.public_id}"' in html
    assert reverse("generations:thumbnail", args=[media.public_id]) in html  # drawn, not just kept
    assert re.search(r'value="sealink:wan2\.6-i2v-flash"[^>]*checked', html)
    assert "The pot starts to turn" in html


def test_upload_fields_are_kept_across_swaps_by_the_browser(owner_client, shark):
    """No page can give a file back to a file input: htmx keeps the element itself (hx-preserve)."""
    html = owner_client.get(FIELDS, {"model": WAN, "operation": "image-to-video"}, headers=HTMX).content.decode()
    assert re.search(r'<input type="file" name="first_frame"[^>]*hx-preserve="true"[^>]*id="id_first_frame"', html)


def test_a_model_switch_keeps_the_compare_ticks_that_still_apply(owner_client, every_provider):
    query = {"model": "sealink:wan2.6-t2v", "operation": "text-to-video", "prompt": "Dunes",
             "compare_models": ["shark:alibaba/wan-2.7", "shuttleai:sora"]}
    html = owner_client.get(FIELDS, query, headers=HTMX).content.decode()
    assert re.search(r'value="shark:alibaba/wan-2\.7"[^>]*checked', html)
    assert re.search(r'value="shuttleai:sora"[^>]*checked', html)
    assert "<details class=\"studio-group compare\" open>" in html


def test_a_pick_that_is_gone_is_dropped_with_a_word(owner_client, owner, team, shark, outsider_image):
    media = make_gallery_media(team, owner)
    query = {"model": WAN, "operation": "image-to-video", "first_frame_media": str(media.public_id)}
    media.generation.delete()
    html = owner_client.get(FIELDS, query, headers=HTMX).content.decode()
    assert "The first frame picked from the gallery earlier is no longer there" in html
    assert 'name="first_frame_media" value=""' in html or 'name="first_frame_media" id' in html
    # Another team's file is "not there" either.
    query["first_frame_media"] = str(outsider_image.public_id)
    html = owner_client.get(FIELDS, query, headers=HTMX).content.decode()
    assert "no longer there" in html and str(outsider_image.public_id) not in html


def test_a_draft_given_back_on_load_replaces_the_address_instead_of_pushing_one(owner_client, shark):
    switched = owner_client.get(FIELDS, {"model": WAN}, headers=HTMX)
    restored = owner_client.get(FIELDS, {"model": WAN, "restore": "1"}, headers=HTMX)
    assert switched["HX-Push-Url"] == restored["HX-Replace-Url"] == f"{STUDIO}?model=shark%3Aalibaba%2Fwan-2.7"
    assert "HX-Replace-Url" not in switched and "HX-Push-Url" not in restored


def test_the_draft_is_kept_per_team_and_member(client, team, owner, shark):
    """One key per membership: another team's draft (or another person's) is never given back."""
    other = Team.objects.create(slug="other", name="Other")
    Membership.objects.create(team=other, user=owner, role=Role.MEMBER)
    client.force_login(owner)
    html = client.get(STUDIO).content.decode()
    mine = Membership.objects.get(user=owner, team=team)
    assert f'data-draft-key="kiln:studio-draft:{mine.public_id}"' in html
    assert str(Membership.objects.get(user=owner, team=other).public_id) not in html


def test_a_remix_or_use_as_link_fills_the_form_in_place_of_the_draft(owner_client, owner, team, gallery_image, shark):
    plain = owner_client.get(STUDIO, {"model": WAN}).content.decode()
    used = owner_client.get(STUDIO, {"first_frame": str(gallery_image.public_id)}).content.decode()
    remix = owner_client.get(STUDIO, {"remix": str(gallery_image.generation.public_id)}).content.decode()
    assert "data-draft-prefilled" not in plain
    assert "data-draft-prefilled" in used and "data-draft-prefilled" in remix


# ---------------------------------------------------------------------------
# 8. A member with 0 credits


@pytest.fixture
def admin(team):
    user = make_member(team, "ada@acme.test", Role.ADMIN)
    user.name = "Ada Admin"
    user.save(update_fields=["name"])
    return user


def test_a_member_with_no_credits_sees_generate_off_and_whom_to_ask(client, team, owner, admin, shark):
    broke = make_member(team, "new@acme.test", Role.MEMBER, credits=0)
    removed = make_member(team, "gone@acme.test", Role.ADMIN)
    Membership.objects.filter(user=removed).update(removed_at="2026-01-01T00:00:00Z")
    client.force_login(broke)
    html = client.get(STUDIO, {"model": WAN}).content.decode()
    needed = estimate("shark", "alibaba/wan-2.7", "text-to-video", {"duration": "5", "resolution": "720p"})
    assert "disabled" in generate_button(html)
    assert 'aria-describedby="credit-help"' in generate_button(html)
    help_text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", re.search(
        r'<div id="credit-help".*?</div>', html, re.S).group(0))).strip()
    assert help_text == (f"Generate is off: this needs {needed:,} credits and you have 0. "
                         "Credits come from Acme Studio's owners and admins: ask owner@acme.test (owner) "
                         "or Ada Admin (admin) to grant you some; they do it on the team's Credits page.")
    assert '<a href="mailto:ada@acme.test">Ada Admin</a>' in html
    assert "gone@acme.test" not in html  # no longer a member
    # Submitted anyway (no script, an old page): refused, nothing made.
    response = client.post(GENERATE, form_data(model=WAN), headers=HTMX)
    assert response.status_code == 422
    assert "you have 0 available" in response.content.decode()
    assert "Credits come from Acme Studio" in response.content.decode()
    assert Generation.objects.count() == 0


def test_managers_of_another_team_are_never_named(client, team, owner, other_team, outsider, shark):
    broke = make_member(team, "new@acme.test", Role.MEMBER, credits=0)
    client.force_login(broke)
    html = client.get(STUDIO).content.decode()
    assert "owner@acme.test" in html and "outsider@rivals.test" not in html


def test_an_owner_with_no_credits_is_sent_to_the_credits_page(client, team, shark):
    owner = make_member(team, "founder@acme.test", Role.OWNER, credits=0)
    client.force_login(owner)
    html = client.get(STUDIO).content.decode()
    assert "disabled" in generate_button(html)
    assert (f'As an owner of Acme Studio you can grant yourself credits on the '
            f'<a href="{reverse("accounts:wallets")}">Credits page</a>.') in html


def test_generate_comes_back_on_when_the_estimate_fits_the_balance(client, team, owner, shark):
    member = make_member(team, "some@acme.test", Role.MEMBER, credits=0)
    one = estimate("shark", "openai/gpt-image-2", "text-to-image", {"n": 1})
    grant(wallet_for(Membership.objects.get(user=member)), one, reason="a first try")
    client.force_login(member)
    html = client.get(STUDIO, {"model": GPT_IMAGE}).content.decode()
    assert "disabled" not in generate_button(html) and 'id="credit-help"' not in html
    # Four images cost more than the wallet: the estimate turns it off and says why.
    four = client.get(ESTIMATE, form_data(model=GPT_IMAGE, n="4"), headers=HTMX).content.decode()
    assert 'data-affordable="false"' in four and 'id="credit-help"' in four
    assert f"this needs {estimate('shark', 'openai/gpt-image-2', 'text-to-image', {'n': 4}):,} credits and you have {one:,}" in four
    one_again = client.get(ESTIMATE, form_data(model=GPT_IMAGE, n="1"), headers=HTMX).content.decode()
    assert 'data-affordable="true"' in one_again and 'id="credit-help"' not in one_again


def test_the_estimate_of_fields_drawn_for_another_model_counts_the_ticks_kept(owner_client, every_provider):
    query = {"model": "sealink:wan2.6-t2v", "operation": "text-to-video", "prompt": "Dunes",
             "compare_models": ["shark:alibaba/wan-2.7", "sealink:wan2.6-t2v"]}  # itself: not a choice
    html = owner_client.get(FIELDS, query, headers=HTMX).content.decode()
    assert '<span class="estimate-models">for 2 models</span>' in html
