"""Secrets never travel from a provider's answer to a page, the ledger or the database.

A provider's failure text that contained the team's own API key was shown on the
generation's page to every member and stored in ``Generation.error``, ``raw_payload``
and the ledger's reason. Every string an adapter returns or raises is now redacted where
provider answers enter Kiln (``base.Provider``): the job's key and anything shaped like a
bearer token or an API key."""

import json

import pytest
from django.urls import reverse

from accounts.credits.models import LedgerEntry
from generations.models import Status
from generations.providers.base import Credentials, Progress, Provider, ProviderError, State
from generations.providers.redaction import REDACTED, redact, redact_value
from generations.services import create_generation
from tests.generations.engine.conftest import IMAGE, VIDEO, drive

TEAM_KEY = "sk-team-TopSecret-1234567890-WXYZ"
OTHER_TOKENS = [
    "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJrZXkifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
    "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx",
    "api_key=live_4f9a8b7c6d5e",
]


def _leaks(text: str) -> list[str]:
    secrets = [TEAM_KEY, TEAM_KEY[:-4], "eyJzdWIiOiJrZXkifQ", "AbCdEfGhIjKlMnOpQrStUvWx", "live_4f9a8b7c6d5e"]
    return [s for s in secrets if s in text]


@pytest.fixture
def team_key(team, sandbox_key):
    return sandbox_key(team, "shark", api_key=TEAM_KEY)


def _make(owner, team, model=VIDEO):
    return create_generation(membership=owner.memberships.get(team=team), provider_id="shark", model_id=model,
                             operation="text-to-video" if model == VIDEO else "text-to-image", prompt="a pot")


def test_a_failure_message_with_the_teams_key_is_stored_and_shown_redacted(owner, team, team_key, sandbox,
                                                                           teammate_client):
    generation = drive(_make(owner, team).pk, until={Status.SUBMITTED, Status.RUNNING})
    words = (f"upstream rejected the request sent with key {TEAM_KEY}; headers were "
             f"Authorization: {OTHER_TOKENS[0]} and {OTHER_TOKENS[1]}, {OTHER_TOKENS[2]}")
    sandbox.job(generation.provider_job_id, state="failed", error=words)
    generation = drive(generation.pk)

    assert generation.status == Status.FAILED
    assert "upstream rejected the request sent with key ••••WXYZ; headers were Authorization: Bearer" \
        in generation.error  # the provider's words, minus the secrets
    assert REDACTED in generation.error
    stored = {
        "error": generation.error,
        "raw_payload": json.dumps(generation.raw_payload),
        "ledger": " ".join(LedgerEntry.objects.filter(generation=generation).values_list("reason", flat=True)),
        "page": teammate_client.get(reverse("generations:detail", args=[generation.public_id])).content.decode(),
        "card": teammate_client.get(reverse("generations:card_status", args=[generation.public_id])).content.decode(),
    }
    assert words.split(";")[0].replace(TEAM_KEY, "••••WXYZ") in stored["ledger"]
    assert {where: _leaks(text) for where, text in stored.items()} == {key: [] for key in stored}


def test_a_refused_submit_with_someone_elses_token_in_its_words_is_redacted(owner, team, team_key, sandbox):
    body = {"error": {"message": f"Forwarded to upstream with Authorization: {OTHER_TOKENS[0]} and failed",
                      "type": "upstream_error"}}
    sandbox.fault(r"^/shark/api/v1/images", method="POST", status=400, body=json.dumps(body),
                  headers={"Content-Type": "application/json"})
    generation = drive(_make(owner, team, IMAGE).pk)
    assert generation.status == Status.FAILED
    assert "Forwarded to upstream with Authorization: Bearer [redacted] and failed" in generation.error
    team_key.refresh_from_db()
    assert not _leaks(generation.error) and not _leaks(team_key.last_error)


def test_every_adapter_is_redacted_even_one_written_tomorrow():
    """The redaction is the contract's, not each adapter's: a new adapter that forgets
    gets it anyway, on what it returns and what it raises."""

    class Careless(Provider):
        id = "careless"

        def poll(self, job_id, credentials, *, model):
            return Progress(State.FAILED, provider_status=f"bad key {credentials.api_key}",
                            error=f"key {credentials.api_key} refused", raw={"echo": {"api_key": credentials.api_key,
                                                                                      "note": OTHER_TOKENS[1]}})

        def submit(self, job, credentials):
            raise ProviderError(f"{credentials.api_key} is not valid; {OTHER_TOKENS[2]}")

    creds = Credentials(api_key=TEAM_KEY, base_url="https://api.example.com")
    progress = Careless().poll("job-1", creds, model=None)
    assert progress.error == "key ••••WXYZ refused" and progress.provider_status == "bad key ••••WXYZ"
    assert progress.raw == {"echo": {"api_key": REDACTED, "note": REDACTED}}
    with pytest.raises(ProviderError) as raised:
        Careless().submit(None, creds)
    assert raised.value.message == f"••••WXYZ is not valid; api_key={REDACTED}"


@pytest.mark.parametrize(("text", "expected"), [
    ("Invalid API key: tok-Zq9X-short", "Invalid API key: ••••••••"),  # the job's key, short: bullets only
    ("Authorization: Bearer abcdefgh12345678", f"Authorization: Bearer {REDACTED}"),
    ("auth failed: Basic dXNlcjpwYXNzd29yZA==", f"auth failed: Basic {REDACTED}"),
    ('{"x-api-key": "k-1234567890"}', f'{{"x-api-key": "{REDACTED}"}}'),
    ("see https://cdn.example/o.png?X-Amz-Signature=deadbeefcafe&X-Amz-Expires=60",
     f"see https://cdn.example/o.png?X-Amz-Signature={REDACTED}&X-Amz-Expires=60"),
    ("password: hunter22 rejected", f"password: {REDACTED} rejected"),
    ("AKIAIOSFODNN7EXAMPLE and AIzaSyA-1234567890abcdefghijklmnopqrstu", f"{REDACTED} and {REDACTED}"),
    ("ghp_0123456789abcdefghijklmnopqrstuvwxyzAB, hf_abcdefghijklmnopqrstuvwxyz123456", f"{REDACTED}, {REDACTED}"),
    ("sk_live_0123456789abcdefABCD", REDACTED),
])
def test_what_is_cut(text, expected):
    assert redact(text, "tok-Zq9X-short") == expected


@pytest.mark.parametrize("text", [
    "The prompt was flagged by moderation.", "task_01jwp68a7dfcjv09m05jdgkd8s failed after 3 retries",
    "job 5b0c9a2e-9d3f-4c59-9a57-0f6f8a2b8c11 not found", "max_tokens=4000 is above the limit",
    "https://cdn.example/outputs/abc123/video.mp4", "Token limit exceeded", "duration must be 5 or 10",
    "The key is missing.",
])
def test_what_is_left_alone(text):
    assert redact(text, TEAM_KEY) == text


def test_a_raw_payload_keeps_its_shape():
    raw = {"id": "task_1", "status": "failed", "progress": 30, "headers": {"Authorization": "Bearer abcdefghijkl"},
           "outputs": [{"url": "https://cdn.example/a.png"}], "error": None, "token": ""}
    assert redact_value(raw) == {**raw, "headers": {"Authorization": REDACTED}}
