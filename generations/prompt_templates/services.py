"""A team's registered templates: found only within the team, saved with their variables in
one transaction (a refused variable leaves the template as it was)."""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404

from accounts.models import Membership
from generations.prompt_templates.forms import PromptTemplateForm, VariableFormSet
from generations.prompt_templates.models import PromptTemplate


def team_templates(team) -> list[PromptTemplate]:
    return list(PromptTemplate.objects.filter(team=team).prefetch_related("variables"))


def get_template_for_manager(membership: Membership, public_id: uuid.UUID) -> PromptTemplate:
    """One of the membership's team's templates; another team's is a 404, like a missing one."""
    return get_object_or_404(PromptTemplate, team_id=membership.team_id, public_id=public_id)


def save_template(form: PromptTemplateForm, variables: VariableFormSet, *, membership: Membership) -> PromptTemplate:
    """Save a valid form and its valid variables together. A race with another manager
    registering the same id ends as the form's error (ValidationError), nothing saved."""
    template = form.save(commit=False)
    adding = template.pk is None
    if adding:
        template.team = membership.team
        template.created_by = membership.user
    try:
        with transaction.atomic():
            template.save()
            variables.instance = template
            variables.save()
    except IntegrityError:
        if adding:  # rolled back: the form is shown again as a new template
            template.pk = None
        raise ValidationError(f"Your team has registered {template.template_id} already.") from None
    return template
