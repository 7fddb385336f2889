"""The service layer: every change a person asks for goes through here.

Views (the studio, the gallery), the ``generate`` command and other rooms call
these functions; they validate everything first and then make the change in
one transaction, so bad input leaves nothing behind: no row, no file, no
reservation. Nothing here calls a provider except ``cancel_generation`` (a
person is waiting for the provider's answer to "cancel").
"""

from __future__ import annotations

import logging
import math
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from accounts.credits import services as credits
from accounts.models import Membership, Team
from generations.engine.common import end
from generations.inputs import CheckedInput, InputRejected, check_media, check_upload
from generations.keys.models import ProviderKey
from generations.models import Batch, Generation, InputMedia, Media, Prompt, Status
from generations.providers.base import CancelResult, ModelSpec, Provider, ProviderError
from generations.providers.registry import PROVIDERS, UnknownProvider, get_provider, provider_name
from generations.storage_errors import StorageUnavailable

logger = logging.getLogger(__name__)

ALL = "__all__"
# Newlines and tabs are fine in a prompt; other control characters are not.
_PROMPT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029]")
IDEMPOTENCY_KEY_MAX = 64


class GenerationRejected(Exception):
    """Why a generation cannot be made: ``errors`` maps a field name (``__all__``
    for the form as a whole) to a message for the person who asked."""

    def __init__(self, errors: Mapping[str, str] | str):
        self.errors: dict[str, str] = {ALL: errors} if isinstance(errors, str) else dict(errors)
        super().__init__(self.summary())

    def summary(self) -> str:
        parts = [msg if field == ALL else f"{field}: {msg}" for field, msg in self.errors.items()]
        return " ".join(parts)


class NeedsEdit(GenerationRejected):
    """A retry of a job that failed because of what it asked (``Generation.needs_edit``):
    the same request would be refused again, so it is edited in the studio instead."""

    def __init__(self, generation: Generation):
        self.generation = generation
        what = "content moderation refused it" if generation.error_kind == "moderation" else (
            f"{provider_name(generation.provider)} refused what it asked")
        super().__init__(f"This job failed because {what}: sent again unchanged it would fail again. "
                         "Edit it in the studio and generate.")


@dataclass
class InputSpec:
    """One input file: an upload, or media from the team's gallery."""

    role: str
    upload: File | None = None
    source_media: Media | None = None


@dataclass(frozen=True)
class CatalogEntry:
    provider_id: str
    provider_name: str
    model: ModelSpec
    key: ProviderKey

    @property
    def kind(self) -> str:
        return self.model.kind

    @property
    def value(self) -> str:
        """``provider:model``, the form value that names this entry."""
        return f"{self.provider_id}:{self.model.id}"


def _keys_page_hint() -> str:
    try:
        url = reverse("accounts:keys")
    except NoReverseMatch:
        return "A team owner or admin can add one on the team's provider keys page."
    return f"A team owner or admin can add one on the provider keys page ({url})."


def _active_keys(team: Team, provider_id: str):
    """The team's active keys of a provider in their order: the default, then the fallbacks."""
    return ProviderKey.objects.filter(team=team, provider=provider_id, is_active=True).order_by("position", "id")


def _key_and_model(team: Team, provider: Provider, model_id: str) -> tuple[ProviderKey | None, ModelSpec | None]:
    """The first of the team's active keys of the provider, in their order, that serves
    ``model_id`` (the default unless it is disabled or does not list the model), and the
    model as that key sees it. If the default is refused when the job is sent, the engine
    moves the job on to the next key (``generations.engine``)."""
    keys = list(_active_keys(team, provider.id))
    for key in keys:
        model = provider.get_model(model_id, key.model_ids or None)
        if model is not None:
            return key, model
    return (keys[0] if keys else None), None


def team_catalog(team: Team) -> list[CatalogEntry]:
    """The models the team can use now (through an active key), grouped by provider then kind.
    Each entry names the key that serves it: the first active key, in order, that lists it."""
    entries: dict[tuple[str, str], CatalogEntry] = {}
    keys = ProviderKey.objects.filter(team=team, is_active=True).order_by("provider", "position", "id")
    for key in keys:
        try:
            provider = get_provider(key.provider)
        except (UnknownProvider, ImportError, AttributeError):
            logger.warning("Provider %r of key %s is not available", key.provider, key.public_id)
            continue
        for model in provider.models(key.model_ids or None):
            entries.setdefault((key.provider, model.id), CatalogEntry(key.provider, provider_name(key.provider), model, key))
    order = {pid: index for index, pid in enumerate(PROVIDERS)}
    return sorted(entries.values(), key=lambda e: (order.get(e.provider_id, 99), e.model.kind, e.model.label.lower()))


def estimate(provider_id: str, model_id: str, operation: str, params: Mapping[str, Any], *,
             team: Team | None = None) -> int:
    """Estimated credits for a job; invalid or unknown input gives a best-effort figure (0 if nothing is known).
    With ``team``, the model as the team's key sees it (a gateway's own list offers models its docs do not name)."""
    try:
        provider = get_provider(provider_id)
    except (UnknownProvider, ImportError, AttributeError):
        return 0
    model = _key_and_model(team, provider, model_id)[1] if team is not None else None
    return estimate_model(model or provider.get_model(model_id) or provider.job_model(model_id), operation, params)


def estimate_entry(entry: CatalogEntry, operation: str, params: Mapping[str, Any]) -> int:
    """``estimate`` for a model of the team's catalog (``team_catalog``, read in this request):
    its entry already holds the model as the team's key sees it, so no query."""
    return estimate_model(entry.model, operation, params)


def estimate_model(model: ModelSpec | None, operation: str, params: Mapping[str, Any]) -> int:
    if model is None or operation not in model.operations:
        return 0
    cleaned, _errors = model.clean_params(operation, _with_defaults(model, operation, params))
    try:
        return model.estimate(cleaned, operation)
    except (KeyError, TypeError, ValueError, ArithmeticError):
        # A partial form: fall back to the defaults for what is missing or wrong.
        defaults, _ = model.clean_params(operation, {})
        try:
            return model.estimate(defaults, operation)
        except (KeyError, TypeError, ValueError, ArithmeticError):
            return 0


def _with_defaults(model: ModelSpec, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters left out entirely take the schema's default (a field sent blank is still "required")."""
    return {**{p.name: p.default for p in model.params_for(operation) if p.default is not None}, **params}


def _check_prompt(model: ModelSpec, operation: str, prompt: str, negative_prompt: str,
                  errors: dict[str, str]) -> tuple[str, str]:
    prompt = prompt if isinstance(prompt, str) else ""
    negative_prompt = negative_prompt if isinstance(negative_prompt, str) else ""
    if _PROMPT_CONTROL.search(prompt):
        errors["prompt"] = "The prompt contains control characters."
    prompt = prompt.strip()
    if model.prompt_required_for(operation) and not prompt and "prompt" not in errors:
        errors["prompt"] = "Describe what to make: the prompt is required."
    elif len(prompt) > model.prompt_max_length:
        errors["prompt"] = f"At most {model.prompt_max_length:,} characters (this has {len(prompt):,})."
    if negative_prompt.strip():
        if not model.negative_prompt:
            errors["negative_prompt"] = f"{model.label} does not take a negative prompt."
        elif _PROMPT_CONTROL.search(negative_prompt):
            errors["negative_prompt"] = "The negative prompt contains control characters."
        elif len(negative_prompt.strip()) > (limit := model.negative_prompt_limit):
            errors["negative_prompt"] = f"At most {limit:,} characters (this has {len(negative_prompt.strip()):,})."
    return prompt, negative_prompt.strip()


def _check_inputs(model: ModelSpec, operation: str, inputs: Sequence[InputSpec], team: Team,
                  errors: dict[str, str]) -> list[CheckedInput]:
    slots = {slot.role: slot for slot in model.inputs_for(operation)}
    by_role: dict[str, list[InputSpec]] = {}
    for spec in inputs:
        if spec.upload is None and spec.source_media is None:
            continue
        by_role.setdefault(spec.role, []).append(spec)
    checked: list[CheckedInput] = []
    for role, specs in by_role.items():
        slot = slots.get(role)
        if slot is None:
            label = role.replace("_", " ")
            errors[role] = f"{model.label} does not take a {label} for {operation.replace('-', ' ')}."
            continue
        if len(specs) > slot.max_count:
            errors[role] = f"At most {slot.max_count} file{'s' if slot.max_count > 1 else ''} here."
            continue
        for spec in specs:
            try:
                if spec.source_media is not None:
                    checked.append(check_media(spec.source_media, role=role, expected_kind=slot.kind, team_id=team.pk))
                else:
                    checked.append(check_upload(spec.upload, role=role, expected_kind=slot.kind))
            except InputRejected as exc:
                errors[role] = str(exc)
                break
    for role, slot in slots.items():
        if slot.required and role not in by_role and role not in errors:
            errors[role] = f"{slot.label or role.replace('_', ' ').capitalize()} is required for this model."
    return checked


def _check_input_delivery(provider: Provider, checked: list[CheckedInput], errors: dict[str, str]) -> None:
    """Inputs go inline, or as signed URLs under an https KILN_PUBLIC_URL: refuse now if neither can work."""
    if checked and not provider.accepts_inline_inputs and not settings.KILN_PUBLIC_URL.startswith("https://"):
        errors[ALL] = (f"{provider_name(provider.id)} fetches input files from a public URL, and this Kiln "
                       "has none (KILN_PUBLIC_URL is not an https address).")


def _webhook_token(provider: Provider) -> str:
    if provider.supports_webhooks and settings.KILN_PUBLIC_URL.startswith("https://"):
        return secrets.token_urlsafe(32)
    return ""


def create_generation(*, membership: Membership, provider_id: str, model_id: str, operation: str, prompt: str,
                      negative_prompt: str = "", params: Mapping[str, Any] | None = None,
                      inputs: Sequence[InputSpec] = (), idempotency_key: str | None = None,
                      parent: Generation | None = None, parent_relation: str = "",
                      batch: Batch | None = None, entry: CatalogEntry | None = None) -> Generation:
    """Validate a request, then create the generation, reserve its credits and queue its submit.

    Raises GenerationRejected (with messages by field) and leaves nothing
    behind. A repeated ``idempotency_key`` of the same author returns the
    generation the first request made.

    ``entry``: the team's catalog entry for this provider and model, as the caller read it in
    this request (``team_catalog``); its key and model are used instead of reading the team's
    keys again. One that is not this team's, provider and model is ignored.
    """
    user = membership.user
    if idempotency_key is not None:
        idempotency_key = str(idempotency_key).strip()[:IDEMPOTENCY_KEY_MAX] or None
    if idempotency_key:
        existing = Generation.objects.filter(author=user, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    if getattr(membership, "removed_at", None) is not None:
        raise GenerationRejected("You are no longer a member of this team.")
    team = membership.team
    errors: dict[str, str] = {}

    # What to run and with which key.
    try:
        provider = get_provider(provider_id)
    except (UnknownProvider, ImportError, AttributeError):
        raise GenerationRejected({"model": f"Unknown provider “{provider_id}”."}) from None
    if (entry is not None and entry.key.team_id == team.pk and entry.provider_id == provider.id
            and entry.model.id == model_id):
        key, model = entry.key, entry.model
    else:
        key, model = _key_and_model(team, provider, model_id)
    if key is None:
        raise GenerationRejected({ALL: f"Your team has no active {provider_name(provider_id)} key. {_keys_page_hint()}"})
    if model is None:
        raise GenerationRejected({"model": f"{provider_name(provider_id)} has no model “{model_id}” for this team."})
    if operation not in model.operations:
        choices = ", ".join(op.replace("-", " ") for op in model.operations)
        raise GenerationRejected({"operation": f"{model.label} does not do {operation.replace('-', ' ')}; it does: {choices}."})

    cleaned, param_errors = model.clean_params(operation, _with_defaults(model, operation, params or {}))
    errors.update(param_errors)
    prompt, negative_prompt = _check_prompt(model, operation, prompt, negative_prompt, errors)
    checked = _check_inputs(model, operation, inputs, team, errors)
    _check_input_delivery(provider, checked, errors)
    if parent is not None and parent.team_id != team.pk:
        errors[ALL] = "That generation is not in this team."
    if batch is not None and batch.team_id != team.pk:
        errors[ALL] = "That batch is not in this team."
    if errors:
        raise GenerationRejected(errors)
    cost = model.estimate(cleaned, operation)

    saved_files: list[tuple[Any, str]] = []
    try:
        with transaction.atomic():
            credits.check_budget(team, cost)
            prompt_row = Prompt.objects.create(team=team, author=user, text=prompt, negative_prompt=negative_prompt)
            generation = Generation.objects.create(
                team=team, author=user, prompt=prompt_row, provider=provider.id, model=model.id, kind=model.kind,
                operation=operation, params=cleaned, provider_key=key, status=Status.QUEUED,
                estimated_cost=cost, idempotency_key=idempotency_key or None, parent=parent,
                parent_relation=parent_relation if parent is not None else "", batch=batch,
                webhook_token=_webhook_token(provider),
            )
            credits.reserve(credits.wallet_for(membership), generation, cost)
            # Files last: only once the reservation succeeded. If anything after
            # this fails, the except below removes them (the rows roll back).
            positions: dict[str, int] = {}
            for item in checked:
                position = positions.get(item.role, 0)
                positions[item.role] = position + 1
                row = InputMedia(generation=generation, role=item.role, position=position, mime_type=item.mime_type,
                                 bytes=item.bytes, sha256=item.sha256, width=item.width, height=item.height,
                                 source_media_id=item.source_media_id)
                row.file.save(f"input.{item.ext}", ContentFile(item.content), save=False)
                saved_files.append((row.file.storage, row.file.name))
                row.save()
            from generations.tasks import submit_generation

            # robust: a broker that is down must not turn a created, paid-for generation into an
            # error page; the row is queued in the database and requeue_stuck sends it later.
            transaction.on_commit(lambda pk=generation.pk: submit_generation.delay(pk), robust=True)
    except credits.InsufficientCredits as exc:
        _delete_files(saved_files)
        raise GenerationRejected({ALL: str(exc)}) from exc  # the API names the cause
    except credits.BudgetExceeded as exc:
        _delete_files(saved_files)
        raise GenerationRejected({ALL: str(exc)}) from exc
    except IntegrityError:
        _delete_files(saved_files)
        if idempotency_key:
            existing = Generation.objects.filter(author=user, idempotency_key=idempotency_key).first()
            if existing is not None:  # a double click that raced us: the first one won
                return existing
        raise
    except BaseException:
        _delete_files(saved_files)
        raise
    return generation


def generate_per_minute() -> int:
    """How many generations a member may start in a minute (``KILN_GENERATE_PER_MINUTE``)."""
    return settings.KILN_GENERATE_PER_MINUTE


def over_rate_limit(user, wanted: int) -> bool:
    """Per member, across every process: the generations they started in the last minute."""
    since = timezone.now() - timedelta(minutes=1)
    return Generation.objects.filter(author=user, created__gte=since).count() + wanted > generate_per_minute()


def create_within_limit[T](membership: Membership, wanted: int, create: Callable[[], T], *,
                           existing: Callable[[], T | None] | None = None) -> T | None:
    """Call ``create`` if the member's last minute has room for ``wanted`` more generations; None if not.

    Counting and creating are one transaction that first takes the member's membership row
    (a no-op UPDATE: a row lock on PostgreSQL, the write lock on SQLite), so a member's
    concurrent submits count one after another: each sees the rows the one before made.
    Counted, then created without it, 48 concurrent submits got 35 through a limit of 30.
    The studio's form and the API's create both go through here.

    ``existing``, asked first under the same lock, finds what an earlier request with the
    same idempotency key made: that is answered again and counts for nothing, so of several
    concurrent repeats one creates and the others wait for it and get its result."""
    with transaction.atomic():
        Membership.objects.filter(pk=membership.pk).update(role=F("role"))
        if existing is not None and (found := existing()) is not None:
            return found
        if wanted and over_rate_limit(membership.user, wanted):
            return None
        return create()


def rate_limit_retry_after(user) -> int:
    """Seconds until the member's oldest generation of the last minute leaves it (1 to 60)."""
    since = timezone.now() - timedelta(minutes=1)
    oldest = Generation.objects.filter(author=user, created__gte=since).order_by("created").values_list(
        "created", flat=True).first()
    if oldest is None:
        return 1
    return max(1, min(60, math.ceil((oldest - since).total_seconds())))


def _delete_files(saved: list[tuple[Any, str]]) -> None:
    for storage, name in saved:
        try:
            storage.delete(name)
        except (OSError, StorageUnavailable):
            logger.warning("Could not remove %s after a refused generation", name)


def _same_inputs(generation: Generation) -> list[InputSpec]:
    specs = []
    for item in generation.inputs.all():
        item.file.open("rb")
        specs.append(InputSpec(role=item.role, upload=File(item.file.file, name=item.file.name)))
    return specs


def retry_generation(generation: Generation, *, membership: Membership) -> Generation:
    """A new generation with the same prompt, model, parameters and inputs (relation "retry"),
    paid by ``membership``. Raises GenerationRejected like ``create_generation``, and
    NeedsEdit, before anything is reserved, for a job that failed because of what it asked."""
    if generation.team_id != membership.team_id:
        raise GenerationRejected("That generation is not in this team.")
    if generation.needs_edit:
        raise NeedsEdit(generation)
    specs = _same_inputs(generation)
    try:
        return create_generation(
            membership=membership, provider_id=generation.provider, model_id=generation.model,
            operation=generation.operation, prompt=generation.prompt.text,
            negative_prompt=generation.prompt.negative_prompt, params=generation.params, inputs=specs,
            parent=generation, parent_relation="retry", batch=None,
        )
    finally:
        for spec in specs:
            spec.upload.close()


@dataclass(frozen=True)
class BatchEntry:
    """One model of a compare batch, with the parameters that fit it."""

    provider_id: str
    model_id: str
    label: str
    params: Mapping[str, Any]


def create_batch(*, membership: Membership, entries: Sequence[BatchEntry], operation: str, prompt: str,
                 negative_prompt: str = "", inputs: Sequence[InputSpec] = (), idempotency_key: str | None = None,
                 parent: Generation | None = None, parent_relation: str = "") -> list[Generation]:
    """One prompt sent to several models at once: a generation per model, each reserved
    on its own, grouped by one Batch so the gallery shows them side by side.

    All or none: the total is checked first (so the message names the whole cost),
    and a refusal of any model rolls back the others. A repeated ``idempotency_key``
    returns the batch the first request made.
    """
    keys = [f"{idempotency_key[:60]}-{i}" if idempotency_key else None for i in range(len(entries))]
    if idempotency_key:
        first = Generation.objects.filter(author=membership.user, idempotency_key=keys[0]).select_related("batch").first()
        if first is not None and first.batch is not None:
            return list(first.batch.generations.order_by("id"))
    total = sum(estimate(e.provider_id, e.model_id, operation, e.params, team=membership.team) for e in entries)
    available = credits.wallet_for(membership).available
    if total > available:
        raise GenerationRejected({ALL: str(credits.InsufficientCredits(total, available))})
    created: list[Generation] = []
    # Input copies of the models already created roll back with their rows: remove them too.
    saved_files: list[tuple[Any, str]] = []
    try:
        with transaction.atomic():
            batch = Batch.objects.create(team=membership.team, author=membership.user)
            for index, (entry, key) in enumerate(zip(entries, keys, strict=True)):
                try:
                    generation = create_generation(
                        membership=membership, provider_id=entry.provider_id, model_id=entry.model_id,
                        operation=operation, prompt=prompt, negative_prompt=negative_prompt, params=entry.params,
                        inputs=inputs, idempotency_key=key, parent=parent, parent_relation=parent_relation,
                        batch=batch)
                except GenerationRejected as exc:
                    if index == 0:
                        raise
                    raise GenerationRejected({ALL: f"{entry.label}: {exc}"}) from exc
                created.append(generation)
                saved_files += [(item.file.storage, item.file.name) for item in generation.inputs.all()]
    except BaseException:
        _delete_files(saved_files)
        raise
    return created


def cancel_generation(generation: Generation, *, actor) -> str:
    """Try to cancel; returns what happened, in words for the person who asked.

    Queued and not yet being sent: cancelled here, credits released. Sent
    (``submitted``): the provider is asked (its answer decides). Running or
    later: too late. Permission (author or manager) is the caller's check.
    """
    name = provider_name(generation.provider)
    if generation.status == Status.QUEUED:
        with transaction.atomic():  # the status and the refund are seen together or not at all
            moved = end(generation.pk,
                        Generation.objects.filter(pk=generation.pk, status=Status.QUEUED, claimed_at__isnull=True),
                        status=Status.CANCELLED, finished_at=timezone.now(), error="Cancelled before it was sent.",
                        next_poll_at=None)
            if moved:
                credits.release(generation, actor=actor, reason="Cancelled before it was sent.")
        if moved:
            return "Cancelled."
        generation.refresh_from_db(fields=["status", "claimed_at"])
        if generation.status == Status.QUEUED:
            return f"It is being sent to {name} right now; try again in a moment."
    if generation.status == Status.RUNNING:
        return "It had already started; it will finish and be charged."
    if generation.status == Status.DOWNLOADING:
        return "It has already finished; its results are being saved."
    if generation.is_terminal:
        return f"It has already ended ({generation.get_status_display().lower()})."
    # Submitted: only the provider knows whether it has started.
    provider = get_provider(generation.provider)
    if not provider.supports_cancel:
        return provider.cancel_help or f"{name} cannot cancel a job once it is sent."
    from generations.engine.common import credentials_for, model_for

    try:
        outcome = provider.cancel(generation.provider_job_id, credentials_for(generation), model=model_for(generation))
    except ProviderError as exc:
        return f"{name} did not cancel it: {exc.message}"
    if outcome.result == CancelResult.CANCELLED:
        with transaction.atomic():
            moved = end(generation.pk,
                        Generation.objects.filter(pk=generation.pk, status__in=[Status.SUBMITTED, Status.RUNNING]),
                        status=Status.CANCELLED, finished_at=timezone.now(), error="Cancelled.", next_poll_at=None,
                        provider_status="cancelled", progress=None)
            if moved:
                credits.release(generation, actor=actor, reason="Cancelled.")
        return "Cancelled."
    if outcome.result == CancelResult.TOO_LATE:
        return "It had already started; it will finish and be charged."
    return outcome.message or provider.cancel_help or f"{name} cannot cancel a job once it is sent."
