"""The team's provider keys (owners and admins). A key is write-only: after it is
saved only its last four characters are ever shown.

The page groups the keys by provider in their order (the default first) and says which
one serves each provider now. "Test key" answers in place (htmx swaps the keys card) or,
without JavaScript, with the whole page; every other change redirects back with a message."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.timesince import timesince
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from accounts.teams import require_manager
from generations.keys import services as keys
from generations.keys.forms import ProviderKeyForm
from generations.providers.base import KeyCheck


def _ago(moment) -> str:
    """"just now" under a minute (timesince would say "0 minutes"), else "3 minutes ago"."""
    if moment is None:
        return ""
    if (timezone.now() - moment).total_seconds() < 60:
        return "just now"
    return f"{timesince(moment)} ago"


def _render_keys(request, membership, form=None, status=200, *, tested: tuple[int, KeyCheck] | None = None,
                 partial: bool = False) -> HttpResponse:
    groups = keys.provider_groups(membership.team)
    for group in groups:
        for key in group.keys:
            key.provider_name = group.name
            key.effective_url = keys.effective_base_url(key)
            key.used_ago, key.error_ago, key.listed_ago = (_ago(key.last_used), _ago(key.last_error_at),
                                                           _ago(key.models_listed_at))
            key.test_result = tested[1] if tested and tested[0] == key.pk else None
    template = "generations/keys/keys.html#keys_card" if partial else "generations/keys/keys.html"
    return render(request, template, {"groups": groups, "key_count": sum(len(g.keys) for g in groups),
                                      "form": form or ProviderKeyForm()}, status=status)


@require_GET
@login_required
def key_list(request: HttpRequest) -> HttpResponse:
    return _render_keys(request, require_manager(request))


@sensitive_post_parameters("api_key")
@require_POST
@login_required
def key_add(request: HttpRequest) -> HttpResponse:
    membership = require_manager(request)
    form = ProviderKeyForm(request.POST)
    if not form.is_valid():
        return _render_keys(request, membership, form, status=400)
    try:
        key = keys.create_key(team=membership.team, created_by=request.user, **form.cleaned_data)
    except ValidationError as exc:
        form.add_error(None, exc)
        return _render_keys(request, membership, form, status=400)
    name = keys.provider_name(key.provider)
    if key.is_default:
        place = f"It is the default {name} key: new {name} jobs use it."
    else:
        place = (f"It is {key.role.lower()}: {name} jobs still start with the default key and move to this one "
                 "only if that one is refused or disabled.")
    messages.success(request, f"Key “{key.label}” ({key.masked}) added for {name}. {place} "
                              "“Test key” checks it now.")
    return redirect("accounts:keys")


@require_POST
@login_required
def key_active(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_manager(request)
    key = keys.get_key_for_manager(membership, public_id)
    active = request.POST.get("active")
    if active not in ("0", "1"):
        return HttpResponseBadRequest("active must be 0 or 1.")
    keys.set_active(key, active == "1")
    messages.success(request, f"Key “{key.label}” is {'enabled' if key.is_active else 'disabled'}.")
    return redirect("accounts:keys")


@require_POST
@login_required
def key_default(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_manager(request)
    key = keys.get_key_for_manager(membership, public_id)
    keys.make_default(key)
    name = keys.provider_name(key.provider)
    messages.success(request, f"“{key.label}” is now the default {name} key: new {name} jobs start with it."
                     + ("" if key.is_active else " It is disabled: enable it to use it."))
    return redirect("accounts:keys")


@require_POST
@login_required
def key_up(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_manager(request)
    key = keys.get_key_for_manager(membership, public_id)
    keys.move_up(key)
    messages.success(request, f"“{key.label}” is now {'the default' if key.is_default else key.role.lower()} "
                              f"for {keys.provider_name(key.provider)}.")
    return redirect("accounts:keys")


@require_POST
@login_required
def key_test(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """Ask the provider something harmless with the key and show its answer beside the key."""
    membership = require_manager(request)
    key = keys.get_key_for_manager(membership, public_id)
    check = keys.test_key(key)
    return _render_keys(request, membership, tested=(key.pk, check), partial=bool(request.htmx))


@require_POST
@login_required
def key_models(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """Fetch a gateway key's model list again (the studio offers its video models)."""
    membership = require_manager(request)
    key = keys.get_key_for_manager(membership, public_id)
    try:
        check = keys.refresh_models(key)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect("accounts:keys")
    return _render_keys(request, membership, tested=(key.pk, check), partial=bool(request.htmx))


@require_POST
@login_required
def key_delete(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_manager(request)
    key = keys.get_key_for_manager(membership, public_id)
    try:
        keys.delete_key(key)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect("accounts:keys")
    messages.success(request, f"Key “{key.label}” ({key.masked}) deleted.")
    return redirect("accounts:keys")


urlpatterns = [
    path("team/keys/", key_list, name="keys"),
    path("team/keys/add/", key_add, name="key_add"),
    path("team/keys/<uuid:public_id>/active/", key_active, name="key_active"),
    path("team/keys/<uuid:public_id>/default/", key_default, name="key_default"),
    path("team/keys/<uuid:public_id>/up/", key_up, name="key_up"),
    path("team/keys/<uuid:public_id>/test/", key_test, name="key_test"),
    path("team/keys/<uuid:public_id>/models/", key_models, name="key_models"),
    path("team/keys/<uuid:public_id>/delete/", key_delete, name="key_delete"),
]
