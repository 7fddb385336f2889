"""The studio: pick a model, fill its parameters, submit; what a member sees and what gets created."""

import re
import uuid

import pytest
from django.urls import reverse
from django.utils.html import escape

from accounts.credits.models import LedgerEntry, LedgerKind, Wallet
from accounts.models import Role
from generations.models import Batch, Generation, InputMedia
from generations.providers.registry import get_provider
from generations.services import create_generation, estimate, team_catalog
from tests.conftest import make_member
from tests.generations.studio.conftest import GPT_IMAGE, WAN, form_data

HTMX = {"HX-Request": "true"}
STUDIO = reverse("generations:studio")
GENERATE = reverse("generations:generate")
FIELDS = reverse("generations:studio_fields")
ESTIMATE = reverse("generations:studio_estimate")


def wallet(user, team) -> Wallet:
    return Wallet.objects.get(membership__user=user, membership__team=team)


def field_names(html: str) -> set[str]:
    return set(re.findall(r'name="([^"]+)"', html))


def idempotency_key(html: str) -> str:
    return re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)


# ---------------------------------------------------------------------------
# The page and its fieldset


def test_the_studio_offers_the_teams_models_grouped_by_provider_and_kind(owner_client, every_provider):
    response = owner_client.get(STUDIO)
    html = response.content.decode()
    assert response.status_code == 200
    assert '<optgroup label="Shark AI · Images">' in html
    assert '<optgroup label="Shark AI · Videos">' in html
    assert '<optgroup label="ShuttleAI · Videos">' in html
    first_image = next(e for e in team_catalog(every_provider[0].team) if e.model.kind == "image")
    assert f'value="{first_image.value}" selected' in html  # the first image model by default
    assert 'id="gallery-grid"' in html


def test_a_studio_link_to_a_model_the_team_cannot_use_says_so(owner_client, every_provider):
    """A bookmarked /?model=… whose provider key was disabled: another model, and why."""
    shark = next(key for key in every_provider if key.provider == "shark")
    shark.is_active = False
    shark.save(update_fields=["is_active"])
    html = owner_client.get(STUDIO, {"model": GPT_IMAGE}).content.decode()
    assert "That model is not available to your team" in html
    assert f'value="{GPT_IMAGE}" selected' not in html
    shark.is_active = True
    shark.save(update_fields=["is_active"])
    assert "not available to your team" not in owner_client.get(STUDIO, {"model": GPT_IMAGE}).content.decode()


def test_the_fieldset_swaps_per_model(owner_client, shark):
    image = owner_client.get(FIELDS, {"model": GPT_IMAGE}, headers=HTMX)
    video = owner_client.get(FIELDS, {"model": WAN}, headers=HTMX)
    assert image.status_code == video.status_code == 200
    image_fields, video_fields = field_names(image.content.decode()), field_names(video.content.decode())
    assert {"prompt", "n", "size", "quality", "output_format"} <= image_fields
    assert "resolution" not in image_fields
    assert {"prompt", "duration", "resolution"} <= video_fields
    assert "quality" not in video_fields
    assert "<html" not in image.content.decode()  # a fragment, not the page
    assert image["HX-Push-Url"] == f"{STUDIO}?model=shark%3Aopenai%2Fgpt-image-2"


def test_the_image_to_video_mode_asks_for_a_first_frame(owner_client, shark):
    response = owner_client.get(FIELDS, {"model": WAN, "operation": "image-to-video"}, headers=HTMX)
    names = field_names(response.content.decode())
    assert {"first_frame", "first_frame_media"} <= names


def test_switching_models_keeps_the_prompt_and_the_one_time_key(owner_client, shark):
    response = owner_client.get(FIELDS, {"model": WAN, "prompt": "Waves at night", "idempotency_key": "abc123"},
                                headers=HTMX)
    html = response.content.decode()
    assert "Waves at night" in html
    assert 'name="idempotency_key" value="abc123"' in html


def test_a_team_without_keys_shows_managers_the_way_to_the_keys_page(owner_client, teammate):
    response = owner_client.get(STUDIO)
    assert response.status_code == 200
    assert "No models yet" in response.content.decode()
    assert reverse("accounts:keys") in response.content.decode()


def test_a_member_without_keys_is_told_to_ask_a_manager(teammate_client, owner):
    response = teammate_client.get(STUDIO)
    assert "Ask a team owner or admin" in response.content.decode()
    assert reverse("accounts:keys") not in response.content.decode()


def test_the_model_description_tells_which_providers_cannot_cancel(owner_client, every_provider):
    response = owner_client.get(STUDIO, {"model": "shuttleai:sora"})
    assert escape(get_provider("shuttleai").cancel_help) in response.content.decode()
    response = owner_client.get(STUDIO, {"model": WAN})
    assert escape(get_provider("shark").cancel_help) in response.content.decode()


def test_the_estimate_follows_the_parameters(owner_client, shark):
    one = owner_client.get(ESTIMATE, {"model": GPT_IMAGE, "n": "1"}, headers=HTMX)
    four = owner_client.get(ESTIMATE, {"model": GPT_IMAGE, "n": "4"}, headers=HTMX)
    credits_one = estimate("shark", "openai/gpt-image-2", "text-to-image", {"n": 1})
    credits_four = estimate("shark", "openai/gpt-image-2", "text-to-image", {"n": 4})
    assert credits_four > credits_one
    assert f"{credits_four:,} credits" in four.content.decode()
    assert f"(≈ ${credits_one / 10_000:.2f})" in one.content.decode()
    # Under a cent (no documented model costs so little today) is not shown as "$0.00".
    from generations.gallery.templatetags import usd
    assert usd(30) == "≈ $0.0030"


def test_the_estimate_says_which_values_it_could_not_count(owner_client, shark):
    """A value the form will refuse is not silently priced as the default."""
    fine = owner_client.get(ESTIMATE, {"model": WAN, "duration": "5"}, headers=HTMX).content.decode()
    assert "Not valid yet" not in fine
    html = owner_client.get(ESTIMATE, {"model": WAN, "duration": "99999999999999999999"}, headers=HTMX)
    assert "Not valid yet: Duration" in html.content.decode() and "(its default is counted)" in html.content.decode()


# ---------------------------------------------------------------------------
# Submitting


def test_invalid_values_get_the_schemas_messages_and_create_nothing(owner_client, owner, team, shark):
    before = wallet(owner, team).available
    response = owner_client.post(GENERATE, form_data(n="9", quality="ultra"), headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 422
    assert response["HX-Retarget"] == "#studio-form"
    assert "Must be at most 4." in html
    assert "Choose one of: " in html
    assert Generation.objects.count() == 0
    assert wallet(owner, team).available == before


def test_a_plain_invalid_post_answers_400_with_the_whole_page(owner_client, shark):
    response = owner_client.post(GENERATE, form_data(prompt=""))
    assert response.status_code == 400
    assert "<html" in response.content.decode()
    assert "This field is required." in response.content.decode()
    assert Generation.objects.count() == 0


def test_a_valid_post_creates_one_generation_and_reserves_its_estimate(owner_client, owner, team, shark):
    before = wallet(owner, team)
    data = form_data(n="2", quality="high")
    response = owner_client.post(GENERATE, data, headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    generation = Generation.objects.get()
    assert (generation.model, generation.params["n"], generation.params["quality"]) == ("openai/gpt-image-2", 2, "high")
    assert generation.prompt.text == "A kiln glowing at dusk"
    after = wallet(owner, team)
    assert generation.estimated_cost > 0
    assert after.available == before.available - generation.estimated_cost
    assert after.reserved == before.reserved + generation.estimated_cost
    assert str(generation.public_id) in html  # the new card
    assert 'id="studio-form"' in html and 'hx-swap-oob="true"' in html  # a fresh form...
    assert idempotency_key(html) != data["idempotency_key"]  # ...with a new one-time key
    balance = re.search(r'<a id="header-balance"[^>]*hx-swap-oob="true"[^>]*><span class="amount">([^<]+)</span>', html)
    assert balance and balance.group(1) == f"{after.available:,}"  # the header balance, updated


def test_a_plain_valid_post_redirects_back_to_the_studio(owner_client, shark):
    response = owner_client.post(GENERATE, form_data(model=WAN, prompt="A fox in the snow"))
    assert response.status_code == 302
    assert response["Location"].startswith(STUDIO)
    assert Generation.objects.get().model == "alibaba/wan-2.7"


def test_a_replayed_post_returns_the_same_generation(owner_client, owner, team, shark):
    data = form_data()
    first = owner_client.post(GENERATE, data, headers=HTMX)
    available = wallet(owner, team).available
    second = owner_client.post(GENERATE, data, headers=HTMX)
    generation = Generation.objects.get()
    assert first.status_code == second.status_code == 200
    assert str(generation.public_id) in second.content.decode()
    assert second["HX-Reswap"] == "none"  # the card is already on the page
    assert wallet(owner, team).available == available


def test_compare_sends_the_prompt_to_each_model_in_one_batch(owner_client, owner, team, every_provider):
    before = wallet(owner, team).available
    data = form_data(model=WAN, prompt="A lighthouse in a storm", operation="text-to-video")
    data["compare_models"] = ["shuttleai:sora", "sealink:wan2.6-t2v"]
    response = owner_client.post(GENERATE, data, headers=HTMX)
    assert response.status_code == 200, response.content.decode()[:2000]
    generations = list(Generation.objects.order_by("model"))
    assert sorted(g.model for g in generations) == ["alibaba/wan-2.7", "sora", "wan2.6-t2v"]
    assert Batch.objects.count() == 1
    assert {g.batch_id for g in generations} == {Batch.objects.get().pk}
    reserves = LedgerEntry.objects.filter(kind=LedgerKind.RESERVE)
    assert reserves.count() == 3
    assert wallet(owner, team).available == before - sum(g.estimated_cost for g in generations)
    # Replayed: still three, one batch.
    owner_client.post(GENERATE, data, headers=HTMX)
    assert Generation.objects.count() == 3 and Batch.objects.count() == 1


def test_not_enough_credits_is_a_form_error_and_creates_nothing(client, team, shark):
    poor = make_member(team, "poor@acme.test", Role.MEMBER, credits=10)
    client.force_login(poor)
    needed = estimate("shark", "alibaba/wan-2.7", "text-to-video", {})
    response = client.post(GENERATE, form_data(model=WAN), headers=HTMX)
    assert response.status_code == 422
    assert f"This needs {needed:,} credits and you have 10 available." in response.content.decode()
    assert Generation.objects.count() == 0
    assert wallet(poor, team).available == 10


def test_compare_that_cannot_be_paid_in_full_creates_none_of_them(client, team, every_provider):
    wan = estimate("shark", "alibaba/wan-2.7", "text-to-video", {})
    member = make_member(team, "some@acme.test", Role.MEMBER, credits=wan + 1)
    client.force_login(member)
    data = form_data(model=WAN, operation="text-to-video", compare_models=["shuttleai:sora"])
    response = client.post(GENERATE, data, headers=HTMX)
    assert response.status_code == 422
    assert "credits and you have" in response.content.decode()
    assert Generation.objects.count() == 0 and Batch.objects.count() == 0


def test_a_model_the_team_has_no_key_for_is_refused(owner_client, shark):
    response = owner_client.post(GENERATE, form_data(model="shuttleai:sora"), headers=HTMX)
    assert response.status_code == 422
    assert "not available to your team" in response.content.decode()
    assert Generation.objects.count() == 0


# ---------------------------------------------------------------------------
# Remix and use as input


def test_remix_opens_the_studio_prefilled(owner_client, owner, team, shark):
    membership = owner.memberships.get(team=team)
    original = create_generation(membership=membership, provider_id="shark", model_id="openai/gpt-image-2",
                                 operation="text-to-image", prompt="A teapot of blue glaze",
                                 params={"n": 3, "quality": "low", "size": "1536x1024"})
    response = owner_client.get(STUDIO, {"remix": str(original.public_id)})
    html = response.content.decode()
    assert response.status_code == 200
    assert "A teapot of blue glaze" in html
    assert re.search(r'<option value="low" selected', html)
    assert re.search(r'<option value="1536x1024" selected', html)
    assert re.search(r'name="n" value="3"', html)
    assert f'name="remix_of" value="{original.public_id}"' in html
    owner_client.post(GENERATE, form_data(prompt="A teapot of red glaze", remix_of=str(original.public_id)))
    remix = Generation.objects.exclude(pk=original.pk).get()
    assert (remix.parent, remix.parent_relation) == (original, "remix")


def test_remix_brings_the_gallery_inputs_along(owner_client, owner, team, gallery_image, shark):
    from generations.services import InputSpec

    original = create_generation(membership=owner.memberships.get(team=team), provider_id="shark",
                                 model_id="alibaba/wan-2.7", operation="image-to-video", prompt="The pot turns",
                                 inputs=[InputSpec(role="first_frame", source_media=gallery_image)])
    html = owner_client.get(STUDIO, {"remix": str(original.public_id)}).content.decode()
    assert 'value="image-to-video" checked' in html
    assert f'name="first_frame_media" value="{gallery_image.public_id}"' in html


def test_an_outsider_cannot_remix_a_teams_generation(outsider_client, owner, team, shark, sandbox_key, other_team):
    sandbox_key(other_team, "shark")
    original = create_generation(membership=owner.memberships.get(team=team), provider_id="shark",
                                 model_id="openai/gpt-image-2", operation="text-to-image", prompt="Secret teapot")
    response = outsider_client.get(STUDIO, {"remix": str(original.public_id)})
    assert response.status_code == 404


def test_use_as_first_frame_opens_an_image_to_video_model_with_the_image_picked(owner_client, gallery_image, shark):
    response = owner_client.get(STUDIO, {"first_frame": str(gallery_image.public_id)})
    html = response.content.decode()
    assert re.search(r'<option value="shark:alibaba/wan-2\.\d" selected', html)
    assert 'value="image-to-video" checked' in html
    assert f'name="first_frame_media" value="{gallery_image.public_id}"' in html
    assert reverse("generations:thumbnail", args=[gallery_image.public_id]) in html


def _operation(html: str) -> str:
    """The mode the studio form is in: the checked radio, or the hidden field of a one-mode model."""
    found = re.search(r'type="hidden" name="operation" value="([^"]+)"|name="operation" value="([^"]+)" checked', html)
    return found.group(1) or found.group(2) if found else ""


def _card_menu_link(html: str, media_public_id, label: str) -> str:
    """The href of a card's ⋯ menu item that uses ``media_public_id``, as a browser would follow it."""
    found = re.search(rf'<a href="([^"]*={media_public_id})">{re.escape(label)}</a>', html)
    assert found, f"no {label!r} item in the card menu"
    return found.group(1).replace("&amp;", "&")


def test_use_as_reference_from_a_card_opens_a_model_that_takes_references(owner_client, gallery_image, every_provider):
    gallery = owner_client.get(reverse("generations:gallery")).content.decode()
    response = owner_client.get(_card_menu_link(gallery, gallery_image.public_id, "Use as reference"))
    html = response.content.decode()
    assert response.status_code == 200
    # Not a Vidu Q3 Pro: those declare a reference slot but have no reference-to-video mode.
    assert re.search(r'<option value="gateway:viduq3p-mix-\d+p" selected', html)
    assert _operation(html) == "reference-to-video"
    assert 'id="slot-reference"' in html
    assert f'name="reference_media" value="{gallery_image.public_id}"' in html
    assert "takes no such input" not in html


def test_use_as_reference_keeps_a_model_that_takes_references(owner_client, gallery_image, every_provider):
    response = owner_client.get(STUDIO, {"model": "gateway:viduq3p-mix-720p", "reference": str(gallery_image.public_id)})
    html = response.content.decode()
    assert '<option value="gateway:viduq3p-mix-720p" selected' in html
    assert _operation(html) == "reference-to-video"
    assert f'name="reference_media" value="{gallery_image.public_id}"' in html


def test_use_as_reference_says_plainly_when_no_model_of_the_team_takes_one(owner_client, gallery_image, shark,
                                                                             sandbox_key, team):
    sandbox_key(team, "gateway", models_override="viduq3p-1080p")  # no mix model: no reference-to-video
    response = owner_client.get(STUDIO, {"reference": str(gallery_image.public_id)})
    html = response.content.decode()
    assert response.status_code == 200
    assert "None of the models available to your team takes a reference image" in html
    assert 'name="reference_media"' not in html


@pytest.mark.parametrize(("label", "role", "operation"), [
    ("Animate (first frame)", "first_frame", {"image-to-video"}),
    ("Edit this video", "source_video", {"video-edit"}),
])
def test_every_use_as_item_lands_on_a_model_and_mode_taking_that_input(owner_client, team, owner, every_provider,
                                                                        label, role, operation):
    from tests.generations.studio.conftest import make_gallery_media

    media = make_gallery_media(team, owner, kind="video" if role == "source_video" else "image")
    gallery = owner_client.get(reverse("generations:gallery")).content.decode()
    html = owner_client.get(_card_menu_link(gallery, media.public_id, label)).content.decode()
    assert _operation(html) in operation
    assert f'id="slot-{role}"' in html
    assert f'name="{role}_media" value="{media.public_id}"' in html


@pytest.mark.media
def test_a_gallery_image_can_be_the_first_frame(owner_client, gallery_image, shark):
    data = form_data(model=WAN, operation="image-to-video", first_frame_media=str(gallery_image.public_id))
    response = owner_client.post(GENERATE, data, headers=HTMX)
    assert response.status_code == 200, response.content.decode()[:3000]
    made = Generation.objects.exclude(pk=gallery_image.generation_id).get()
    assert made.operation == "image-to-video"
    assert InputMedia.objects.get(generation=made).source_media == gallery_image


@pytest.mark.media
def test_an_uploaded_first_frame_is_sent(owner_client, shark):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.generations.studio.conftest import png_bytes

    data = form_data(model=WAN, operation="image-to-video")
    data["first_frame"] = SimpleUploadedFile("frame.png", png_bytes(), content_type="image/png")
    response = owner_client.post(GENERATE, data, headers=HTMX)
    assert response.status_code == 200, response.content.decode()[:3000]
    assert InputMedia.objects.get().mime_type == "image/png"


def test_a_file_that_is_not_an_image_is_refused_before_anything_is_spent(owner_client, owner, team, shark):
    from django.core.files.uploadedfile import SimpleUploadedFile

    before = wallet(owner, team).available
    data = form_data(model=WAN, operation="image-to-video")
    data["first_frame"] = SimpleUploadedFile("frame.png", b"<html><script>alert(1)</script></html>", content_type="image/png")
    response = owner_client.post(GENERATE, data, headers=HTMX)
    assert response.status_code == 422
    assert 'class="input-slot has-error"' in response.content.decode()
    assert Generation.objects.count() == 0
    assert wallet(owner, team).available == before


def test_a_missing_first_frame_is_a_clear_error(owner_client, shark):
    response = owner_client.post(GENERATE, form_data(model=WAN, operation="image-to-video"), headers=HTMX)
    assert response.status_code == 422
    assert "upload an image or pick one from the gallery" in response.content.decode()
    assert Generation.objects.count() == 0


@pytest.mark.media
def test_another_teams_media_is_refused_as_an_input(owner_client, outsider_image, shark):
    data = form_data(model=WAN, operation="image-to-video", first_frame_media=str(outsider_image.public_id))
    response = owner_client.post(GENERATE, data, headers=HTMX)
    assert response.status_code == 422
    assert "not in your team&#x27;s gallery" in response.content.decode()
    assert Generation.objects.filter(team__slug="acme").count() == 0


def test_another_teams_media_in_the_link_is_not_picked(owner_client, outsider_image, shark):
    response = owner_client.get(STUDIO, {"first_frame": str(outsider_image.public_id)})
    html = response.content.decode()
    assert response.status_code == 200
    assert "not in your team&#x27;s gallery" in html
    assert str(outsider_image.public_id) not in html.replace(f"first_frame={outsider_image.public_id}", "")


def test_the_picker_lists_only_the_teams_images(owner_client, gallery_image, outsider_image, shark):
    response = owner_client.get(reverse("generations:studio_picker"),
                                {"model": WAN, "operation": "image-to-video", "role": "first_frame"}, headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert str(gallery_image.public_id) in html
    assert str(outsider_image.public_id) not in html


def test_picking_fills_the_slot_and_another_teams_pick_is_refused(owner_client, gallery_image, outsider_image, shark):
    slot = reverse("generations:studio_slot")
    query = {"model": WAN, "operation": "image-to-video", "role": "first_frame"}
    mine = owner_client.get(slot, {**query, "add": str(gallery_image.public_id)}, headers=HTMX)
    theirs = owner_client.get(slot, {**query, "add": str(outsider_image.public_id)}, headers=HTMX)
    assert f'name="first_frame_media" value="{gallery_image.public_id}"' in mine.content.decode()
    assert "not in your team&#x27;s gallery" in theirs.content.decode()
    assert f'value="{outsider_image.public_id}"' not in theirs.content.decode()


# ---------------------------------------------------------------------------
# Who may


@pytest.mark.parametrize("url", [STUDIO, FIELDS, ESTIMATE, reverse("generations:studio_picker")])
def test_anonymous_visitors_are_sent_to_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_anonymous_posts_create_nothing(client, team, shark):
    response = client.post(GENERATE, form_data())
    assert response.status_code == 302
    assert Generation.objects.count() == 0


def test_an_outsider_sees_only_their_own_teams_work(outsider_client, owner, team, shark, sandbox_key, other_team):
    sandbox_key(other_team, "shark")
    create_generation(membership=owner.memberships.get(team=team), provider_id="shark",
                      model_id="openai/gpt-image-2", operation="text-to-image", prompt="Acme's secret vase")
    response = outsider_client.get(STUDIO)
    assert response.status_code == 200
    assert "Acme's secret vase" not in response.content.decode()


def test_an_outsider_generates_in_their_own_team_only(outsider_client, outsider, other_team, team, shark, sandbox_key):
    sandbox_key(other_team, "shark")
    response = outsider_client.post(GENERATE, form_data(), headers=HTMX)
    assert response.status_code == 200
    assert Generation.objects.get().team == other_team


def test_a_user_without_a_team_gets_404(client, db):
    from accounts.models import User

    client.force_login(User.objects.create_user("lonely@example.test", "pw-long-enough-123"))
    assert client.get(STUDIO).status_code == 404
    assert client.post(GENERATE, form_data()).status_code == 404


def test_generate_enforces_csrf(csrf_client, shark):
    response = csrf_client.post(GENERATE, form_data())
    assert response.status_code == 403
    assert Generation.objects.count() == 0


def test_generate_only_accepts_post(owner_client, shark):
    assert owner_client.get(GENERATE).status_code == 405


def test_generate_is_rate_limited_per_member(owner_client, settings, shark):
    settings.KILN_GENERATE_PER_MINUTE = 2
    assert owner_client.post(GENERATE, form_data(), headers=HTMX).status_code == 200
    data = form_data()
    assert owner_client.post(GENERATE, data, headers=HTMX).status_code == 200
    refused = owner_client.post(GENERATE, form_data(), headers=HTMX)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "60"
    assert "at most 2 a minute" in refused.content.decode()
    assert Generation.objects.count() == 2
    assert owner_client.post(GENERATE, data, headers=HTMX).status_code == 200  # a replay is not a new one
    assert Generation.objects.count() == 2


def test_a_forged_idempotency_key_is_refused(owner_client, shark):
    response = owner_client.post(GENERATE, form_data(idempotency_key="x' OR 1=1"), headers=HTMX)
    assert response.status_code == 422
    assert Generation.objects.count() == 0


def test_a_bad_remix_id_is_404(owner_client, shark):
    assert owner_client.get(STUDIO, {"remix": "not-a-uuid"}).status_code == 404
    assert owner_client.get(STUDIO, {"remix": str(uuid.uuid4())}).status_code == 404


def test_a_source_video_declaring_12000x12000_pixels_is_a_clear_400(owner_client, owner, team, every_provider):
    """The report's upload: a 1.7 MB Motion JPEG .mov of 12000x12000 as the video to edit.
    It is refused from its declared size (tests/generations/engine/test_mediafiles.py measures that no
    frame is decoded), and nothing is created or spent."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from generations.sandbox import media as sample

    before = wallet(owner, team).available
    data = form_data(model="sealink:happyhorse-1.0-video-edit", operation="video-edit", prompt="make it snow")
    data["source_video"] = SimpleUploadedFile("bomb.mov", sample.mjpeg_mov(12000), content_type="video/quicktime")
    response = owner_client.post(GENERATE, data)
    assert response.status_code == 400
    assert "at most 8192x8192 is accepted" in response.content.decode()
    assert Generation.objects.count() == 0
    assert wallet(owner, team).available == before


def test_a_missing_input_is_a_named_group_described_by_its_error(owner_client, shark):
    """A refused submit puts focus on the input slot (its file input is drawn as a button): the slot is
    a group named by its label and described by its error, so a screen reader says what is missing."""
    response = owner_client.post(GENERATE, form_data(WAN, operation="image-to-video"), headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 422
    slot = re.search(r'<div class="input-slot has-error" id="slot-first_frame"[^>]*>', html).group(0)
    assert 'role="group"' in slot
    label_id = re.search(r'aria-labelledby="([^"]+)"', slot).group(1)
    assert re.search(rf'id="{label_id}"[^>]*>First frame', html)
    described = re.search(r'aria-describedby="([^"]+)"', slot).group(1).split()
    texts = [re.search(rf'id="{i}"[^>]*>(.*?)</(?:div|p)>', html, re.S).group(1) for i in described]
    assert any("Add the first frame" in text for text in texts)
