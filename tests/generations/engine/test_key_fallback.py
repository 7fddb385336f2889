"""A job whose key is refused moves to the next active key, says so on the job, and the
refused key is marked; a member's mistake touches no key. Against the sandbox over real
HTTP (the sandbox refuses the key ``invalid`` with 401 and ``broke`` with 402)."""

import socket

import pytest

from generations.engine.submit import submit
from generations.keys import services as keys
from generations.keys.models import ProviderKey
from generations.models import Status
from generations.services import create_generation
from tests.generations.conftest import VIDEO
from tests.generations.engine.conftest import assert_ledger_consistent, drive


def shark_posts(sandbox) -> list[dict]:
    return [r for r in sandbox.requests() if r["method"] == "POST" and r["path"] == "/shark/api/v1/videos"]


@pytest.fixture
def working(shark):
    """The team's first Shark key (the default): the sandbox takes it."""
    ProviderKey.objects.filter(pk=shark.pk).update(label="Working")
    shark.refresh_from_db()
    return shark


def add(team, sandbox_key, label, api_key, *, default=False, **fields):
    key = sandbox_key(team, "shark", api_key=api_key, label=label, **fields)
    if default:
        keys.make_default(key)
        key.refresh_from_db()
    return key


@pytest.mark.parametrize(("api_key", "status"), [("invalid", 401), ("broke", 402)])
def test_a_refused_default_hands_the_job_to_the_next_key_and_the_job_says_so(make, sandbox, sandbox_key, team,
                                                                             working, api_key, status):
    production = add(team, sandbox_key, "Production", api_key, default=True)
    generation = make()
    assert generation.provider_key == production  # the default serves
    done = drive(generation.pk)
    assert done.status == Status.SUCCEEDED, done.error
    assert done.provider_key == working
    assert done.key_note.startswith(f"Shark AI refused the key “Production” (HTTP {status}: ")
    assert done.key_note.endswith("sent with “Working” instead.")
    assert [p["auth"] for p in shark_posts(sandbox)] == [True, True]  # refused once, then taken once
    assert len(sandbox.jobs()["jobs"]) == 1
    production.refresh_from_db()
    working.refresh_from_db()
    assert production.last_error.startswith(f"HTTP {status}: ") and production.last_error_at is not None
    assert working.last_error == "" and working.last_used is not None
    assert_ledger_consistent()


def test_a_spent_quota_is_a_refusal_too(make, sandbox, sandbox_key, team, working):
    production = add(team, sandbox_key, "Production", "sk-quota-spent-0001", default=True)
    sandbox.fault(r"^/shark/api/v1/videos$", method="POST", status=429, count=1,
                  json={"error": {"message": "You exceeded your current quota.", "type": "insufficient_quota"}})
    done = drive(make().pk)
    assert (done.status, done.provider_key) == (Status.SUCCEEDED, working)
    assert "(HTTP 429: You exceeded your current quota)" in done.key_note
    production.refresh_from_db()
    assert production.last_error.startswith("Quota exhausted (HTTP 429)")


def test_a_base_url_with_no_such_route_hands_the_job_on_too(make, sandbox, sandbox_key, team, working):
    wrong = add(team, sandbox_key, "Production", "sk-production-0001", default=True)
    ProviderKey.objects.filter(pk=wrong.pk).update(base_url=f"{sandbox.url}/not-shark")
    done = drive(make().pk)
    assert (done.status, done.provider_key) == (Status.SUCCEEDED, working)
    assert done.key_note == "Nothing answers at the base URL of the key “Production”; sent with “Working” instead."
    wrong.refresh_from_db()
    assert wrong.last_error.startswith(f"Nothing answers POST {sandbox.url}/not-shark/api/v1/videos")


def test_an_unreachable_base_url_hands_on_only_to_a_key_elsewhere(make, sandbox, sandbox_key, team, working):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    down = add(team, sandbox_key, "Production", "sk-production-0001", default=True)
    ProviderKey.objects.filter(pk=down.pk).update(base_url=f"http://127.0.0.1:{closed}")
    done = drive(make().pk)
    assert (done.status, done.provider_key) == (Status.SUCCEEDED, working)
    assert done.key_note.startswith("The base URL of the key “Production” could not be reached (Could not reach")
    down.refresh_from_db()
    assert "Could not reach the provider" in down.last_error


def test_with_no_key_left_the_job_fails_in_the_providers_words(make, sandbox, sandbox_key, team, working,
                                                               membership):
    ProviderKey.objects.filter(pk=working.pk).update(is_active=False)  # the only other key is disabled
    add(team, sandbox_key, "Production", "invalid", default=True)
    generation = make()
    assert submit(generation.pk) == "refused"
    generation.refresh_from_db()
    assert generation.status == Status.FAILED
    assert generation.error.startswith("Shark AI did not accept this team's API key: Invalid API key provided.")
    assert generation.key_note == ""
    membership.wallet.refresh_from_db()
    assert membership.wallet.reserved == 0
    assert_ledger_consistent()


def test_each_refused_key_is_tried_once_in_order(make, sandbox, sandbox_key, team, working):
    add(team, sandbox_key, "First", "invalid", default=True)
    second = add(team, sandbox_key, "Second", "broke")
    keys.move_up(second)  # order: First, Second, Working
    assert [k.label for k in ProviderKey.objects.filter(team=team)] == ["First", "Second", "Working"]
    done = drive(make().pk)
    assert (done.status, done.provider_key) == (Status.SUCCEEDED, working)
    assert done.key_note.splitlines() == [
        "Shark AI refused the key “First” (HTTP 401: Invalid API key provided); sent with “Second” instead.",
        "Shark AI refused the key “Second” (HTTP 402: Insufficient credits. Top up your balance to continue); "
        "sent with “Working” instead."]
    assert len(shark_posts(sandbox)) == 3


def test_a_key_that_does_not_serve_the_model_is_skipped(membership, sandbox, sandbox_key, team):
    relay = sandbox_key(team, "gateway", api_key="invalid", label="Relay")
    sandbox_key(team, "gateway", label="Narrow", models_override="viduq3p-1080p")
    wide = sandbox_key(team, "gateway", label="Wide")
    generation = create_generation(membership=membership, provider_id="gateway", model_id="viduq3p-540p",
                                   operation="text-to-video", prompt="A kiln", params={"duration": 2})
    assert generation.provider_key == relay
    done = drive(generation.pk)
    assert (done.status, done.provider_key) == (Status.SUCCEEDED, wide)
    assert "sent with “Wide” instead" in done.key_note


def test_a_members_mistake_fails_the_job_and_leaves_the_key_alone(membership, sandbox, sandbox_key, team):
    sealink = sandbox_key(team, "sealink")
    sandbox_key(team, "sealink", label="Backup")  # a key the job could have moved to, and must not
    generation = create_generation(membership=membership, provider_id="sealink", model_id="wan2.6-t2v",
                                   operation="template-to-video", prompt="",
                                   params={"template_id": "tpl_does_not_exist", "variables": "place=Lisbon"})
    assert submit(generation.pk) == "refused"
    generation.refresh_from_db()
    assert generation.status == Status.FAILED
    assert "Sealink has no prompt template 'tpl_does_not_exist'" in generation.error
    assert (generation.provider_key, generation.key_note) == (sealink, "")  # not handed on
    sealink.refresh_from_db()
    assert sealink.last_error == "" and sealink.last_used is not None  # used, and no key problem
    assert len([r for r in sandbox.requests() if r["method"] == "POST"]) == 1


def test_a_forgotten_job_is_not_a_key_problem(make, sandbox, working):
    generation = make()
    submit(generation.pk)
    generation.refresh_from_db()
    sandbox.job(generation.provider_job_id, state="vanished")
    done = drive(generation.pk)
    assert done.status == Status.FAILED
    working.refresh_from_db()
    assert working.last_error == ""


def test_a_success_clears_an_old_key_problem(make, sandbox, working):
    ProviderKey.objects.filter(pk=working.pk).update(last_error="HTTP 401: Invalid API key provided.")
    drive(make(prompt="a kiln at noon", model=VIDEO).pk)
    working.refresh_from_db()
    assert working.last_error == "" and working.last_error_at is None
