"""A base URL given as the provider's host alone works for every provider: Kiln adds the
path each provider's docs give (ShuttleAI's ``/v1/video/generations``; a pasted ``/v1`` or
``/api/v1`` where our paths carry it already). Any other wrong base URL fails a job with
words that say so and names the key (``ROUTE_MISSING``), and "Test key" catches it."""

import pytest

from generations.providers.base import ROUTE_MISSING, Credentials, Job, ProviderError, key_problem
from generations.providers.registry import get_provider
from generations.providers.shuttleai import SORA


@pytest.mark.parametrize(("provider", "given", "called"), [
    ("shuttleai", "", "https://api.shuttleai.com/v1/video/generations"),
    ("shuttleai", "https://api.shuttleai.com", "https://api.shuttleai.com/v1/video/generations"),
    ("shuttleai", "https://api.shuttleai.com/", "https://api.shuttleai.com/v1/video/generations"),
    ("shuttleai", "https://api.shuttleai.com/v1", "https://api.shuttleai.com/v1/video/generations"),
    ("shuttleai", "https://api.shuttleai.com/v1/video/generations/", "https://api.shuttleai.com/v1/video/generations"),
    ("shuttleai", "https://relay.example/shuttle", "https://relay.example/shuttle/v1/video/generations"),
    ("shark", "https://shark.ai", "https://shark.ai"),
    ("shark", "https://shark.ai/api/v1", "https://shark.ai"),
    ("sealink", "https://test.sealink.io", "https://test.sealink.io"),
    ("sealink", "https://test.sealink.io/v1/", "https://test.sealink.io"),
    ("gateway", "https://gw.example", "https://gw.example"),
    ("gateway", "https://gw.example/v1", "https://gw.example"),
])
def test_the_host_alone_or_a_pasted_v1_leads_to_the_documented_api(provider, given, called):
    assert get_provider(provider).base_url(Credentials("k", given)) == called


def test_shuttleai_takes_a_host_alone_against_the_sandbox(sandbox):
    # The sandbox's /shuttleai plays ShuttleAI's host: jobs go to its documented path.
    provider = get_provider("shuttleai")
    job = Job(generation_id="g", model=SORA, operation="text-to-video", prompt="A paper boat",
              params={"width": 480, "height": 480, "n_seconds": 2})
    submitted = provider.submit(job, Credentials("sk-test", sandbox.base_url("shuttleai")))
    assert submitted.job_id.startswith("task_")
    assert sandbox.requests()[-1]["path"] == "/shuttleai/v1/video/generations/jobs"


@pytest.mark.parametrize("provider", ["shuttleai", "shark", "sealink", "gateway"])
def test_a_base_url_with_no_such_route_fails_in_words_that_name_the_base_url(sandbox, provider):
    adapter = get_provider(provider)
    model = adapter.models()[0]
    operation = model.operations[0]
    params, _ = model.clean_params(operation, {})
    job = Job(generation_id="g", model=model, operation=operation, prompt="A kiln at dawn", params=params)
    wrong = f"{sandbox.url}/elsewhere"  # the sandbox answers 404 "No route" here
    with pytest.raises(ProviderError) as refused:
        adapter.submit(job, Credentials("sk-test", wrong))
    exc = refused.value
    assert exc.code == ROUTE_MISSING and exc.status_code == 404 and not exc.retryable
    assert exc.message.startswith(f"Nothing answers POST {wrong}")
    assert "fix it on the provider keys page" in exc.message
    assert key_problem(exc) == exc.message  # a problem of the key, shown on its row


@pytest.mark.parametrize(("status", "code", "message", "is_key_problem"), [
    (401, "invalid_api_key", "Invalid API key.", True),
    (402, "insufficient_credits", "Top up.", True),
    (403, "permission_error", "Not allowed.", True),
    (429, "insufficient_quota", "You exceeded your current quota.", True),
    (429, "rate_limit_exceeded", "Rate limit reached: 2 requests per minute.", False),
    (404, "template_not_found", "Sealink has no prompt template 'tpl_nope'.", False),
    (400, "invalid_request_error", "duration must be between 1 and 16.", False),
    (400, "Arrearage", "Access denied, please make sure your account is in good standing.", True),
    (503, "service_unavailable", "Try later.", False),
])
def test_only_problems_of_the_key_itself_are_key_problems(status, code, message, is_key_problem):
    assert bool(key_problem(ProviderError(message, status_code=status, code=code))) is is_key_problem
