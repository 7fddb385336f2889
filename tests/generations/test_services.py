"""create_generation: everything is checked first, and a refusal leaves nothing behind."""

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.credits import services as credits
from accounts.credits.models import LedgerEntry
from accounts.models import Membership
from generations.models import Generation, InputMedia, Prompt, Status
from generations.sandbox import media as sample
from generations.services import (
    GenerationRejected,
    InputSpec,
    cancel_generation,
    create_generation,
    estimate,
    retry_generation,
    team_catalog,
)
from tests.conftest import make_member, stored_names
from tests.generations.engine.conftest import IMAGE, VIDEO, assert_ledger_consistent, drive


def nothing_created() -> bool:
    return (Generation.objects.count(), Prompt.objects.count(), InputMedia.objects.count(),
            stored_names()) == (0, 0, 0, [])


def png(name="frame.png", size=(320, 240)):
    return SimpleUploadedFile(name, sample.image_bytes(*size, "frame"), content_type="image/png")


def test_it_creates_a_queued_generation_reserves_the_estimate_and_queues_the_submit(
        make, membership, django_capture_on_commit_callbacks):
    before = credits.wallet_for(membership).available
    with django_capture_on_commit_callbacks() as callbacks:
        generation = make(duration="5")
    assert generation.status == Status.QUEUED
    assert generation.estimated_cost == estimate("shark", VIDEO, "text-to-video", {"duration": "5"}) > 0
    assert credits.wallet_for(membership).available == before - generation.estimated_cost
    assert credits.held_for(generation) == generation.estimated_cost
    assert len(callbacks) == 1  # the submit task, enqueued only once the transaction commits
    assert_ledger_consistent()


@pytest.mark.media
def test_a_member_without_enough_credits_gets_the_amounts_and_nothing_is_created(team, shark, settings):
    poor = make_member(team, "poor@acme.test", credits=10)
    membership = Membership.objects.get(user=poor, team=team)
    with pytest.raises(GenerationRejected) as caught:
        create_generation(membership=membership, provider_id="shark", model_id=VIDEO, operation="image-to-video",
                          prompt="move", inputs=[InputSpec("first_frame", upload=png())])
    message = caught.value.errors["__all__"]
    assert message.startswith("This needs ") and "you have 10 available" in message
    assert nothing_created()
    assert LedgerEntry.objects.filter(kind="reserve").count() == 0
    assert credits.wallet_for(membership).available == 10


def test_a_team_without_a_key_is_told_which_provider_and_where_to_add_one(membership, sandbox):
    with pytest.raises(GenerationRejected) as caught:
        create_generation(membership=membership, provider_id="shark", model_id=VIDEO, operation="text-to-video",
                          prompt="x")
    assert "no active Shark AI key" in caught.value.errors["__all__"]
    assert "provider keys page" in caught.value.errors["__all__"]


def test_out_of_range_and_wrong_enum_parameters_are_refused_by_field(make):
    with pytest.raises(GenerationRejected) as caught:
        make(duration="7", resolution="4k")
    assert set(caught.value.errors) >= {"duration", "resolution"}
    assert Generation.objects.count() == 0


@pytest.mark.parametrize(("prompt", "message"), [
    ("", "required"),
    ("bell\x07", "control characters"),
    ("x" * 50_000, "At most"),
])
def test_bad_prompts_are_refused(make, prompt, message):
    with pytest.raises(GenerationRejected) as caught:
        make(prompt=prompt)
    assert message in caught.value.errors["prompt"]


@pytest.mark.media
def test_an_html_file_named_png_is_refused_and_no_file_is_kept(make, settings):
    fake = SimpleUploadedFile("frame.png", b"<!doctype html><p>hi", content_type="image/png")
    with pytest.raises(GenerationRejected) as caught:
        make(operation="image-to-video", inputs=[InputSpec("first_frame", upload=fake)])
    assert "HTML" in caught.value.errors["first_frame"]
    assert nothing_created()


def test_an_input_the_operation_does_not_take_is_refused(make):
    with pytest.raises(GenerationRejected) as caught:
        make(operation="text-to-video", inputs=[InputSpec("first_frame", upload=png())])
    assert "first_frame" in caught.value.errors


def test_a_required_first_frame_must_be_given(make):
    with pytest.raises(GenerationRejected) as caught:
        make(operation="image-to-video")
    assert "required" in caught.value.errors["first_frame"]


@pytest.mark.media
def test_an_input_is_stored_under_a_server_chosen_name_with_its_checked_type(make):
    generation = make(operation="image-to-video", inputs=[InputSpec("first_frame", upload=png("../../evil.png"))])
    item = generation.inputs.get()
    assert (item.mime_type, item.width, item.height) == ("image/png", 320, 240)
    assert "evil" not in item.file.name and item.file.name.startswith(f"inputs/{generation.team.public_id}/")
    assert stored_names() == [item.file.name]
    with item.file.open("rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == item.sha256


def test_the_same_idempotency_key_returns_the_same_generation(make, membership):
    first = create_generation(membership=membership, provider_id="shark", model_id=VIDEO, operation="text-to-video",
                              prompt="twice", idempotency_key="form-123")
    again = create_generation(membership=membership, provider_id="shark", model_id=VIDEO, operation="text-to-video",
                              prompt="twice", idempotency_key="form-123")
    assert again.pk == first.pk
    assert Generation.objects.count() == 1
    assert LedgerEntry.objects.filter(kind="reserve").count() == 1


def test_the_team_budget_refuses_what_would_go_over_it(make, membership):
    cost = estimate("shark", VIDEO, "text-to-video", {})
    membership.team.monthly_budget = cost + cost // 2
    membership.team.save()
    make()
    with pytest.raises(GenerationRejected) as caught:
        make()
    assert "monthly budget" in caught.value.errors["__all__"]
    assert Generation.objects.count() == 1


def test_the_catalog_lists_the_models_of_the_teams_active_keys_only(team, shark, other_team):
    values = {entry.value for entry in team_catalog(team)}
    assert {f"shark:{VIDEO}", f"shark:{IMAGE}"} <= values
    assert team_catalog(other_team) == []
    shark.is_active = False
    shark.save()
    assert team_catalog(team) == []


def test_cancelling_a_queued_job_cancels_it_and_returns_the_credits(make, membership, owner):
    generation = make()
    before = credits.wallet_for(membership).available
    assert cancel_generation(generation, actor=owner) == "Cancelled."
    generation.refresh_from_db()
    assert generation.status == Status.CANCELLED
    assert credits.wallet_for(membership).available == before + generation.estimated_cost
    assert_ledger_consistent()


@pytest.mark.postgres
def test_no_one_sees_a_cancelled_job_whose_credits_are_still_held(make, membership, owner, transactional_db,
                                                                   monkeypatch):
    """``generate --wait`` read a cancelled job between its status and its refund and printed
    "cost not settled · held until an admin reviews it". Another connection, looking at the
    moment the refund is written, must see the job either still queued or cancelled and refunded."""
    import threading

    generation = make()
    seen = []
    release = credits.release

    def look_from_elsewhere(*args, **kwargs):
        def look():
            other = Generation.objects.get(pk=generation.pk)
            seen.append((other.status, credits.held_for(other)))

        reader = threading.Thread(target=look)
        reader.start()
        reader.join()
        return release(*args, **kwargs)

    monkeypatch.setattr(credits, "release", look_from_elsewhere)
    assert cancel_generation(generation, actor=owner) == "Cancelled."
    assert seen == [(Status.QUEUED, generation.estimated_cost)]


def test_cancelling_a_submitted_job_asks_the_provider(make, owner, sandbox):
    sandbox.control(duration=30)
    generation = make()
    drive(generation.pk, until={Status.SUBMITTED, Status.RUNNING})
    generation.refresh_from_db()
    message = cancel_generation(generation, actor=owner)
    generation.refresh_from_db()
    if generation.status == Status.CANCELLED:
        assert message == "Cancelled."
        assert credits.held_for(generation) == 0
    else:  # the sandbox had already started it: Shark answers 409
        assert message == "It had already started; it will finish and be charged."
    assert_ledger_consistent()


def test_a_running_job_cannot_be_cancelled(make, owner, sandbox):
    sandbox.control(duration=6)
    generation = make()
    generation = drive(generation.pk, until={Status.RUNNING})
    assert cancel_generation(generation, actor=owner) == "It had already started; it will finish and be charged."


@pytest.mark.media
def test_retry_makes_a_new_generation_with_the_same_inputs(make, membership):
    first = make(operation="image-to-video", inputs=[InputSpec("first_frame", upload=png())])
    second = retry_generation(first, membership=membership)
    assert (second.parent_id, second.parent_relation, second.prompt.text) == (first.pk, "retry", first.prompt.text)
    assert second.inputs.get().sha256 == first.inputs.get().sha256


def test_a_compare_batch_is_all_or_none_when_one_model_is_refused(membership, shark):
    from generations.models import Batch
    from generations.services import BatchEntry, create_batch

    before = credits.wallet_for(membership).available
    entries = [BatchEntry("shark", VIDEO, "Wan 2.7", {"duration": "5"}),
               BatchEntry("shuttleai", "sora", "Sora", {"width": 480, "height": 480, "n_seconds": 5})]

    with pytest.raises(GenerationRejected) as refused:
        create_batch(membership=membership, entries=entries, operation="text-to-video", prompt="a kiln at dusk")

    assert "Sora:" in str(refused.value) and "ShuttleAI" in str(refused.value)
    assert Generation.objects.count() == 0 and Batch.objects.count() == 0
    assert credits.wallet_for(membership).available == before


def test_a_compare_batch_reserves_each_model_and_a_replay_returns_the_same_batch(membership, shark):
    from generations.services import BatchEntry, create_batch

    before = credits.wallet_for(membership).available
    entries = [BatchEntry("shark", VIDEO, "Wan 2.7", {"duration": "5"}),
               BatchEntry("shark", VIDEO, "Wan 2.7 (10 s)", {"duration": "10"})]

    first = create_batch(membership=membership, entries=entries, operation="text-to-video",
                         prompt="a kiln at dusk", idempotency_key="k-1")
    again = create_batch(membership=membership, entries=entries, operation="text-to-video",
                         prompt="a kiln at dusk", idempotency_key="k-1")

    assert [g.pk for g in again] == [g.pk for g in first] and len(first) == 2
    assert first[0].batch_id == first[1].batch_id is not None
    assert credits.wallet_for(membership).available == before - sum(g.estimated_cost for g in first)


@pytest.mark.media
def test_a_refused_compare_batch_leaves_no_input_files_behind(membership, shark, settings):
    from generations.services import BatchEntry, create_batch

    entries = [BatchEntry("shark", VIDEO, "Wan 2.7", {"duration": "5"}),
               BatchEntry("shuttleai", "sora", "Sora", {"width": 480, "height": 480, "n_seconds": 5})]

    with pytest.raises(GenerationRejected):
        create_batch(membership=membership, entries=entries, operation="image-to-video", prompt="move",
                     inputs=[InputSpec("first_frame", upload=png())])

    assert stored_names() == []


@pytest.mark.media
def test_a_compare_batch_can_start_from_a_gallery_image(membership, shark, team, owner):
    # Every model of the batch checks the same picked Media: its file is opened once per model.
    from generations.services import BatchEntry, create_batch
    from tests.generations.studio.conftest import make_gallery_media

    picked = make_gallery_media(team, owner)
    entries = [BatchEntry("shark", VIDEO, "Wan 2.7", {"duration": "5"}),
               BatchEntry("shark", VIDEO, "Wan 2.7 (10 s)", {"duration": "10"})]

    made = create_batch(membership=membership, entries=entries, operation="image-to-video", prompt="move",
                        inputs=[InputSpec("first_frame", source_media=picked)])

    assert [g.inputs.get().source_media_id for g in made] == [picked.pk, picked.pk]
