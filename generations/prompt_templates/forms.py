"""Registering a template (the team's page and the Django admin), and picking one in the studio.

A template id and the variable names follow Sealink's rules (``generations.providers.sealink``):
what is refused here would be refused by Sealink when a member generates with it.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.urls import reverse

from generations.prompt_templates.models import PromptTemplate, TemplateVariable
from generations.providers.sealink import (
    MAX_VARIABLE_LENGTH,
    MAX_VARIABLES,
    format_variables,
    is_variable_name,
    parse_variables,
)

TEMPLATE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
EXTRA_VARIABLE_ROWS = 3
DESCRIPTION_MAX_LENGTH = 1000


def clean_template_id(raw: str) -> str:
    value = (raw or "").strip()
    if not TEMPLATE_ID.match(value):
        raise ValidationError("A template id is letters, digits and _ - . : (up to 100, no spaces), as Sealink "
                              "shows it, e.g. tpl_sunset.", code="invalid")
    return value


class PromptTemplateForm(forms.ModelForm):
    """A template's id, name and description; ``team`` is the caller's (the team page) or a
    field of the form (the admin), and an id is registered once per team."""

    class Meta:
        model = PromptTemplate
        fields = ("template_id", "name", "description")
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"template_id": "As Sealink shows it, e.g. tpl_sunset.",
                      "name": "What members see in the studio's template picker."}

    def __init__(self, *args, team=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.team = team
        # Validated here, not by a browser ``maxlength`` that would cut a pasted text without a word:
        # a longer description is refused with a message, and the help text says the limit.
        description = self.fields["description"]
        description.max_length = DESCRIPTION_MAX_LENGTH
        description.validators.append(MaxLengthValidator(DESCRIPTION_MAX_LENGTH))
        description.help_text = " ".join(filter(None, (str(description.help_text),
                                                       f"Up to {DESCRIPTION_MAX_LENGTH:,} characters.")))

    def clean_template_id(self) -> str:
        return clean_template_id(self.cleaned_data.get("template_id", ""))

    def clean(self):
        cleaned = super().clean()
        team = self.team or cleaned.get("team") or getattr(self.instance, "team", None)
        template_id = cleaned.get("template_id")
        if team is not None and template_id:
            taken = (PromptTemplate.objects.filter(team=team, provider=self.instance.provider or "sealink",
                                                   template_id=template_id).exclude(pk=self.instance.pk).first())
            if taken is not None:
                self.add_error("template_id", f"Your team has registered {template_id} already, as “{taken.name}”.")
        return cleaned


class TemplateVariableForm(forms.ModelForm):
    class Meta:
        model = TemplateVariable
        fields = ("name", "label", "hint", "required")
        help_texts = {"name": "As the template writes it."}

    def has_changed(self) -> bool:
        # A new row with no name, label or hint is a spare row, whatever its "Required" tick says.
        if self.instance.pk is None and not any(
                (self.data.get(self.add_prefix(name)) or "").strip() for name in ("name", "label", "hint")):
            return False
        return super().has_changed()

    def clean_name(self) -> str:
        name = (self.cleaned_data.get("name") or "").strip()
        if not is_variable_name(name):
            raise ValidationError(f"{name[:40]!r} is not a variable name Sealink takes: letters, digits and _ . -, "
                                  "starting with a letter or _.", code="invalid")
        return name


class BaseVariableFormSet(forms.BaseInlineFormSet):
    """A template's variables in order; a name once per template."""

    def clean(self):
        # Before Django's own uniqueness check, whose message does not name the variable.
        seen: set[str] = set()
        kept = 0
        for form in self.forms:
            if not form.cleaned_data or form.cleaned_data.get("DELETE") or not form.cleaned_data.get("name"):
                continue
            kept += 1
            name = form.cleaned_data["name"]
            if name in seen:
                form.add_error("name", f"{name} is given twice.")
            seen.add(name)
        if kept > MAX_VARIABLES:
            raise ValidationError(f"At most {MAX_VARIABLES} variables.")
        if not any(form.errors for form in self.forms):
            super().clean()

    def save(self, commit=True):
        # Their order on the page is their order in the studio.
        rows = super().save(commit=False)
        for obj in self.deleted_objects:
            obj.delete()
        order = {id(f.instance): i for i, f in enumerate(self.forms)}
        for row in rows:
            row.position = order.get(id(row), row.position)
            if commit:
                row.save()
        return rows


VariableFormSet = forms.inlineformset_factory(
    PromptTemplate, TemplateVariable, form=TemplateVariableForm, formset=BaseVariableFormSet,
    extra=EXTRA_VARIABLE_ROWS, can_delete=True, max_num=MAX_VARIABLES, validate_max=True)


# ---------------------------------------------------------------------------
# The studio's picker

TEMPLATE_FIELD = "template"
VARIABLE_PREFIX = "var_"
# The params the picker fills in when a registered template is chosen.
TEMPLATE_PARAMS = ("template_id", "variables")


def variable_field_name(name: str) -> str:
    return VARIABLE_PREFIX + name


class TemplatePicker:
    """The team's registered templates on a studio form whose mode renders a template.

    With one chosen (the ``template`` field), the form has a field per variable and no
    ``template_id`` / ``variables`` fields: ``params`` gives those from the chosen
    template. With "another template id", the two fields are there as before, so an
    unregistered id can still be typed."""

    def __init__(self, form: forms.Form, templates: list[PromptTemplate]):
        self.form = form
        self.templates = templates
        self.chosen: PromptTemplate | None = self._choose()
        if templates:
            choices = [(t.template_id, t.name) for t in templates] + [("", "Another template id (type it)")]
            # Another template draws other fields: the fieldset is asked for again, as for another mode.
            swap = {"hx-get": reverse("generations:studio_fields"), "hx-trigger": "change",
                    "hx-include": "#studio-form", "hx-target": "#studio-fieldset",
                    "hx-sync": "#studio-fieldset:replace"}
            form.fields[TEMPLATE_FIELD] = forms.ChoiceField(label="Your team's templates", required=False, choices=choices,
                                                            widget=forms.Select(attrs=swap))
            form.initial[TEMPLATE_FIELD] = self.chosen.template_id if self.chosen else ""
        if self.chosen is None:
            return
        for name in TEMPLATE_PARAMS:
            form.fields.pop(name, None)
        values = self._initial_values()
        for variable in self.chosen.variables.all():
            field_name = variable_field_name(variable.name)
            form.fields[field_name] = forms.CharField(
                label=variable.display_label, required=variable.required, help_text=variable.hint,
                max_length=MAX_VARIABLE_LENGTH,
                error_messages={"required": f"Fill in {variable.display_label}: the template needs it."})
            if variable.name in values:
                form.initial[field_name] = values[variable.name]

    @property
    def param_names(self) -> tuple[str, ...]:
        return TEMPLATE_PARAMS

    def _source(self) -> Any:
        return self.form.data if self.form.is_bound else self.form.initial

    def _choose(self) -> PromptTemplate | None:
        by_id = {t.template_id: t for t in self.templates}
        source = self._source()
        wanted = source.get(TEMPLATE_FIELD)
        if wanted is not None:      # "" is "another template id": typed
            return by_id.get(wanted) if wanted else None
        if self.form.is_bound:      # sent without a picker (no JavaScript yet, a script): as typed
            return None
        typed = source.get("template_id")
        if typed:                   # a remix: the job's template, when the team has registered it
            return by_id.get(typed)
        return self.templates[0] if self.templates else None

    def _initial_values(self) -> dict[str, str]:
        """A remix's variables, for the fields they fill."""
        raw = self.form.initial.get("variables")
        if not raw:
            return {}
        try:
            return parse_variables(raw)
        except ValueError:
            return {}

    @property
    def variable_fields(self) -> list[forms.BoundField]:
        if self.chosen is None:
            return []
        return [self.form[variable_field_name(v.name)] for v in self.chosen.variables.all()]

    @property
    def typed_fields(self) -> list[forms.BoundField]:
        return [] if self.chosen else [self.form[name] for name in TEMPLATE_PARAMS if name in self.form.fields]

    def params(self, cleaned: dict[str, Any]) -> dict[str, Any]:
        """``template_id`` and ``variables`` from the chosen template and its fields (blank ones left out)."""
        if self.chosen is None:
            return {}
        values = {}
        for variable in self.chosen.variables.all():
            value = (cleaned.get(variable_field_name(variable.name)) or "").strip()
            if value:
                values[variable.name] = value
        return {"template_id": self.chosen.template_id, "variables": format_variables(values)}

    def fresh_initial(self) -> dict[str, Any]:
        """What the next form keeps after a submit: the template and what was typed for it."""
        initial: dict[str, Any] = {TEMPLATE_FIELD: self.chosen.template_id if self.chosen else ""}
        if self.chosen is not None:
            for variable in self.chosen.variables.all():
                name = variable_field_name(variable.name)
                initial[name] = self.form.data.get(name, "")
        return initial


def attach_picker(form) -> TemplatePicker | None:
    """The picker, on a studio form whose model and mode render a template (a ``template_id``
    parameter); None on any other."""
    if not any(param.name == "template_id" for param in form.spec.params_for(form.operation)):
        return None
    templates = list(PromptTemplate.objects.filter(team_id=form.membership.team_id, provider=form.entry.provider_id)
                     .prefetch_related("variables"))
    return TemplatePicker(form, templates)


def carry_over(query) -> dict[str, Any]:
    """The picker's values from a studio request, for the fields drawn again (another model, mode
    or template). ``template`` is kept even when empty: it then means "another template id"."""
    initial = {name: query[name] for name in query if name.startswith(VARIABLE_PREFIX) and query.get(name)}
    if TEMPLATE_FIELD in query:
        initial[TEMPLATE_FIELD] = query[TEMPLATE_FIELD]
    return initial
