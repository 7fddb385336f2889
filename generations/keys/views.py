"""The team's provider keys (owners and admins). A key is write-only: after it is
saved only its last four characters are ever shown."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from accounts.teams import require_manager
from generations.keys import services as keys
from generations.keys.forms import ProviderKeyForm


def _render_keys(request, membership, form=None, status=200) -> HttpResponse:
    team_keys = list(keys.team_keys(membership.team))
    for key in team_keys:
        key.provider_name = keys.provider_name(key.provider)
    return render(request, "generations/keys/keys.html", {"keys": team_keys, "form": form or ProviderKeyForm()},
                  status=status)


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
    messages.success(request, f"Key “{key.label}” ({key.masked}) added for {keys.provider_name(key.provider)}.")
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
    path("team/keys/<uuid:public_id>/delete/", key_delete, name="key_delete"),
]
