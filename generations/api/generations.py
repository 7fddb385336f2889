"""Generations: create one (JSON, or multipart with uploads), read it, act on it, download its files.

Each endpoint is the gallery's or the studio's action through the same services:
``services.create_generation`` (behind the member's per-minute limit,
``services.create_within_limit``), ``retry_generation``, ``cancel_generation``, the gallery's
``toggle_favourite`` and ``set_archived``, and ``serving.serve_file`` for the files. Who may
do what is decided as the gallery decides it (``access.can_manage_generation``): another
team's generation or file is 404, a member acting on another member's job where only its
author or an admin may is 403.

``Idempotency-Key`` on a create: a repeat of a request (same member, same team, same key)
answers the generation the first one made, 201 with ``Idempotent-Replayed: true``, and never
reserves again; the same key with a different request is refused (422). The key is stored
namespaced (``api:`` + a hash of team and key + a hash of the request) in the generation's
``idempotency_key``, so it cannot meet a studio form's key, and the request's hash travels
with it.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.files.uploadedfile import UploadedFile
from django.http import Http404, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import reverse
from django.utils import timezone
from ninja import Router, Status
from ninja.errors import ValidationError
from pydantic import ValidationError as PydanticError

from accounts.credits import services as credits
from generations import services
from generations.access import can_manage_generation, get_media_for_member
from generations.api.auth import require_scope
from generations.api.catalog import credits as credits_body
from generations.api.catalog import split_model
from generations.api.problems import ApiProblem
from generations.api.schemas import CancelOut, GenerationIn, GenerationOut, Problem
from generations.gallery import queries as gallery_queries
from generations.models import Generation, InputRole, Kind, Media
from generations.models import Status as JobStatus
from generations.providers.registry import model_label
from generations.serving import preview_of, serve_file
from generations.studio import services as studio_services

router = Router(tags=["Generations"])

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX = 64        # what a client may send: 1 to 64 visible ASCII characters
KEY_NAMESPACE = "api:"          # studio keys are letters, digits and dashes: never this
ROLES = frozenset(role for role, _ in InputRole.choices)
REQUEST_FIELDS = frozenset({"model", "operation", "prompt", "negative_prompt"})
RETRYABLE = (JobStatus.FAILED, JobStatus.EXPIRED, JobStatus.CANCELLED)
_MEDIA_IN_PATH = re.compile(r"/(?:m|api/v1/media)/([0-9a-fA-F-]{32,36})(?:/|$)")

_WRITE = {401: Problem, 403: Problem, 404: Problem}
MULTIPART_NOTE = ("To upload input files, send ``multipart/form-data``: the request as JSON in a ``payload`` "
                  "part (or its fields as form fields, ``params`` and ``inputs`` as JSON text), and each file "
                  "in a part named by its input role.")


# ---------------------------------------------------------------------------
# The answer: a generation as the API shows it


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def _absolute(request, path: str) -> str:
    return request.build_absolute_uri(path)


def generation_url(request, generation: Generation) -> str:
    return _absolute(request, reverse("api:generation", kwargs={"id": generation.public_id}))


def media_body(request, media: Media) -> dict[str, Any]:
    thumbnail = None
    if media.thumbnail or media.kind == Kind.IMAGE:
        thumbnail = _absolute(request, reverse("api:media_thumbnail", kwargs={"id": media.public_id}))
    return {"id": str(media.public_id), "kind": media.kind, "mime_type": media.mime_type, "bytes": media.bytes,
            "width": media.width, "height": media.height, "duration": media.duration,
            "download_url": _absolute(request, reverse("api:media_download", kwargs={"id": media.public_id})),
            "thumbnail_url": thumbnail}


def generation_body(request, generation: Generation) -> dict[str, Any]:
    """The generation as ``GenerationOut``: state, timing, cost, error, lineage and media.
    ``generation`` comes from ``load`` (the member's favourite annotated, media prefetched)."""
    g = generation
    end = g.finished_at or timezone.now()
    settled = credits.settlement(g)
    seed = studio_services.seed_shown(g)
    children = Generation.objects.filter(parent=g, team_id=g.team_id).order_by("created", "id")
    return {
        "id": str(g.public_id), "url": generation_url(request, g),
        "web_url": _absolute(request, reverse("generations:detail", args=[g.public_id])),
        "status": g.status, "progress": g.progress,
        "model": f"{g.provider}:{g.model}", "model_label": model_label(g.provider, g.model),
        "operation": g.operation, "kind": g.kind,
        "prompt": g.prompt.text, "negative_prompt": g.prompt.negative_prompt, "params": g.params or {},
        "seed": seed.value if seed is not None else None,
        "author": g.author.email if g.author_id else None,
        "favourite": bool(getattr(g, "is_favourite", False)), "archived": g.archived,
        "timing": {"created": _iso(g.created), "submitted": _iso(g.submitted_at), "started": _iso(g.started_at),
                   "finished": _iso(g.finished_at),
                   "elapsed_seconds": round(max((end - g.created).total_seconds(), 0.0), 3)},
        "cost": {"estimated": credits_body(g.estimated_cost),
                 "charged": credits_body(settled.charged) if settled.verdict == "captured" else None,
                 "settlement": settled.verdict},
        "error": g.error or None, "error_kind": g.error_kind or None, "needs_edit": g.needs_edit,
        "needs_review": g.needs_review,
        "lineage": {"parent": str(g.parent.public_id) if g.parent_id and g.parent else None,
                    "relation": g.parent_relation or None,
                    "children": [str(pk) for pk in children.values_list("public_id", flat=True)],
                    "batch": str(g.batch.public_id) if g.batch_id and g.batch else None},
        "media": [media_body(request, m) for m in g.media.all()],
    }


def _public_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise Http404("No such object in this team.") from None


def load(membership, public_id) -> Generation:
    """The member's team's generation, or 404 (another team's is answered exactly like a missing one)."""
    found = (gallery_queries.card_queryset(membership).select_related("parent", "batch")
             .filter(public_id=_public_id(public_id)).first())
    if found is None:
        raise Http404("No such generation in this team.")
    return found


def _may_manage(membership, generation: Generation) -> None:
    if not can_manage_generation(membership, generation):
        raise PermissionDenied("Only its author or a team admin can do this.")


# ---------------------------------------------------------------------------
# Create: the request, from JSON or multipart


def _json_object(raw: str | bytes, where: str) -> dict[str, Any]:
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ApiProblem(400, f"The {where} is not valid JSON.", slug="malformed-body") from None
    if not isinstance(data, dict):
        raise ApiProblem(422, f"The {where} must be a JSON object.", slug="invalid-input")
    return data


def _read_request(request) -> tuple[GenerationIn, dict[str, list[UploadedFile]]]:
    """The create's fields, and the uploaded files by role (multipart only)."""
    content_type = (request.content_type or "").lower()
    uploads: dict[str, list[UploadedFile]] = {}
    try:
        if content_type == "multipart/form-data":
            if "payload" in request.POST:
                data = _json_object(request.POST["payload"], "payload part")
            else:
                data = {name: request.POST[name] for name in request.POST if name not in ROLES}
                for name in ("params", "inputs"):
                    if isinstance(data.get(name), str):
                        data[name] = _json_object(data[name], f"{name} field")
            for name in request.FILES:
                if name not in ROLES:
                    raise ApiProblem(422, f"A file part is named “{name[:40]}”: name each file by its input role "
                                          f"({', '.join(sorted(ROLES))}).", errors={f"inputs.{name[:40]}": "Not an input role."})
                uploads[name] = request.FILES.getlist(name)
        elif content_type in ("application/json", ""):
            data = _json_object(request.body, "body")
        else:
            raise ApiProblem(415, "Send the request as application/json, or as multipart/form-data to upload "
                                  "files.", slug="unsupported-media-type")
    except RequestDataTooBig:
        raise ApiProblem(413, "The request is too large.", slug="too-large") from None
    except (MultiPartParserError, SuspiciousOperation) as exc:  # a broken multipart body, too many parts
        raise ApiProblem(400, f"The multipart body could not be read: {exc}", slug="malformed-body") from None
    try:
        return GenerationIn.model_validate(data), uploads
    except PydanticError as exc:
        raise ValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


def _media_reference(raw: str) -> uuid.UUID | None:
    """A media id, or the id in a media item's address (``/m/<id>/…``, ``/api/v1/media/<id>/…``)."""
    text = (raw or "").strip()
    match = _MEDIA_IN_PATH.search(text) if "/" in text else None
    try:
        return uuid.UUID(match.group(1) if match else text)
    except ValueError:
        return None


def _gallery_inputs(membership, wanted: dict[str, str | list[str]]) -> list[services.InputSpec]:
    """The team's gallery media the request names, as inputs; 422 naming the input for any
    reference that is not a media item of this team (another team's is not told apart)."""
    specs: list[services.InputSpec] = []
    errors: dict[str, str] = {}
    for role, refs in wanted.items():
        refs = [refs] if isinstance(refs, str) else list(refs)
        field = f"inputs.{role}"
        if role not in ROLES:
            errors[field] = f"Not an input role: use one of {', '.join(sorted(ROLES))}."
            continue
        ids = [_media_reference(r) for r in refs]
        if None in ids:
            errors[field] = "Name a media item of your team's gallery: its id or its address."
            continue
        # As the studio's picker: the files of the team's finished results.
        found = {m.public_id: m for m in Media.objects.filter(public_id__in=ids, generation__team_id=membership.team_id,
                                                              generation__status=JobStatus.SUCCEEDED)
                 .select_related("generation")}
        if len(found) != len(set(ids)):
            errors[field] = "That file is not in your team's gallery."
            continue
        specs.extend(services.InputSpec(role=role, source_media=found[i]) for i in dict.fromkeys(ids))
    if errors:
        raise ApiProblem(422, "; ".join(f"{k}: {v}" for k, v in errors.items()), errors=errors)
    return specs


def _default_operation(membership, provider_id: str, model_id: str) -> str:
    entry = next((e for e in services.team_catalog(membership.team)
                  if e.provider_id == provider_id and e.model.id == model_id), None)
    if entry is None:
        raise ApiProblem(422, f"Your team has no model “{provider_id}:{model_id}”.", errors={"model": "Not one of /models."})
    return entry.model.operations[0]


def _idempotency_key(request) -> str | None:
    raw = request.headers.get(IDEMPOTENCY_HEADER)
    if raw is None:
        return None
    key = raw.strip()
    if not key or len(key) > IDEMPOTENCY_KEY_MAX or not all(33 <= ord(c) <= 126 for c in key):
        message = f"1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters (a UUID is a good choice)."
        raise ApiProblem(422, f"{IDEMPOTENCY_HEADER}: {message}", errors={IDEMPOTENCY_HEADER: message})
    return key


def _fingerprint(payload: GenerationIn, operation: str, inputs: list[services.InputSpec]) -> str:
    """The request, as a hash: what a repeat under the same key must match."""
    files: dict[str, list[str]] = {}
    for spec in inputs:
        if spec.source_media is not None:
            files.setdefault(spec.role, []).append(f"media:{spec.source_media.public_id}")
        else:
            digest = hashlib.sha256()
            for chunk in spec.upload.chunks():
                digest.update(chunk)
            spec.upload.seek(0)
            files.setdefault(spec.role, []).append(f"upload:{digest.hexdigest()}")
    canonical = json.dumps({"model": payload.model, "operation": operation, "prompt": payload.prompt,
                            "negative_prompt": payload.negative_prompt, "params": payload.params, "inputs": files,
                            "parent": payload.parent}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _stored_key(membership, key: str) -> str:
    """``api:`` and 32 hex of (team, key): the prefix a repeat is found by; 27 hex of the request follow."""
    return KEY_NAMESPACE + hashlib.sha256(f"{membership.team_id}:{key}".encode()).hexdigest()[:32] + ":"


def _earlier(membership, prefix: str) -> Generation | None:
    return (Generation.objects.filter(author_id=membership.user_id, team_id=membership.team_id,
                                      idempotency_key__startswith=prefix).order_by("id").first())


def _same_request(found: Generation, stored: str) -> Generation:
    if found.idempotency_key != stored:
        message = "This key was used for a different request; use a new key for a new request."
        raise ApiProblem(422, f"{IDEMPOTENCY_HEADER}: {message}", slug="idempotency-key-reused",
                         errors={IDEMPOTENCY_HEADER: message})
    return found


def _api_field(name: str) -> str | None:
    if name == services.ALL:
        return None
    if name in REQUEST_FIELDS:
        return name
    return f"inputs.{name}" if name in ROLES else f"params.{name}"


def _rejected(exc: services.GenerationRejected) -> ApiProblem:
    """A service's refusal as a 422: each field named as the request names it; credits and budget by kind."""
    slug = {credits.InsufficientCredits: "insufficient-credits",
            credits.BudgetExceeded: "budget-exceeded"}.get(type(exc.__cause__))
    errors = {_api_field(k): v for k, v in exc.errors.items()}
    detail = errors.get(None) or "; ".join(f"{k}: {v}" for k, v in errors.items() if k)
    return ApiProblem(422, detail, slug=slug, errors=errors)


def _too_many(membership) -> ApiProblem:
    wait = services.rate_limit_retry_after(membership.user)
    return ApiProblem(429, f"That is a lot of generations at once: at most {services.generate_per_minute()} a "
                           f"minute. Try again in {wait} s.", slug="rate-limited", headers={"Retry-After": str(wait)})


def _created(request, response: HttpResponse, membership, generation: Generation, *, replayed: bool):
    response["Location"] = generation_url(request, generation)
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return Status(201, generation_body(request, load(membership, generation.public_id)))


@router.post("/generations", response={201: GenerationOut, 400: Problem, 413: Problem, 415: Problem, 422: Problem,
                                       429: Problem, **_WRITE},
             summary="Create a generation (JSON, or multipart to upload input files)", url_name="generations",
             description="Validates, reserves the estimate from the member's wallet and queues the job, as the "
                         "studio's Generate does. " + MULTIPART_NOTE + " Send ``Idempotency-Key`` to make a retry "
                         "safe: a repeat answers the first generation (``Idempotent-Replayed: true``) and never "
                         "reserves twice. Counts against the member's generations a minute (429 with Retry-After).",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": GenerationIn.model_json_schema()},
                 "multipart/form-data": {"schema": {"type": "object", "properties": {
                     "payload": {"type": "string", "description": "The request as JSON (the application/json body)."},
                     **{role: {"type": "array", "items": {"type": "string", "format": "binary"}} for role in sorted(ROLES)},
                 }}}}},
                 "parameters": [{"in": "header", "name": IDEMPOTENCY_HEADER, "required": False,
                                 "schema": {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX},
                                 "description": "Any 1 to 64 visible ASCII characters, new for each new request."}]})
def create(request, response: HttpResponse):
    require_scope(request, "generate")
    membership = request.membership
    payload, uploads = _read_request(request)
    key = _idempotency_key(request)
    provider_id, model_id = split_model(payload.model)
    operation = payload.operation or _default_operation(membership, provider_id, model_id)
    inputs = _gallery_inputs(membership, payload.inputs)
    inputs += [services.InputSpec(role=role, upload=f) for role, files in uploads.items() for f in files]
    parent = None
    if payload.parent:
        try:
            parent = load(membership, payload.parent)
        except Http404:
            raise ApiProblem(422, "parent: no such generation in your team.",
                             errors={"parent": "No such generation in your team."}) from None

    stored = prefix = None
    if key:
        prefix = _stored_key(membership, key)
        stored = prefix + _fingerprint(payload, operation, inputs)[:27]
        if (found := _earlier(membership, prefix)) is not None:   # the usual repeat: no lock, no count
            return _created(request, response, membership, _same_request(found, stored), replayed=True)

    def make() -> tuple[Generation, bool]:
        generation = services.create_generation(
            membership=membership, provider_id=provider_id, model_id=model_id, operation=operation,
            prompt=payload.prompt, negative_prompt=payload.negative_prompt, params=payload.params, inputs=inputs,
            idempotency_key=stored, parent=parent, parent_relation="remix" if parent is not None else "")
        return generation, False

    def repeat() -> tuple[Generation, bool] | None:   # a concurrent repeat, found under the member's lock
        found = _earlier(membership, prefix) if prefix else None
        return (_same_request(found, stored), True) if found is not None else None

    try:
        made = services.create_within_limit(membership, 1, make, existing=repeat)
    except services.GenerationRejected as exc:
        raise _rejected(exc) from None
    if made is None:
        raise _too_many(membership)
    generation, replayed = made
    return _created(request, response, membership, generation, replayed=replayed)


# ---------------------------------------------------------------------------
# One generation


@router.get("/generations/{id}", response={200: GenerationOut, **_WRITE}, url_name="generation",
            summary="A generation: state, progress, cost, error, lineage and media")
def read(request, id: str):
    require_scope(request, "read")
    return generation_body(request, load(request.membership, id))


@router.post("/generations/{id}/cancel", response={200: CancelOut, **_WRITE},
             summary="Cancel a job that has not started",
             description="Queued: cancelled here and its credits released. Sent: the provider is asked, and its "
                         "answer decides. Started or ended: too late (``cancelled`` is false, ``detail`` says why). "
                         "Its author or a team owner or admin only.")
def cancel(request, id: str):
    require_scope(request, "generate")
    membership = request.membership
    generation = load(membership, id)
    _may_manage(membership, generation)
    detail = services.cancel_generation(generation, actor=request.user)
    generation = load(membership, id)
    return {"cancelled": generation.status == JobStatus.CANCELLED, "detail": detail,
            "generation": generation_body(request, generation)}


@router.post("/generations/{id}/retry", response={201: GenerationOut, 409: Problem, 422: Problem, 429: Problem,
                                                  **_WRITE},
             summary="Send a failed, expired or cancelled job again, as a new generation",
             description="The same prompt, model, parameters and inputs, paid by the token's member (relation "
                         "``retry``). A job that failed because of what it asked (``needs_edit``) is refused with 409: "
                         "edit the request and create again.")
def retry(request, id: str, response: HttpResponse):
    require_scope(request, "generate")
    membership = request.membership
    generation = load(membership, id)
    if generation.status not in RETRYABLE:
        raise ApiProblem(409, "Only a failed, expired or cancelled generation can be retried.", slug="not-retryable")
    try:
        new = services.create_within_limit(
            membership, 1, lambda: services.retry_generation(generation, membership=membership))
    except services.NeedsEdit as exc:
        raise ApiProblem(409, exc.summary(), slug="needs-edit") from None
    except services.GenerationRejected as exc:
        raise _rejected(exc) from None
    if new is None:
        raise _too_many(membership)
    response["Location"] = generation_url(request, new)
    return Status(201, generation_body(request, load(membership, new.public_id)))


def _set_archived(request, id: str, archived: bool):
    require_scope(request, "generate")
    membership = request.membership
    generation = load(membership, id)
    _may_manage(membership, generation)
    gallery_queries.set_archived(generation, archived)
    return generation_body(request, generation)


@router.post("/generations/{id}/archive", response={200: GenerationOut, **_WRITE},
             summary="Archive: hidden from the gallery, kept in the archive (its author or an admin)")
def archive(request, id: str):
    return _set_archived(request, id, True)


@router.post("/generations/{id}/unarchive", response={200: GenerationOut, **_WRITE},
             summary="Restore an archived generation to the gallery (its author or an admin)")
def unarchive(request, id: str):
    return _set_archived(request, id, False)


def _set_favourite(request, id: str, favourite: bool):
    require_scope(request, "generate")
    membership = request.membership
    generation = load(membership, id)
    if bool(generation.is_favourite) != favourite:   # PUT and DELETE say the state wanted: a repeat changes nothing
        generation.is_favourite = gallery_queries.toggle_favourite(membership, generation)
    return generation_body(request, generation)


@router.put("/generations/{id}/favourite", response={200: GenerationOut, **_WRITE},
            summary="Make it one of the member's favourites")
def favourite(request, id: str):
    return _set_favourite(request, id, True)


@router.delete("/generations/{id}/favourite", response={200: GenerationOut, **_WRITE},
               summary="Take it out of the member's favourites")
def unfavourite(request, id: str):
    return _set_favourite(request, id, False)


# ---------------------------------------------------------------------------
# Files

# int keys, as ninja's own: a "200" beside its 200 is a duplicate key in the JSON document.
_FILE_RESPONSES = {
    200: {"description": "The file, with its stored Content-Type.",
          "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
    206: {"description": "The part a single ``Range: bytes=a-b`` asked for, with Content-Range."},
}
_FILE_ERRORS = {416: Problem, **_WRITE}


def _file(request, field_file, content_type: str, **kwargs) -> HttpResponse:
    """``serve_file``, with a range outside the file answered as a problem (Content-Range kept)."""
    response = serve_file(request, field_file, content_type, **kwargs)
    if response.status_code == 416:
        raise ApiProblem(416, f"The range {request.headers.get('Range', '')} is outside the file "
                              f"({response['Content-Range']}).", slug="range-not-satisfiable",
                         title="Range not satisfiable", errors={"Range": "Outside the file."},
                         headers={"Content-Range": response["Content-Range"]})
    return response


def _media(request, id: str) -> Media:
    require_scope(request, "read")
    return get_media_for_member(request.membership, _public_id(id))


@router.get("/media/{id}/download", response={200: None, **_FILE_ERRORS}, url_name="media_download",
            summary="Download a result file (Range supported)", openapi_extra={"responses": _FILE_RESPONSES})
def download(request, id: str):
    item = _media(request, id)
    item.generation.prompt  # noqa: B018 (one query, for the file name)
    return _file(request, item.file, item.mime_type, download_name=gallery_queries.download_filename(item))


@router.get("/media/{id}/thumbnail", response={200: None, **_FILE_ERRORS}, url_name="media_thumbnail",
            summary="A result's thumbnail (a video's poster frame)", openapi_extra={"responses": _FILE_RESPONSES})
def thumbnail(request, id: str):
    preview = preview_of(_media(request, id))
    if preview is None:
        raise Http404("No poster frame for this video.")
    return _file(request, *preview)
