"""Submit: send a queued generation to its provider, exactly once.

The submit rule (never send a job twice)
----------------------------------------
``submit`` claims a queued row by setting ``claimed_at`` (CAS on ``status =
queued AND claimed_at IS NULL``), sends it OUTSIDE any transaction, then saves
the provider's job id with ``status = submitted`` in one UPDATE. From the
claim on, the request may have reached the provider, so the row is never
claimed again, with one exception: when we *know* the provider did not take
the request (the connection was refused or never opened — ``ProviderError.code
== http.NOT_SENT`` — or the provider answered with an HTTP error status), the
claim is cleared and the submit retried with backoff, up to
``MAX_SUBMIT_ATTEMPTS``. An ambiguous failure (a timeout after the request
went out, a 2xx we could not read, an adapter crash) and a worker that dies
between claim and save (found by ``requeue_stuck`` once ``claimed_at`` is
older than ``KILN_SUBMIT_LEASE_SECONDS``) end the row ``expired`` with
``needs_review`` and the reservation held: "Kiln lost track of this job while
sending it; it was not re-sent so you are not charged twice". If the slow
worker does come back with a job id after that, the row is resumed.

Another key when a key is refused
---------------------------------
A team's keys of a provider are in order (the default, then the fallbacks). When the
provider refuses the job's key itself (401, 402, 403, a 429 that says the quota is spent)
or nothing answers the documented route at the key's base URL (``ROUTE_MISSING``), the
provider took nothing: still under the same claim, the row moves to the next active key
that serves its model (``provider_key`` and a line in ``key_note`` change in one UPDATE)
and is sent again with it. A base URL that could not be reached at all (``NOT_SENT``)
moves the job on only when the next key has another base URL; otherwise it is retried
with backoff as above. The refused key gets the problem as its ``last_error``; a
member's mistake (a 400, an unknown template) never touches a key's error.

What is sent is a ``Job`` built from the row (``build_job``): its inputs
inline, or as signed URLs for providers that fetch them, and a webhook URL
when this Kiln has a public https address.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from generations.engine import wakeups
from generations.engine.common import (
    EngineError,
    backoff_seconds,
    credentials_for,
    db_retry,
    end,
    fail,
    jitter,
    model_for,
    provider_name,
    record_key_use,
)
from generations.engine.poll import apply_progress
from generations.models import Generation, InputMedia, ProviderKey, Status
from generations.providers import http
from generations.providers.base import (
    MODEL_UNAVAILABLE,
    ROUTE_MISSING,
    Credentials,
    Job,
    JobInput,
    ModelSpec,
    Provider,
    ProviderError,
    key_problem,
    refuses_key,
    request_problem,
)
from generations.providers.registry import get_provider
from generations.storage_errors import StorageUnavailable

logger = logging.getLogger(__name__)

MAX_SUBMIT_ATTEMPTS = 5          # sends that provably did not reach the provider
INPUT_URL_MAX_AGE = 6 * 3600     # signed input URLs, for providers that fetch inputs


def submit_lease() -> timedelta:
    return timedelta(seconds=settings.KILN_SUBMIT_LEASE_SECONDS)


def input_token(item: InputMedia) -> str:
    return signing.dumps({"i": item.pk, "g": str(item.generation.public_id)}, salt="kiln.input", compress=True)


def input_from_token(token: str) -> InputMedia | None:
    """The InputMedia a signed input URL names, or None if the token is bad or older than INPUT_URL_MAX_AGE.
    (For a view serving inputs to providers that fetch them by URL.)"""
    try:
        data = signing.loads(token, salt="kiln.input", max_age=INPUT_URL_MAX_AGE)
    except signing.BadSignature:
        return None
    return InputMedia.objects.filter(pk=data.get("i"), generation__public_id=data.get("g")).first()


def _input_url(item: InputMedia) -> str | None:
    base = settings.KILN_PUBLIC_URL
    if not base.startswith("https://"):
        return None
    try:
        return base + reverse("generations:input_file", args=[input_token(item)])
    except NoReverseMatch:
        return None


def _webhook_url(generation: Generation) -> str | None:
    if not generation.webhook_token or not settings.KILN_PUBLIC_URL.startswith("https://"):
        return None
    for args in ((generation.provider, generation.webhook_token),):
        try:
            return settings.KILN_PUBLIC_URL + reverse("generations:webhook", args=args)
        except NoReverseMatch:
            continue
    return None


def build_job(generation: Generation, provider: Provider, model: ModelSpec) -> Job:
    inputs = []
    for item in generation.inputs.all():
        with item.file.open("rb") as fh:
            content = fh.read()
        url = None if provider.accepts_inline_inputs else _input_url(item)
        if not provider.accepts_inline_inputs and url is None:
            raise EngineError(f"{provider_name(provider.id)} fetches input files from a public URL and this Kiln has "
                              "none (KILN_PUBLIC_URL).")
        inputs.append(JobInput(role=item.role, mime_type=item.mime_type, content=content, url=url))
    return Job(generation_id=str(generation.public_id), model=model, operation=generation.operation,
               prompt=generation.prompt.text, negative_prompt=generation.prompt.negative_prompt,
               params=dict(generation.params), inputs=tuple(inputs), webhook_url=_webhook_url(generation))


def lost_message(provider_id: str) -> str:
    return (f"Kiln lost track of this job while sending it to {provider_name(provider_id)}; it was not re-sent so "
            "you are not charged twice. The reserved credits are held until an admin reviews it.")


def _known_not_sent(exc: ProviderError) -> bool:
    """True only when the provider certainly did not accept the request."""
    if exc.code == http.NOT_SENT:
        return True
    return exc.status_code is not None and not (200 <= exc.status_code < 300)


def mark_lost(pk: int, claimed_at: datetime, why: str = "") -> bool:
    """A claimed submit whose outcome is unknown: expired, held for review, never re-sent."""
    generation = Generation.objects.filter(pk=pk).only("provider").first()
    if generation is None:
        return False
    message = lost_message(generation.provider)
    moved = db_retry(lambda: end(
        pk, Generation.objects.filter(pk=pk, status=Status.QUEUED, claimed_at=claimed_at, provider_job_id=""),
        status=Status.EXPIRED, needs_review=True, finished_at=timezone.now(), next_poll_at=None, error=message,
        progress=None))
    if moved:
        logger.warning("generation %s: submit outcome unknown (%s); expired for review", pk, why or "worker lost")
    return bool(moved)


def claim_for_submit(pk: int, now: datetime | None = None) -> datetime | None:
    """Claim a queued row for sending; returns the claim time, or None if another worker has it
    (or it is not queued, or its retry is not due yet)."""
    now = now or timezone.now()
    moved = Generation.objects.filter(pk=pk, status=Status.QUEUED, claimed_at__isnull=True).filter(
        Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now)).update(claimed_at=now)
    return now if moved else None


NEXT_KEY = "next key"
MAX_KEY_MOVES = 20               # a team's keys of one provider, at most, tried for one job


def submit(pk: int) -> str:
    """Send a queued generation to its provider (see the module docstring for the rule). Returns what happened.

    Under one claim: when the job's key is refused it moves to the next key and is sent
    again at once (``NEXT_KEY``), until a key takes it or none is left."""
    claimed_at = claim_for_submit(pk)
    if claimed_at is None:
        return "not claimed"
    for _ in range(MAX_KEY_MOVES):
        outcome = _send(pk, claimed_at)
        if outcome != NEXT_KEY:
            return outcome
    fail(pk, Status.QUEUED, "Kiln tried too many of this team's keys for this job.")
    return "failed before sending"


def _send(pk: int, claimed_at: datetime) -> str:
    """One send of a claimed row with the key it names now."""
    try:
        generation = Generation.objects.select_related("provider_key", "prompt", "team").get(pk=pk)
        provider = get_provider(generation.provider)
        model = model_for(generation)
        creds = credentials_for(generation)
        job = build_job(generation, provider, model)
    except (OperationalError, InterfaceError):
        # The database went away before anything was sent: give the claim back so
        # the retried task can take it (else the row would wait out the submit lease).
        db_retry(lambda: Generation.objects.filter(pk=pk, status=Status.QUEUED, claimed_at=claimed_at).update(
            claimed_at=None))
        raise
    except (EngineError, OSError) as exc:
        # Nothing was sent: an honest failure, credits back.
        fail(pk, Status.QUEUED, f"Kiln could not send this job: {exc}")
        return "failed before sending"
    except StorageUnavailable as exc:
        # The inputs could not be read, so nothing was sent: tried again, like a provider not reached.
        logger.error("generation %s: media storage unavailable: %s", pk, exc)
        attempts = generation.error_count + 1
        if attempts >= MAX_SUBMIT_ATTEMPTS:
            fail(pk, Status.QUEUED, f"Kiln could not read this job's input files after {attempts} attempts.")
            return "gave up"
        delay = backoff_seconds(max(2.0, model.poll_interval), attempts - 1)
        _reschedule(pk, claimed_at, delay)
        return "retrying"

    try:
        submitted = provider.submit(job, creds)
    except ProviderError as exc:
        return _submit_error(generation, exc, claimed_at, model)
    except Exception:
        logger.exception("generation %s: the %s adapter crashed while submitting", pk, generation.provider)
        mark_lost(pk, claimed_at, "adapter crashed during submit")
        return "lost"
    record_key_use(generation.provider_key_id, "")

    now = timezone.now()
    deadline = now + timedelta(seconds=provider.timeout_seconds(model, generation.params) + provider.deadline_margin)
    fields = {"status": Status.SUBMITTED, "provider_job_id": str(submitted.job_id or "")[:200], "submitted_at": now,
                  "next_poll_at": now + timedelta(seconds=jitter(model.poll_interval)), "deadline": deadline,
                  "error_count": 0, "error": ""}

    def save() -> int:
        moved = Generation.objects.filter(pk=pk, status=Status.QUEUED, claimed_at=claimed_at).update(**fields)
        if not moved:
            # requeue_stuck gave up on us while the provider was slow: we do know the job now.
            moved = Generation.objects.filter(pk=pk, status=Status.EXPIRED, provider_job_id="",
                                              claimed_at=claimed_at).update(needs_review=False, finished_at=None,
                                                                            **fields)
        return moved

    if not db_retry(save):
        logger.error("generation %s: submitted as %s but the row had moved on", pk, submitted.job_id)
        return "row moved"
    if submitted.result is not None:
        generation.refresh_from_db()
        apply_progress(generation, submitted.result, model)
    return "submitted"


def refusal_message(name: str, exc: ProviderError) -> str:
    """The provider's own words, and when it refused the team's key, what a person can do."""
    words = exc.message or f"{name} refused the job."
    if exc.status_code == 401:
        return (f"{name} did not accept this team's API key: {words} "
                "A team admin can replace the key under Team → Provider keys.")
    if exc.status_code == 402:
        return f"{name} says the account behind this team's API key cannot pay for this: {words}"
    if exc.status_code == 403:
        return f"{name} does not allow this team's API key to do this: {words}"
    if exc.status_code in (400, 429) and refuses_key(exc):
        return f"{name} says this team's API key has used up its quota or balance: {words}"
    if exc.code == MODEL_UNAVAILABLE:
        return (f"{words} ({name} cannot serve this model now: nothing was charged. Choose another model, or ask "
                "the gateway's operator to enable this one.)")
    return words


def _moved_note(name: str, exc: ProviderError, refused: ProviderKey, taken: ProviderKey) -> str:
    """The line a job carries when it left a key: which key, why, and which key took it."""
    words = exc.message.rstrip(". ")
    if exc.code == ROUTE_MISSING:
        why = f"Nothing answers at the base URL of the key “{refused.label}”"
    elif exc.code == http.NOT_SENT:
        why = f"The base URL of the key “{refused.label}” could not be reached ({words})"
    else:
        why = f"{name} refused the key “{refused.label}” (HTTP {exc.status_code}: {words})"
    return f"{why}; sent with “{taken.label}” instead."


def _base_url_of(provider: Provider, key: ProviderKey) -> str:
    try:
        return provider.base_url(Credentials(api_key="", base_url=key.base_url))
    except ProviderError:
        return ""


def _move_to_next_key(generation: Generation, exc: ProviderError, claimed_at: datetime) -> bool:
    """The job's key was refused (or its base URL leads nowhere): point the claimed row at
    the next active key, in the team's order, that serves its model, with a line in
    ``key_note`` saying why. False when there is none (the caller fails the job as before)."""
    current = generation.provider_key
    if current is None:
        return False
    provider = get_provider(generation.provider)
    candidates = ProviderKey.objects.filter(team_id=generation.team_id, provider=generation.provider,
                                            is_active=True).order_by("position", "id")
    for key in candidates:
        if (key.position, key.pk) <= (current.position, current.pk):
            continue
        if provider.get_model(generation.model, key.model_ids or None) is None:
            continue
        if exc.code == http.NOT_SENT and _base_url_of(provider, key) == _base_url_of(provider, current):
            continue  # the same address: it would not be reached either
        name = provider_name(generation.provider)
        note = _moved_note(name, exc, current, key)
        key_note = "\n".join(line for line in (generation.key_note, note[:1000]) if line)
        moved = db_retry(lambda key=key, key_note=key_note: Generation.objects.filter(
            pk=generation.pk, status=Status.QUEUED, claimed_at=claimed_at).update(provider_key=key, key_note=key_note))
        if moved:
            logger.info("generation %s: %s refused key %s (%s); sending it with key %s", generation.pk, name,
                        current.public_id, exc.message, key.public_id)
        return bool(moved)
    return False


def _submit_error(generation: Generation, exc: ProviderError, claimed_at: datetime, model: ModelSpec) -> str:
    pk = generation.pk
    name = provider_name(generation.provider)
    record_key_use(generation.provider_key_id, key_problem(exc) or None, used=exc.code != http.NOT_SENT)
    # Refused or no such route: the provider took nothing, another key may be taken.
    if (refuses_key(exc) or exc.code in (ROUTE_MISSING, http.NOT_SENT)) and _move_to_next_key(
            generation, exc, claimed_at):
        return NEXT_KEY
    if refuses_key(exc):
        exc.retryable = False  # a spent quota (429) does not come back by waiting a few seconds
    if not exc.retryable:
        if exc.code == MODEL_UNAVAILABLE:
            logger.warning("generation %s: %s refused the model %s (HTTP %s): %s; failed and refunded",
                           pk, name, generation.model, exc.status_code, exc.message)
        else:
            logger.info("generation %s: %s refused the job (HTTP %s): %s; failed and refunded",
                        pk, name, exc.status_code, exc.message)
        # An unknown template, a missing variable, moderation: recorded, so the job is edited, not re-sent.
        fail(pk, Status.QUEUED, refusal_message(name, exc), error_kind=request_problem(exc))
        return "refused"
    if not _known_not_sent(exc):
        mark_lost(pk, claimed_at, f"ambiguous submit error: {exc.message}")
        return "lost"
    attempts = generation.error_count + 1
    if attempts >= MAX_SUBMIT_ATTEMPTS:
        fail(pk, Status.QUEUED, f"{name} did not accept the job after {attempts} attempts: {exc.message}")
        return "gave up"
    delay = backoff_seconds(max(2.0, model.poll_interval), attempts - 1, exc.retry_after)
    _reschedule(pk, claimed_at, delay)
    logger.info("generation %s: %s not reached (%s); retrying in %.1fs", pk, name, exc.message, delay)
    return "retrying"


def _reschedule(pk: int, claimed_at: datetime, delay: float) -> None:
    """Nothing was sent: give the claim back, count the attempt, and send again after ``delay``."""
    def reschedule() -> int:
        with transaction.atomic():
            moved = Generation.objects.filter(pk=pk, status=Status.QUEUED, claimed_at=claimed_at).update(
                claimed_at=None, error_count=F("error_count") + 1,
                next_poll_at=timezone.now() + timedelta(seconds=delay))
            if moved:
                wakeups.send_on_commit(wakeups.SUBMIT, pk, countdown=delay)
            return moved

    db_retry(reschedule)
