"""Studio views: choose a model, fill its parameters, submit.

The page is ``studio/studio.html``; htmx requests get its partials: the
fieldset when the model or mode changes, the estimate as values change, an
input slot when a file is picked from the gallery, the picker itself. The
form is built from the model's schema (``generations.studio.forms.StudioForm``);
``services.create_generation`` does the atomic work.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, path, reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from accounts.credits.models import CREDITS_PER_USD, Wallet
from accounts.models import Membership, Role
from accounts.teams import require_membership
from generations import services
from generations.access import get_generation_for_member
from generations.gallery.queries import (
    GalleryFilters,
    card_queryset,
    gallery_page,
    with_typical_durations,
)
from generations.models import Generation, InputRole, Media, Status
from generations.prompt_templates.forms import carry_over as template_carry_over
from generations.providers.registry import get_provider, takes_seed
from generations.services import CatalogEntry, GenerationRejected
from generations.studio import forms as studio_forms
from generations.studio import services as studio_services
from generations.studio.forms import (
    MEDIA_SUFFIX,
    StudioForm,
    choose_operation,
    default_entry,
    find_entry,
    model_value,
    modes_taking,
    split_model_value,
)

CARDS_ON_STUDIO = 24
PICKER_SIZE = 24
INPUT_ROLES = [role for role, _ in InputRole.choices]


# ---------------------------------------------------------------------------
# Pages


@login_required
@require_GET
@vary_on_headers("HX-Request")
def studio(request: HttpRequest) -> HttpResponse:
    """The home page: the studio form on the left, the team's latest results on the right."""
    membership = require_membership(request)
    catalog = _catalog(membership)
    if not catalog:
        return render(request, "generations/studio/studio.html", _page_context(request, membership, None, catalog))

    initial: dict[str, Any] = {}
    query = request.GET
    role = next((r for r in INPUT_ROLES if query.get(r)), None)
    provider_id, model_id = split_model_value(query.get("model"), query.get("provider"))
    wanted_operation = query.get("operation")
    remix_id = query.get("remix")
    seed_notice = ""
    if remix_id:
        remix = get_generation_for_member(membership, _uuid_or_404(remix_id))
        provider_id, model_id, wanted_operation = remix.provider, remix.model, remix.operation
        initial.update(_remix_initial(remix))
        seed_notice = _reuse_seed(remix, initial) if query.get("seed") == "reuse" else ""

    entry = find_entry(catalog, provider_id, model_id) if model_id else None
    notice = ""
    if model_id and entry is None and not remix_id:
        # A bookmarked or shared studio link whose model this team cannot use (now).
        notice = "That model is not available to your team (no active key for its provider serves it); pick another."
    if role and not remix_id and (entry is None or not modes_taking(entry.model, role)):
        # "Use as reference/first frame/...": open a model with a mode that takes that input.
        entry = default_entry(catalog, role=role)
        if entry is None:
            notice = (f"None of the models available to your team takes a {InputRole(role).label.lower()} "
                      "as an input, so the file you chose was not picked.")
            role = None
    entry = entry or default_entry(catalog)
    operation = choose_operation(entry.model, wanted_operation, role=role)
    form = StudioForm(entry=entry, operation=operation, catalog=catalog, membership=membership, initial=initial)
    form.notice = notice or form.notice
    # A remix or "Use as ..." link fills the form itself: the draft kept in the browser gives way to it.
    form.prefilled = bool(remix_id or role)
    if role:
        _prefill_input(form, role, query.get(role))
    if remix_id and (provider_id, model_id) != (entry.provider_id, entry.model.id):
        form.notice = "The model of that generation is no longer available to your team; pick another."
    elif remix_id and seed_notice:
        form.notice = seed_notice
        form.seed_fixed = "seed" in initial and initial["seed"] not in (None, -1)
    if remix_id and remix.needs_edit:
        form.remix = remix  # "Edit and retry": the page says which failure is being fixed
    return render(request, "generations/studio/studio.html", _page_context(request, membership, form, catalog))


@login_required
@require_GET
@vary_on_headers("HX-Request")
def studio_fields(request: HttpRequest) -> HttpResponse:
    """The fieldset for another model or mode, keeping what still applies of the values typed so far."""
    membership = require_membership(request)
    catalog = _catalog(membership)
    if not catalog:
        return HttpResponse("No models are available to your team.", status=400)
    entry, operation, _ = _selected(catalog, request.GET)
    if not request.htmx:
        return redirect(_studio_url(entry, operation))
    form = StudioForm(entry=entry, operation=operation, catalog=catalog, membership=membership,
                      initial=_carry_over(request.GET, entry, operation))
    _drop_missing_picks(form)
    form.remix = _edited_job(membership, request.GET.get("remix_of"))
    response = render(request, "generations/studio/studio.html#fieldset", {**_form_context(request, membership, form), "swapped": True})
    # A draft given back on load (?restore=1) replaces the address: the reload is not a step back.
    response["HX-Replace-Url" if request.GET.get("restore") else "HX-Push-Url"] = _studio_url(entry, operation)
    return response


def _edited_job(membership: Membership, raw_id: str | None) -> Generation | None:
    """The failed job an "Edit and retry" form is fixing, so its fields drawn again still say so."""
    try:
        public_id = uuid.UUID(raw_id or "")
    except ValueError:
        return None
    job = Generation.objects.filter(team_id=membership.team_id, public_id=public_id).select_related("prompt").first()
    return job if job is not None and job.needs_edit else None


def _drop_missing_picks(form: StudioForm) -> None:
    """Files picked earlier (a draft, the model before) that are no longer the team's to use
    (deleted, or never theirs) are dropped, and the form says so."""
    for slot in form.slots:
        field = slot.role + MEDIA_SUFFIX
        ids = studio_forms.split_ids(form.initial.get(field))
        if not ids:
            continue
        media, problem = form.lookup_media(slot, ids)
        if problem:
            form.initial[field] = ""
            label = (slot.label or dict(InputRole.choices).get(slot.role, slot.role)).lower()
            form.notice = f"The {label} picked from the gallery earlier is no longer there; pick another or upload one."
        else:
            form.picked_media[slot.role] = media


@login_required
@require_GET
@vary_on_headers("HX-Request")
def studio_estimate(request: HttpRequest) -> HttpResponse:
    """'N credits (≈ $X.XX)' for the values in the form, and the member's balance."""
    membership = require_membership(request)
    catalog = _catalog(membership)
    if not catalog:
        return HttpResponse("", status=204)
    entry, operation, _ = _selected(catalog, request.GET)
    form = StudioForm(request.GET, entry=entry, operation=operation, catalog=catalog, membership=membership)
    return render(request, "generations/studio/studio.html#estimate_body", _estimate_context(membership, form))


def _slot_for(membership: Membership, query: QueryDict):
    """(catalog, entry, operation, input slot) named by the query, or a 400 saying what is wrong."""
    catalog = _catalog(membership)
    if not catalog:
        return HttpResponse("No models are available to your team.", status=400)
    entry, operation, _ = _selected(catalog, query)
    slot = next((s for s in entry.model.inputs_for(operation) if s.role == query.get("role")), None)
    if slot is None:
        return HttpResponse("This model takes no such input.", status=400)
    return catalog, entry, operation, slot


@login_required
@require_GET
@vary_on_headers("HX-Request")
def studio_picker(request: HttpRequest) -> HttpResponse:
    """The team's recent images (or videos, for an edit source) to use as an input."""
    membership = require_membership(request)
    found = _slot_for(membership, request.GET)
    if isinstance(found, HttpResponse):
        return found
    _, entry, operation, slot = found
    if not request.htmx:
        return redirect(f"{reverse('generations:gallery')}?{urlencode({'kind': slot.kind})}")
    media = (Media.objects.filter(generation__team_id=membership.team_id, generation__archived=False,
                                  generation__status=Status.SUCCEEDED, kind=slot.kind)
             .select_related("generation__prompt").order_by("-created", "-id")[:PICKER_SIZE])
    context = {"slot": slot, "picker_media": media, "entry": entry, "operation": operation,
               "model_value": model_value(entry.provider_id, entry.model.id),
               "current": request.GET.get(slot.role + MEDIA_SUFFIX, "")}
    return render(request, "generations/studio/studio.html#picker", context)


@login_required
@require_GET
@vary_on_headers("HX-Request")
def studio_slot(request: HttpRequest) -> HttpResponse:
    """One input slot, after a file was picked from the gallery (``add``) or removed (``remove``)."""
    membership = require_membership(request)
    found = _slot_for(membership, request.GET)
    if isinstance(found, HttpResponse):
        return found
    catalog, entry, operation, slot = found
    if not request.htmx:
        query = {"model": model_value(entry.provider_id, entry.model.id), "operation": operation}
        if request.GET.get("add"):
            query[slot.role] = request.GET["add"]
        return redirect(f"{reverse('generations:studio')}?{urlencode(query)}")
    field = slot.role + MEDIA_SUFFIX
    ids = studio_forms.split_ids(request.GET.get(field))
    if request.GET.get("add"):
        ids = ([] if slot.max_count == 1 else ids) + [request.GET["add"]]
        ids = list(dict.fromkeys(ids))[-slot.max_count:]
    if request.GET.get("remove"):
        ids = [i for i in ids if i != request.GET["remove"]]
    form = StudioForm(entry=entry, operation=operation, catalog=catalog, membership=membership)
    media, problem = form.lookup_media(slot, ids)
    form.initial[field] = "" if problem else ",".join(str(m.public_id) for m in media)
    form.picked_media[slot.role] = [] if problem else media
    row = next(r for r in form.slot_rows if r.slot.role == slot.role)
    return render(request, "generations/studio/studio.html#slot",
                  {**_form_context(request, membership, form), "row": row, "slot_error": problem})


@login_required
@require_GET
@vary_on_headers("HX-Request")
def prompt_history(request: HttpRequest) -> HttpResponse:
    """The team's recent distinct prompts containing ``?q=``, for the studio's history list
    (its own page without htmx, a fragment with it)."""
    membership = require_membership(request)
    query = " ".join(request.GET.get("q", "").split())
    error = ""
    if len(query) > studio_services.MAX_HISTORY_QUERY:
        error, query = f"Search for at most {studio_services.MAX_HISTORY_QUERY} characters.", ""
    elif any(ord(c) < 32 or ord(c) == 127 for c in query):
        error, query = "Control characters are not allowed.", ""
    items = [] if error else studio_services.prompt_history(membership, query)
    context = {"history": items, "history_query": query, "history_error": error, "nav_section": "studio",
               "history_max": studio_services.MAX_HISTORY_QUERY}
    if request.htmx:
        # 200 even for a refusal: htmx swaps only successful answers, and the list must say why.
        return render(request, "generations/studio/history.html#list", context)
    return render(request, "generations/studio/history.html", context, status=400 if error else 200)


@login_required
@require_POST
@vary_on_headers("HX-Request")
def generate(request: HttpRequest) -> HttpResponse:
    """Validate the studio form and create the generation(s); nothing is created when it is invalid."""
    membership = require_membership(request)
    catalog = _catalog(membership)
    if not catalog:
        return HttpResponse("Your team has no provider keys, so there are no models to use.", status=400)
    entry, operation, known = _selected(catalog, request.POST)
    form = StudioForm(request.POST, request.FILES, entry=entry, operation=operation, catalog=catalog,
                      membership=membership)
    form.is_valid()
    if not known:
        form.add_error("model", "This model is not available to your team.")
    status = 422 if request.htmx else 400
    if form.is_valid():
        key = form.cleaned_data["idempotency_key"]
        replayed = bool(key) and Generation.objects.filter(
            author=request.user, idempotency_key__in=[key, f"{key[:60]}-0"]).exists()
        wanted = 1 + len(form.compare_entries)
        try:
            created = services.create_within_limit(membership, 0 if replayed else wanted,
                                                   lambda: _create(form, membership))
        except GenerationRejected as exc:
            form.apply_rejection(getattr(exc, "errors", None) or {"__all__": str(exc)})
        else:
            if created is not None:
                return _created_response(request, membership, form, created, replayed=replayed)
            form.add_error(None, f"That is a lot of generations at once: at most {services.generate_per_minute()} a minute. "
                                 "Try again in a moment.")
            status = 429

    if request.htmx:
        response = render(request, "generations/studio/studio.html#form", _form_context(request, membership, form), status=status)
        response["HX-Retarget"] = "#studio-form"
        response["HX-Reswap"] = "outerHTML"
    else:
        response = render(request, "generations/studio/studio.html", _page_context(request, membership, form, catalog), status=status)
    if status == 429:
        response["Retry-After"] = "60"
    return response


# ---------------------------------------------------------------------------
# Creating


def _create(form: StudioForm, membership: Membership) -> list[Generation]:
    data = form.cleaned_data
    common = {
        "membership": membership, "operation": form.operation, "prompt": data.get("prompt", ""),
        "negative_prompt": data.get("negative_prompt", ""), "inputs": form.input_specs(),
        "idempotency_key": data["idempotency_key"], "parent": form.remix,
        "parent_relation": ("retry" if form.edit_of else "remix") if form.remix else "",
    }
    if not form.compare_entries:
        return [services.create_generation(provider_id=form.entry.provider_id, model_id=form.spec.id,
                                           params=form.params, entry=form.entry, **common)]
    entries = [services.BatchEntry(e.provider_id, e.model.id, e.model.label, form.params_for_entry(e))
               for e in [form.entry, *form.compare_entries]]
    return services.create_batch(entries=entries, **common)


def _created_response(request: HttpRequest, membership: Membership, form: StudioForm,
                      created: Sequence[Generation], *, replayed: bool) -> HttpResponse:
    if not request.htmx:
        if not replayed:
            names = ", ".join(g.model for g in created)
            messages.success(request, f"Sent to {names}. The result appears below when it is ready.")
        return redirect(_studio_url(form.entry, form.operation))
    generations = (_cards(membership, [g.pk for g in created]) if replayed
                   else _new_cards(created))
    fresh = StudioForm(entry=form.entry, operation=form.operation, catalog=form.catalog, membership=membership,
                       initial=form.fresh_initial())
    # Read once, after the reservation: the header's balance and the fresh form's estimate.
    wallet = Wallet.objects.filter(membership=membership).first()
    context = {**_form_context(request, membership, fresh, available=wallet.available if wallet else 0),
               "generations": generations, "replayed": replayed, "fresh_wallet": wallet}
    response = render(request, "generations/studio/studio.html#created", context)
    if replayed:
        # A double click or a replayed POST: the card is already on the page.
        response["HX-Reswap"] = "none"
    return response


# ---------------------------------------------------------------------------
# Helpers


def _catalog(membership: Membership) -> list[CatalogEntry]:
    return list(services.team_catalog(membership.team))


def _selected(catalog: Sequence, query: QueryDict) -> tuple[Any, str, bool]:
    """(catalog entry, operation, whether the asked-for model is in the catalog)."""
    provider_id, model_id = split_model_value(query.get("model"), query.get("provider"))
    entry = find_entry(catalog, provider_id, model_id)
    known = entry is not None
    entry = entry or default_entry(catalog)
    wanted = query.get("operation")
    operation = wanted if wanted in entry.model.operations else entry.model.operations[0]
    return entry, operation, known


def _carry_over(query: QueryDict, entry, operation: str) -> dict[str, Any]:
    """Values typed for one model that still make sense for the next one."""
    initial: dict[str, Any] = {}
    for name in ("prompt", "negative_prompt", "idempotency_key", "remix_of"):
        if query.get(name):
            initial[name] = query[name]
    for param in entry.model.params_for(operation):
        if query.get(param.name) not in (None, ""):
            try:
                value = param.clean(query[param.name])
            except ValueError:
                continue
            initial[param.name] = ", ".join(value) if isinstance(value, list) else (str(value) if param.choices else value)
    for slot in entry.model.inputs_for(operation):
        if query.get(slot.role + MEDIA_SUFFIX):
            initial[slot.role + MEDIA_SUFFIX] = query[slot.role + MEDIA_SUFFIX]
    initial.update(template_carry_over(query))
    # The ticks of models the new one can still be compared with (it cannot be compared with itself).
    if compare := query.getlist("compare_models"):
        initial["compare_models"] = compare[:studio_forms.MAX_COMPARE]
    return initial


def _remix_initial(remix: Generation) -> dict[str, Any]:
    initial: dict[str, Any] = {"prompt": remix.prompt.text, "negative_prompt": remix.prompt.negative_prompt,
                               "remix_of": remix.public_id}
    for name, value in (remix.params or {}).items():
        initial[name] = ", ".join(map(str, value)) if isinstance(value, list) else value
    # Inputs picked from the gallery come along; uploads have to be chosen again.
    picked: dict[str, list[str]] = {}
    for item in remix.inputs.select_related("source_media").order_by("role", "position"):
        if item.source_media is not None:
            picked.setdefault(item.role, []).append(str(item.source_media.public_id))
    for role, ids in picked.items():
        initial[role + MEDIA_SUFFIX] = ",".join(ids)
    return initial


def _reuse_seed(generation: Generation, initial: dict[str, Any]) -> str:
    """"Reuse seed": the remix's values with the seed fixed to the one the result was made with
    (when it is known); the notice says which seed, or why it stays random."""
    if not takes_seed(generation.provider, generation.model, generation.operation):
        return "This model takes no seed, so only the prompt and settings are reused."
    seed = studio_services.seed_used(generation)
    if seed.value is not None:
        initial["seed"] = seed.value
    return studio_services.seed_notice(generation, seed)


def _prefill_input(form: StudioForm, role: str, raw: str) -> None:
    """``?first_frame=<media uuid>`` from "Use as first frame…": pick it if it is the team's."""
    slot = next((s for s in form.slots if s.role == role), None)
    if slot is None:
        form.notice = "This model takes no such input."
        return
    media, problem = form.lookup_media(slot, [raw])
    if problem:
        form.notice = problem
        return
    form.initial[role + MEDIA_SUFFIX] = ",".join(str(m.public_id) for m in media)
    form.picked_media[role] = media


def _uuid_or_404(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise Http404("No such generation.") from None


def _studio_url(entry, operation: str) -> str:
    query = {"model": model_value(entry.provider_id, entry.model.id)}
    if operation != entry.model.operations[0]:
        query["operation"] = operation
    return f"{reverse('generations:studio')}?{urlencode(query)}"


def _safe_reverse(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


def _provider_notes(entry, form: StudioForm) -> list[str]:
    provider = get_provider(entry.provider_id)
    notes = []
    if provider.cancel_help:
        notes.append(provider.cancel_help)
    elif not provider.supports_cancel:
        notes.append(f"{entry.provider_name} cannot cancel a job once it is sent.")
    if form.slots and not provider.accepts_inline_inputs and not settings.KILN_PUBLIC_URL:
        notes.append(f"{entry.provider_name} only takes input files from a public URL, and this Kiln has "
                     "none (KILN_PUBLIC_URL): inputs cannot be sent.")
    return notes


def _balance(membership: Membership) -> int:
    return Wallet.objects.filter(membership=membership).values_list("available", flat=True).first() or 0


def _estimate_context(membership: Membership, form: StudioForm, available: int | None = None) -> dict[str, Any]:
    """The estimate's figures; ``available``: the member's balance if the caller has just read it."""
    params = form.estimate_params()
    entries = [form.entry]
    if form.is_bound:
        compare = form.data.getlist("compare_models") if hasattr(form.data, "getlist") else []
    else:  # fields drawn for another model, or the fresh form after a submit, keep their ticks
        compare = form.initial.get("compare_models") or []
    offered = {value for value, _ in form.compare_choices()}  # a tick the form cannot show counts for nothing
    for value in compare:
        if value not in offered:
            continue
        other = find_entry(form.catalog, *split_model_value(value))
        if other is not None and other not in entries and len(entries) <= studio_forms.MAX_COMPARE:
            entries.append(other)
    credits = 0
    for entry in entries:  # catalog entries: the model as the team's key sees it, without a query
        credits += services.estimate_entry(entry, form.operation, form.params_for_entry(entry, params))
    if available is None:
        available = _balance(membership)
    context = {"estimate_credits": credits, "estimate_credits_text": f"{credits:,}",
               "estimate_usd": f"{credits / CREDITS_PER_USD:.{2 if credits == 0 or credits >= 100 else 4}f}",
               "estimate_models": len(entries), "estimate_skipped": form.estimate_skipped,
               "available": available, "available_text": f"{max(available, 0):,}", "affordable": credits <= available}
    if not context["affordable"]:
        context.update(_credit_help(membership))
    return context


MANAGERS_NAMED = 5


def _credit_help(membership: Membership) -> dict[str, Any]:
    """Whom a member short of credits can ask: the team's owners and admins (they grant
    credits on the wallets page), by name; a manager is sent to that page."""
    team = {"credit_team": membership.team.name, "credit_role": membership.get_role_display().lower()}
    if membership.is_manager:
        return {**team, "wallets_url": reverse("accounts:wallets")}
    managers = list(Membership.objects.active()
                    .filter(team_id=membership.team_id, role__in=[Role.OWNER, Role.ADMIN])
                    .select_related("user").order_by("-role", "user__email")[:MANAGERS_NAMED + 1])  # owners first
    return {**team, "credit_managers": managers[:MANAGERS_NAMED], "more_managers": len(managers) > MANAGERS_NAMED,
            "team_url": reverse("accounts:members")}


def _form_context(request: HttpRequest, membership: Membership, form: StudioForm,
                  available: int | None = None) -> dict[str, Any]:
    return {
        "form": form, "entry": form.entry, "spec": form.spec, "operation": form.operation,
        "model_value": model_value(form.entry.provider_id, form.entry.model.id),
        "provider_notes": _provider_notes(form.entry, form),
        "membership": membership,
        **_estimate_context(membership, form, available),
    }


def _cards(membership: Membership, pks: Sequence[int]) -> list[Generation]:
    """The new generations, loaded the way the gallery's cards need them."""
    return with_typical_durations(list(card_queryset(membership).filter(pk__in=pks).order_by("-created", "-id")))


def _new_cards(created: Sequence[Generation]) -> list[Generation]:
    """The cards of generations this request has just created, from the rows in hand: their
    prompt and author are the ones they were created with, and a job nobody has seen yet has
    no media and is nobody's favourite, so reading them back (two queries, a third of the
    submit's ORM time) would learn nothing. Same order as ``_cards``."""
    fresh = sorted(created, key=lambda g: (g.created, g.pk), reverse=True)
    for g in fresh:
        g.is_favourite = False
        g._prefetched_objects_cache = {"media": Media.objects.none()}
    return list(with_typical_durations(fresh))


def _latest(membership: Membership) -> tuple[list[Generation], str]:
    """The team's latest cards, and the gallery page that continues after them."""
    page = gallery_page(membership, GalleryFilters(), size=CARDS_ON_STUDIO)
    next_url = ""
    if page.next_cursor:
        next_url = f"{reverse('generations:gallery')}?{urlencode({'after': page.next_cursor})}"
    return page.items, next_url


def _page_context(request: HttpRequest, membership: Membership, form: StudioForm | None, catalog) -> dict[str, Any]:
    context: dict[str, Any] = {
        "catalog": catalog, "membership": membership,
        "keys_url": _safe_reverse("accounts:keys") if membership.is_manager else None,
        "gallery_url": reverse("generations:gallery"),
        "history_max": studio_services.MAX_HISTORY_QUERY,
    }
    context["generations"], context["next_url"] = _latest(membership)
    if form is not None:
        context.update(_form_context(request, membership, form))
    return context


urlpatterns = [
    path("", studio, name="studio"),
    path("studio/fields/", studio_fields, name="studio_fields"),
    path("studio/estimate/", studio_estimate, name="studio_estimate"),
    path("studio/picker/", studio_picker, name="studio_picker"),
    path("studio/slot/", studio_slot, name="studio_slot"),
    path("studio/generate/", generate, name="generate"),
    path("studio/prompts/", prompt_history, name="prompt_history"),
]

