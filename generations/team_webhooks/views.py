"""The team's webhook endpoints (owners and admins; members 403, another team's endpoint 404):
the list and the form to add one, an endpoint's page with its delivery log, and the buttons
(re-send, send a test event, rotate the secret, disable, enable, delete). A secret is on the
page that answers the POST that made it, once, with ``Cache-Control: no-store``."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods, require_POST

from accounts.teams import require_manager
from generations.team_webhooks import services
from generations.team_webhooks.delivery import SCHEDULE
from generations.team_webhooks.forms import EndpointForm
from generations.team_webhooks.models import Event
from project.cache_headers import no_store, shows_a_secret_once

DELIVERIES_PER_PAGE = 25


def _list(request, membership, form, *, secret=None, created=None, status=200) -> HttpResponse:
    return render(request, "generations/team_webhooks/webhooks.html", {
        "team": membership.team, "membership": membership, "endpoints": services.team_endpoints(membership.team),
        "form": form, "secret": secret, "created": created, "events": Event.choices}, status=status)


@require_http_methods(["GET", "POST"])
@login_required
@shows_a_secret_once
def webhook_list(request: HttpRequest) -> HttpResponse:
    membership = require_manager(request)
    if request.method == "POST":
        form = EndpointForm(request.POST)
        if not form.is_valid():
            return _list(request, membership, form, status=400)
        endpoint, secret = services.create_endpoint(form, membership=membership)
        return _list(request, membership, EndpointForm(), secret=secret, created=endpoint, status=201)
    return _list(request, membership, EndpointForm())


def _detail(request, membership, endpoint, *, form=None, secret=None, status=200) -> HttpResponse:
    page = Paginator(endpoint.deliveries.all(), DELIVERIES_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "generations/team_webhooks/endpoint.html", {
        "team": membership.team, "membership": membership, "endpoint": endpoint, "page": page,
        "form": form or EndpointForm(instance=endpoint), "secret": secret, "attempts_max": len(SCHEDULE) + 1},
        status=status)


@require_http_methods(["GET", "POST"])
@login_required
def webhook_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """An endpoint's delivery log, newest first; POST saves its URL, events and description."""
    membership = require_manager(request)
    endpoint = services.get_endpoint(membership, public_id)
    if request.method == "POST":
        form = EndpointForm(request.POST, instance=endpoint)
        if not form.is_valid():
            return _detail(request, membership, endpoint, form=form, status=400)
        form.save()
        messages.success(request, "Endpoint saved.")
        return redirect("accounts:webhook_detail", endpoint.public_id)
    return _detail(request, membership, endpoint)


@require_POST
@login_required
def webhook_rotate(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_manager(request)
    endpoint = services.get_endpoint(membership, public_id)
    secret = services.rotate_secret(endpoint)
    return no_store(_detail(request, membership, endpoint, secret=secret))


@require_POST
@login_required
def webhook_disable(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_manager(request)
    endpoint = services.get_endpoint(membership, public_id)
    if services.disable(endpoint, membership=membership):
        messages.success(request, "Endpoint disabled: nothing is sent to it until it is enabled again.")
    return redirect("accounts:webhook_detail", endpoint.public_id)


@require_POST
@login_required
def webhook_enable(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_manager(request)
    endpoint = services.get_endpoint(membership, public_id)
    if services.enable(endpoint):
        messages.success(request, "Endpoint enabled: new events are sent to it. What failed meanwhile can be re-sent below.")
    return redirect("accounts:webhook_detail", endpoint.public_id)


@require_POST
@login_required
def webhook_delete(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_manager(request)
    endpoint = services.get_endpoint(membership, public_id)
    endpoint.delete()
    messages.success(request, f"Endpoint {endpoint.url} deleted, with its delivery log.")
    return redirect("accounts:webhooks")


@require_POST
@login_required
def webhook_test(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_manager(request)
    endpoint = services.get_endpoint(membership, public_id)
    item = services.send_test(endpoint, membership=membership)
    messages.success(request, f"Test event {item.msg_id} queued; its answer shows in the log below.")
    return redirect("accounts:webhook_detail", endpoint.public_id)


@require_POST
@login_required
def webhook_resend(request: HttpRequest, public_id: uuid.UUID, msg_id: str) -> HttpResponse:
    membership = require_manager(request)
    endpoint = services.get_endpoint(membership, public_id)
    item = services.get_delivery(endpoint, msg_id)
    try:
        services.resend(item)
    except services.ResendRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{item.msg_id} queued to be sent again, with the same message id.")
    return redirect("accounts:webhook_detail", endpoint.public_id)


urlpatterns = [
    path("team/webhooks/", webhook_list, name="webhooks"),
    path("team/webhooks/<uuid:public_id>/", webhook_detail, name="webhook_detail"),
    path("team/webhooks/<uuid:public_id>/rotate/", webhook_rotate, name="webhook_rotate"),
    path("team/webhooks/<uuid:public_id>/disable/", webhook_disable, name="webhook_disable"),
    path("team/webhooks/<uuid:public_id>/enable/", webhook_enable, name="webhook_enable"),
    path("team/webhooks/<uuid:public_id>/delete/", webhook_delete, name="webhook_delete"),
    path("team/webhooks/<uuid:public_id>/test/", webhook_test, name="webhook_test"),
    path("team/webhooks/<uuid:public_id>/deliveries/<str:msg_id>/resend/", webhook_resend, name="webhook_resend"),
]
