"""A failure "because of its input" is recorded where the engine learns it (``error_kind``):
an unknown template, a missing variable, moderation. Key problems, outages and a provider's
internal error are not. Against the sandbox over real HTTP."""

import pytest

from generations.engine.submit import submit
from generations.models import ErrorKind, Generation, Status
from generations.providers import base
from generations.providers.base import ProviderError, request_problem
from generations.services import create_generation
from tests.generations.engine.conftest import drive


@pytest.fixture
def sealink(team, sandbox, sandbox_key):
    sandbox.control(duration=0.3)
    return sandbox_key(team, "sealink")


def template_job(membership, template_id, variables="", prompt=""):
    return create_generation(membership=membership, provider_id="sealink", model_id="wan2.6-t2v",
                             operation="template-to-video", prompt=prompt,
                             params={"template_id": template_id, "variables": variables, "duration": 2})


def test_the_engine_kinds_match_the_models():
    assert {base.INPUT, base.MODERATION} == {ErrorKind.INPUT.value, ErrorKind.MODERATION.value}


def test_an_unknown_template_is_the_requests_fault(membership, sealink):
    generation = template_job(membership, "tpl_does_not_exist", "place=Lisbon")
    assert submit(generation.pk) == "refused"
    generation.refresh_from_db()
    assert (generation.status, generation.error_kind, generation.needs_edit) == (Status.FAILED, "input", True)


def test_a_missing_variable_is_the_requests_fault(membership, sealink):
    generation = template_job(membership, "tpl_sunset", "mood=blue")  # tpl_sunset needs place
    assert submit(generation.pk) == "refused"
    generation.refresh_from_db()
    assert "needs the variable 'place'" in generation.error
    assert generation.error_kind == ErrorKind.INPUT and generation.needs_edit


def test_moderation_of_the_prompt_is_recorded_when_the_task_fails(membership, sealink):
    generation = create_generation(membership=membership, provider_id="sealink", model_id="wan2.6-t2v",
                                   operation="text-to-video", prompt="A fight [moderate]", params={"duration": 2})
    done = drive(generation.pk)
    assert done.status == Status.FAILED
    assert "inappropriate content" in done.error
    assert done.error_kind == ErrorKind.MODERATION and done.needs_edit


def test_a_providers_internal_error_keeps_todays_retry(membership, sealink):
    generation = create_generation(membership=membership, provider_id="sealink", model_id="wan2.6-t2v",
                                   operation="text-to-video", prompt="A lake [fail]", params={"duration": 2})
    done = drive(generation.pk)
    assert done.status == Status.FAILED
    assert (done.error_kind, done.needs_edit) == ("", False)


def test_a_refused_key_is_not_the_requests_fault(membership, team, sandbox, sandbox_key):
    sandbox_key(team, "sealink", api_key="invalid")
    generation = template_job(membership, "tpl_sunset", "place=Lisbon")
    submit(generation.pk)
    generation.refresh_from_db()
    assert generation.status == Status.FAILED
    assert (generation.error_kind, generation.needs_edit) == ("", False)


def test_an_account_in_arrears_is_the_keys_fault_not_the_requests(membership, sandbox, sealink):
    # DashScope refuses an account in arrears with 400 "Arrearage", not 402.
    sandbox.fault("^/sealink/v1/video/generations$", method="POST", status=400, count=1,
                  json={"error": {"message": "Access denied, please make sure your account is in good standing.",
                                  "type": "Arrearage", "code": "Arrearage"}})
    generation = template_job(membership, "tpl_sunset", "place=Lisbon")
    assert submit(generation.pk) == "refused"
    generation.refresh_from_db()
    assert generation.status == Status.FAILED
    assert (generation.error_kind, generation.needs_edit) == ("", False)
    assert "used up its quota or balance: Access denied" in generation.error
    sealink.refresh_from_db()
    assert sealink.last_error.startswith("Quota exhausted (HTTP 400): Access denied")


@pytest.mark.parametrize(("error", "kind"), [
    (ProviderError("bad size", status_code=400), "input"),
    (ProviderError("Your request was rejected by the safety system", status_code=400, code="content_moderation"),
     "moderation"),
    (ProviderError("no such model here", status_code=404, code=base.ROUTE_MISSING), ""),
    (ProviderError("no channel", status_code=400, code=base.MODEL_UNAVAILABLE), ""),
    (ProviderError("bad key", status_code=401), ""),
    (ProviderError("slow down", status_code=429, retryable=True), ""),
    (ProviderError("upstream down", status_code=503, retryable=True), ""),
    (ProviderError("conflict", status_code=409), ""),
    # A 400 about the account, not the request (DashScope's arrears, a spent balance): the key's problem.
    (ProviderError("Access denied, please make sure your account is in good standing.", status_code=400,
                   code="Arrearage"), ""),
    (ProviderError("Access denied, please make sure your account is in good standing.", status_code=400,
                   code="invalid_request_error"), ""),
    (ProviderError("Insufficient balance.", status_code=400, code="invalid_request_error"), ""),
    (ProviderError("You exceeded your current quota.", status_code=400), ""),
])
def test_which_refusals_are_about_the_request(error, kind):
    assert request_problem(error) == kind


def test_a_cancelled_job_never_needs_an_edit(membership, sealink):
    generation = template_job(membership, "tpl_sunset", "place=Lisbon")
    Generation.objects.filter(pk=generation.pk).update(status=Status.CANCELLED, error_kind=ErrorKind.INPUT)
    generation.refresh_from_db()
    assert not generation.needs_edit


@pytest.mark.parametrize("prompt", ["A fight [moderate]", "A fight [unsafe]"])
def test_shark_moderation_at_submit_or_at_the_end_is_recorded(make, sandbox, prompt):
    sandbox.control(duration=0.3)
    done = drive(make(prompt=prompt, model="openai/gpt-image-2", operation="text-to-image").pk)
    assert done.status == Status.FAILED
    assert done.error_kind == ErrorKind.MODERATION and done.needs_edit
