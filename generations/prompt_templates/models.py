"""A team's registered prompt templates: Sealink renders a saved template (``template_id``
plus ``variables``) instead of a prompt, but has no endpoint that lists them. A team owner or
admin registers each one here, with its variables and a description, so the studio can offer
a picker with one field per variable; members only use them.

The rules a template id and a variable name follow are the forms' (``forms.py``), which take
them from the Sealink adapter; the database keeps the two uniqueness rules."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class PromptTemplate(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="prompt_templates")
    # Only Sealink has templates today; the provider is kept so an id means one thing.
    provider = models.CharField(max_length=40, default="sealink")
    template_id = models.CharField("template id", max_length=100)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, help_text="What it makes and how to fill it in; members see it in the studio.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "provider", "template_id"], name="unique_prompt_template"),
        ]

    def __str__(self):
        return f"{self.name} ({self.template_id})"


class TemplateVariable(models.Model):
    """One variable of a template: the studio draws a field for it, labelled ``label``
    (its name when empty), with ``hint`` under it; a required one must be filled."""

    template = models.ForeignKey(PromptTemplate, on_delete=models.CASCADE, related_name="variables")
    position = models.PositiveSmallIntegerField(default=0)
    name = models.CharField(max_length=64)
    label = models.CharField(max_length=100, blank=True)
    hint = models.CharField(max_length=200, blank=True)
    required = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["template", "name"], name="unique_template_variable")]

    def __str__(self):
        return self.name

    @property
    def display_label(self) -> str:
        return self.label or self.name
