"""The team's Sealink templates (owners and admins): the list, add, edit, delete. Members
use them in the studio and cannot change them (403 here)."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods, require_POST

from accounts.teams import require_manager
from generations.prompt_templates import services
from generations.prompt_templates.forms import PromptTemplateForm, VariableFormSet

PREFIX = "variables"


def _render(request, membership, form, variables, *, editing=None, status=200) -> HttpResponse:
    return render(request, "generations/prompt_templates/templates.html", {
        "templates": services.team_templates(membership.team), "form": form, "variables": variables,
        "editing": editing}, status=status)


def _save(request: HttpRequest, membership, instance=None) -> HttpResponse:
    form = PromptTemplateForm(request.POST, instance=instance, team=membership.team)
    variables = VariableFormSet(request.POST, instance=instance, prefix=PREFIX)
    if form.is_valid() and variables.is_valid():
        try:
            template = services.save_template(form, variables, membership=membership)
        except ValidationError as exc:
            form.add_error("template_id", exc)
        else:
            count = template.variables.count()
            verb = "saved" if instance else "registered"
            messages.success(request, f"Template “{template.name}” ({template.template_id}) {verb} with {count} "
                                      f"variable{'' if count == 1 else 's'}. Members can pick it in the studio.")
            return redirect("accounts:templates")
    return _render(request, membership, form, variables, editing=instance, status=400)


@require_http_methods(["GET", "POST"])
@login_required
def template_list(request: HttpRequest) -> HttpResponse:
    """The team's templates and the form to register one."""
    membership = require_manager(request)
    if request.method == "POST":
        return _save(request, membership)
    return _render(request, membership, PromptTemplateForm(team=membership.team), VariableFormSet(prefix=PREFIX))


@require_http_methods(["GET", "POST"])
@login_required
def template_edit(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_manager(request)
    template = services.get_template_for_manager(membership, public_id)
    if request.method == "POST":
        return _save(request, membership, template)
    return _render(request, membership, PromptTemplateForm(instance=template, team=membership.team),
                   VariableFormSet(instance=template, prefix=PREFIX), editing=template)


@require_POST
@login_required
def template_delete(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = require_manager(request)
    template = services.get_template_for_manager(membership, public_id)
    template.delete()
    messages.success(request, f"Template “{template.name}” ({template.template_id}) removed from the picker. "
                              "Jobs made with it keep their template id.")
    return redirect("accounts:templates")


urlpatterns = [
    path("team/templates/", template_list, name="templates"),
    path("team/templates/<uuid:public_id>/", template_edit, name="template_edit"),
    path("team/templates/<uuid:public_id>/delete/", template_delete, name="template_delete"),
]
