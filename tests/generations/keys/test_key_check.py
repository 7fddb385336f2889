""""Test key": a harmless read call where the provider has one, its answer in its own words
and the time it took; where the provider has none, the page says so instead of pretending.
Against the sandbox providers over real HTTP."""

import io
import socket

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from generations.keys import services as keys
from generations.keys.models import ProviderKey
from generations.providers.base import Verdict

HTMX = {"HX-Request": "true"}


def at(key, base_url):
    ProviderKey.objects.filter(pk=key.pk).update(base_url=base_url)
    key.refresh_from_db()
    return key


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_gateway_key_is_tested_with_its_model_list(sandbox, sandbox_key, team):
    key = sandbox_key(team, "gateway")
    check = keys.test_key(key)
    assert check.verdict == Verdict.WORKS
    assert check.call == f"GET {sandbox.base_url('gateway')}/v1/models"
    assert check.status_code == 200 and check.latency_ms is not None
    assert '"viduq3p-540p"' in check.answer and '"object": "list"' in check.answer  # its own words
    assert "9 models, 7 of them video" in check.summary
    assert [r["path"] for r in sandbox.requests()] == ["/gateway/v1/models"]


def test_sealink_is_tested_with_its_task_list(sandbox, sandbox_key, team):
    key = sandbox_key(team, "sealink")
    check = keys.test_key(key)
    assert (check.verdict, check.status_code) == (Verdict.WORKS, 200)
    assert "task list answered" in check.summary
    assert check.call.endswith("/sealink/v1/tasks?limit=1")
    assert sandbox.jobs()["jobs"] == []  # nothing was started


@pytest.mark.parametrize("api_key, verdict, status", [
    (None, Verdict.UNKNOWN, 404), ("invalid", Verdict.REFUSED, 401)])
def test_a_sealink_that_serves_no_task_list_is_probed_on_its_documented_task_route(
        sandbox, sandbox_key, team, api_key, verdict, status):
    """The task list is not in Sealink's docs; where it is missing, the key is not called wrong:
    the documented ``GET /v1/tasks/{id}`` is asked for a task that does not exist."""
    key = sandbox_key(team, "sealink", api_key=api_key)
    sandbox.fault("^/sealink/v1/tasks$", status=404, message="No route for GET /v1/tasks.", count=1)
    check = keys.test_key(key)
    assert (check.verdict, check.status_code) == (verdict, status)
    assert check.call.endswith("/sealink/v1/tasks/kiln-key-test")
    if verdict == Verdict.UNKNOWN:
        assert "not found" in check.answer.lower()  # Sealink's own words: the base URL reaches it
        key.refresh_from_db()
        assert key.last_error == ""  # nothing proved either way: the key is not marked
    assert [r["path"] for r in sandbox.requests()] == ["/sealink/v1/tasks", "/sealink/v1/tasks/kiln-key-test"]
    assert sandbox.jobs()["jobs"] == []


@pytest.mark.parametrize("answer", [
    {"status": 404, "json": {"error": {"message": "Task kiln-key-test does not exist.", "type": "invalid_request_error",
                                       "code": "task_not_exist"}}},
    {"status": 404, "json": {"code": "task_not_exist", "message": "task_not_exist", "data": None}},
    {"status": 404, "json": {"error": {"message": "No such task: kiln-key-test", "type": "not_found_error"}}},
    # The documented route answers, just not with a 404: it is served at this base URL.
    {"status": 400, "json": {"error": {"message": "Invalid task id 'kiln-key-test'.", "type": "invalid_request_error",
                                       "code": "invalid_task_id"}}},
    {"status": 200, "json": {"id": "kiln-key-test", "status": "unknown", "data": None}},
])
def test_sealinks_answer_for_an_unknown_task_in_other_words_is_not_called_no_route(sandbox, sandbox_key, team, answer):
    """Where the task list is not served, the documented task route's own answer for a task that
    does not exist shows that the base URL reaches Sealink, whatever words it uses: "Test key"
    said "Nothing answers this call at this base URL" to these, and the member went to change a
    base URL that was right."""
    key = sandbox_key(team, "sealink")
    sandbox.fault("^/sealink/v1/tasks$", status=404, message="No route for GET /v1/tasks.", count=1)
    sandbox.fault("^/sealink/v1/tasks/kiln-key-test$", count=1, **answer)
    check = keys.test_key(key)
    assert (check.verdict, check.status_code) == (Verdict.UNKNOWN, answer["status"]), check.summary
    assert check.call.endswith("/sealink/v1/tasks/kiln-key-test")
    assert "Nothing answers" not in check.summary and "base URL" not in (check.problem or "")


@pytest.mark.parametrize("answer", [
    # Kiln's own rendering of a plain-text 404 starts "HTTP 404 Not Found: ": that and an echo of
    # the path (".../tasks/...") are not Sealink saying it knows no such task.
    {"body": "No route for GET /v1/tasks/kiln-key-test", "content_type": "text/plain"},
    {"body": "<html><title>404 Not Found</title><p>/v1/tasks/kiln-key-test</p></html>"},
    {"json": {"error": {"message": "Invalid URL (GET /v1/tasks/kiln-key-test)", "type": "invalid_request_error"}}},
])
def test_a_base_url_where_neither_task_route_is_served_is_still_no_route(sandbox, sandbox_key, team, answer):
    key = sandbox_key(team, "sealink")
    sandbox.fault("^/sealink/v1/tasks$", status=404, message="No route for GET /v1/tasks.", count=1)
    sandbox.fault("^/sealink/v1/tasks/kiln-key-test$", count=1, status=404, **answer)
    check = keys.test_key(key)
    assert (check.verdict, check.status_code) == (Verdict.FAILED, 404), (check.summary, check.answer)
    assert "Nothing answers this call at this base URL" in check.summary
    assert check.call.endswith("/sealink/v1/tasks?limit=1")


@pytest.mark.parametrize("provider", ["shark", "shuttleai"])
def test_a_provider_without_a_read_call_says_so_and_shows_what_a_probe_got(sandbox, sandbox_key, team, provider):
    key = sandbox_key(team, provider)
    check = keys.test_key(key)
    assert check.verdict == Verdict.UNKNOWN
    assert "has no harmless read call to test a key with" in check.summary
    assert check.status_code == 404 and "not found" in check.answer.lower()  # the provider's "not found"
    assert sandbox.jobs()["jobs"] == []
    key.refresh_from_db()
    assert key.last_error == ""  # nothing proved either way: the key is not marked


@pytest.mark.parametrize("provider", ["shark", "shuttleai", "sealink", "gateway"])
def test_a_refused_key_is_named_refused_and_marked(sandbox, sandbox_key, team, provider):
    key = sandbox_key(team, provider, api_key="invalid")
    check = keys.test_key(key)
    assert (check.verdict, check.status_code) == (Verdict.REFUSED, 401)
    assert "refused this key (HTTP 401)" in check.summary
    key.refresh_from_db()
    assert key.last_error.startswith("HTTP 401: ") and key.last_error_at is not None


def test_a_spent_balance_is_a_refusal_too(sandbox, sandbox_key, team):
    key = sandbox_key(team, "sealink", api_key="broke")
    check = keys.test_key(key)
    assert (check.verdict, check.status_code) == (Verdict.REFUSED, 402)


def test_an_unreachable_base_url_is_named_and_marked(sandbox_key, team, settings):
    key = at(sandbox_key(team, "shark"), f"http://127.0.0.1:{closed_port()}")
    check = keys.test_key(key)
    assert check.verdict == Verdict.UNREACHABLE
    assert "could not reach this base URL" in check.summary
    key.refresh_from_db()
    assert "Could not reach the provider" in key.last_error


def test_a_base_url_that_is_not_the_api_is_caught(sandbox, sandbox_key, team):
    # The sandbox's Sealink mounted under the gateway's prefix: something answers, not Sealink.
    key = at(sandbox_key(team, "sealink"), sandbox.base_url("gateway"))
    check = keys.test_key(key)
    assert (check.verdict, check.status_code) == (Verdict.FAILED, 404)
    assert "Nothing answers this call at this base URL" in check.summary
    key.refresh_from_db()
    assert key.last_error.startswith("No route: GET ")


def test_a_working_test_clears_an_old_key_problem(sandbox, sandbox_key, team):
    key = sandbox_key(team, "gateway")
    ProviderKey.objects.filter(pk=key.pk).update(last_error="HTTP 401: Invalid token")
    keys.test_key(key)
    key.refresh_from_db()
    assert key.last_error == "" and key.last_error_at is None


def test_a_key_echoed_in_an_answer_is_redacted(sandbox, sandbox_key, team):
    clear = "sk-live-EchoedBackByTheProvider-77"
    key = sandbox_key(team, "gateway", api_key=clear)
    sandbox.fault("^/gateway/v1/models$", status=401, message=f"Invalid token {clear}")
    check = keys.test_key(key)
    assert check.verdict == Verdict.REFUSED
    for text in (check.answer, check.summary, check.problem):
        assert clear not in text and clear[:-4] not in text
    key.refresh_from_db()
    assert clear not in key.last_error


# -- the page ------------------------------------------------------------------------------

def test_the_page_shows_the_answer_and_the_latency_in_place(owner_client, sandbox, sandbox_key, team):
    key = sandbox_key(team, "gateway", label="Relay")
    response = owner_client.post(f"/accounts/team/keys/{key.public_id}/test/", headers=HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section class="card keys-card" id="keys-card"')  # the card only, for htmx
    assert "Test of “Relay”:" in body and "The gateway accepted the key." in body
    assert "OpenAI-compatible gateway answered (HTTP 200) in " in body and " ms:" in body
    assert "viduq3p-540p" in body
    # Without JavaScript: the whole page, with the same answer.
    page = owner_client.post(f"/accounts/team/keys/{key.public_id}/test/").content.decode()
    assert "<html" in page and "Test of “Relay”:" in page


def test_testing_is_for_managers_of_the_team_with_a_csrf_token(teammate, outsider, csrf_client, sandbox,
                                                               sandbox_key, team):
    key = sandbox_key(team, "gateway")
    member, stranger = Client(), Client()
    member.force_login(teammate)
    stranger.force_login(outsider)
    for action in ("test", "models"):
        assert member.post(f"/accounts/team/keys/{key.public_id}/{action}/").status_code == 403
        assert stranger.post(f"/accounts/team/keys/{key.public_id}/{action}/").status_code == 404
        assert csrf_client.post(f"/accounts/team/keys/{key.public_id}/{action}/").status_code == 403
    assert sandbox.requests() == []  # none of them reached the provider


def test_providerkeys_test_prints_the_answer_and_fails_on_a_key_problem(sandbox, sandbox_key, team):
    good = sandbox_key(team, "sealink")
    out = io.StringIO()
    call_command("providerkeys", "test", str(good.public_id), stdout=out)
    assert out.getvalue().startswith("Works: Sealink accepted the key.")
    assert "answer: HTTP 200: " in out.getvalue()
    bad = sandbox_key(team, "sealink", api_key="invalid", label="Bad")
    with pytest.raises(CommandError) as failed:
        call_command("providerkeys", "test", str(bad.public_id), stdout=io.StringIO())
    assert failed.value.returncode == 1 and "HTTP 401" in str(failed.value)
