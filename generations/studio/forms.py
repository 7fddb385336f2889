"""The studio form, built from a model's parameter schema.

One ``StudioForm`` per (model, operation): a field per ``Param`` of the
schema, the prompt (and negative prompt where the model takes one), a file
field plus a hidden "picked from the gallery" value per ``InputSlot``, a
one-time idempotency key, and the other models to send the same prompt to
("compare across models").

Field-level validation defers to the schema (``Param.clean``), so the
messages people see are the schema's own; the form's ``clean`` runs
``ModelSpec.clean_params`` over the result as the final word. Errors the
service finds later (``GenerationRejected.errors``) are mapped back onto
the fields with ``apply_rejection``.

No text field carries a browser ``maxlength``: a browser cuts a pasted text
at it without a word (a 50,000-character prompt became 4,000). A field with a
limit says so in ``field.limit`` instead (the page shows a counter against it)
and the form refuses a longer text with a message, keeping all of it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from generations.models import Generation, Kind, Media, Operation
from generations.prompt_templates.forms import attach_picker
from generations.providers.base import InputSlot, ModelSpec, Param, ParamType

# Names the form uses itself; a schema parameter never shadows them.
RESERVED_NAMES = frozenset({
    "model", "operation", "prompt", "negative_prompt", "idempotency_key", "compare_models", "remix_of",
    "template",
})
MAX_COMPARE = 3
# Parameters most people leave alone: shown folded under "Advanced".
ADVANCED_PARAMS = frozenset({"seed", "timeout", "fps"})
MEDIA_SUFFIX = "_media"

KIND_LABELS = {Kind.IMAGE: "Images", Kind.VIDEO: "Videos"}
OPERATION_LABELS = dict(Operation.choices)


def model_value(provider_id: str, model_id: str) -> str:
    """The picker's value for a model: ``provider:model_id``."""
    return f"{provider_id}:{model_id}"


def split_model_value(value: str | None, provider: str | None = None) -> tuple[str, str]:
    """``"shark:openai/gpt-image-2"`` → ("shark", "openai/gpt-image-2"); a bare model id
    takes ``provider`` from its own parameter (``?provider=&model=``)."""
    value = (value or "").strip()
    if ":" in value:
        provider_id, model_id = value.split(":", 1)
        return provider_id, model_id
    return (provider or "").strip(), value


def find_entry(catalog: Sequence, provider_id: str, model_id: str):
    return next((e for e in catalog if e.provider_id == provider_id and e.model.id == model_id), None)


def modes_taking(spec: ModelSpec, role: str) -> list[str]:
    """The operations of ``spec`` with an input slot for ``role``, in the model's order. A slot
    counts only for the operations it applies to: a model may declare a reference slot for a
    reference-to-video mode it does not offer."""
    return [op for op in spec.operations if any(slot.role == role for slot in spec.inputs_for(op))]


def default_entry(catalog: Sequence, *, kind: str = Kind.IMAGE, role: str | None = None):
    """The model the studio opens with: with ``role`` (use-as-input), the first one that has a
    mode taking it (None if none has); else the first image model, else the first."""
    if role:
        return next((e for e in catalog if modes_taking(e.model, role)), None)
    return next((e for e in catalog if e.model.kind == kind), None) or (catalog[0] if catalog else None)


def choose_operation(spec: ModelSpec, wanted: str | None, *, role: str | None = None) -> str:
    """With ``role``: ``wanted`` if it takes that input, else the first mode that does. Then
    ``wanted`` if the model offers it, else the model's first mode."""
    if role and (modes := modes_taking(spec, role)):
        return wanted if wanted in modes else modes[0]
    return wanted if wanted in spec.operations else spec.operations[0]


def catalog_groups(catalog: Sequence) -> list[tuple[str, list[tuple[str, str]]]]:
    """Choices for the model picker, grouped by provider and kind (catalog order kept)."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for entry in catalog:
        label = f"{entry.provider_name} · {KIND_LABELS.get(entry.model.kind, entry.model.kind)}"
        groups.setdefault(label, []).append((model_value(entry.provider_id, entry.model.id), entry.model.label))
    return list(groups.items())


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


# ---------------------------------------------------------------------------
# Fields whose validation is the schema's own


class SchemaFieldMixin:
    """Renders like the Django field it extends; validates with ``Param.clean``."""

    param: Param

    def clean(self, value):
        try:
            return self.param.clean(value)
        except ValueError as exc:
            raise ValidationError(str(exc), code="schema") from None


class SchemaIntegerField(SchemaFieldMixin, forms.IntegerField):
    pass


class SchemaFloatField(SchemaFieldMixin, forms.FloatField):
    pass


class SchemaChoiceField(SchemaFieldMixin, forms.ChoiceField):
    pass


class SchemaBooleanField(SchemaFieldMixin, forms.BooleanField):
    pass


class SchemaCharField(SchemaFieldMixin, forms.CharField):
    def clean(self, value):
        return super().clean(one_newline(value) if isinstance(value, str) else value)


def _number_text(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


def param_field(param: Param) -> forms.Field:
    help_parts = [param.help] if param.help else []
    common: dict[str, Any] = {"label": param.display_label, "required": param.required}
    match param.type:
        case ParamType.INTEGER | ParamType.NUMBER:
            integer = param.type == ParamType.INTEGER
            cls = SchemaIntegerField if integer else SchemaFloatField
            field = cls(min_value=param.min, max_value=param.max, initial=param.default, **common)
            if not integer:
                field.widget.attrs["step"] = "any"
            if param.min is not None and param.max is not None and not param.help:
                help_parts.append(f"From {_number_text(param.min)} to {_number_text(param.max)}.")
        case ParamType.ENUM:
            choices = [(str(c), str(c)) for c in param.choices]
            if not param.required and param.default is None:
                choices.insert(0, ("", "—"))
            field = SchemaChoiceField(choices=choices, initial=None if param.default is None else str(param.default),
                                      **common)
        case ParamType.BOOLEAN:
            field = SchemaBooleanField(initial=bool(param.default), label=param.display_label, required=False)
        case ParamType.TEXT:
            field = SchemaCharField(max_length=param.max_length, initial=param.default, widget=forms.Textarea(attrs={"rows": 3}),
                                    **common)
        case ParamType.TAGS:
            initial = ", ".join(param.default) if isinstance(param.default, list | tuple) else param.default
            field = SchemaCharField(initial=initial, **common)
            help_parts.append("Separate with commas.")
        case _:
            field = SchemaCharField(max_length=param.max_length, initial=param.default, **common)
    field.param = param
    field.help_text = " ".join(help_parts)
    if isinstance(field, SchemaCharField):
        limit_by_counter(field, param.max_length)
    return field


def limit_by_counter(field: forms.Field, limit: int | None) -> None:
    """``limit`` for the page's counter, and no ``maxlength`` for the browser to cut at."""
    field.widget.attrs.pop("maxlength", None)
    field.limit = limit
    field.limit_text = f"{limit:,}" if limit else ""
    if limit:
        field.widget.attrs["data-limit"] = str(limit)


def one_newline(text: str) -> str:
    """A browser sends a textarea's line breaks as CRLF but counts each as one character:
    count (and keep) them as the counter does."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def too_long(text: str, limit: int, what: str, spec: ModelSpec) -> None:
    """Refuse ``text`` longer than ``limit``, saying by how much; nothing is cut."""
    if len(text) > limit:
        raise ValidationError(
            f"{spec.label} takes {what} of at most {limit:,} characters; this one has {len(text):,} "
            f"({len(text) - limit:,} too many). Nothing was cut: shorten it and generate again.",
            code="max_length")


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one input (reference images)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(d, initial) for d in data if d]
        return [single(data, initial)] if data else []


@dataclass
class SlotRow:
    """What the template needs to draw one input slot."""

    slot: InputSlot
    upload: forms.BoundField
    picked: forms.BoundField
    media: list[Media]

    @property
    def label(self) -> str:
        return self.slot.label or dict(_role_labels()).get(self.slot.role, self.slot.role)

    @property
    def accept(self) -> str:
        return "video/mp4,video/webm,video/quicktime" if self.slot.kind == Kind.VIDEO else "image/png,image/jpeg,image/webp"


def _role_labels():
    from generations.models import InputRole

    return InputRole.choices


# ---------------------------------------------------------------------------
# The form


class StudioForm(forms.Form):
    # A message for the top of the form (a remix whose model is gone, a refused pick).
    notice = ""
    seed_fixed = False  # "Reuse seed" fixed the seed: the Advanced settings open to show it
    model = forms.ChoiceField(label="Model")
    operation = forms.ChoiceField(label="Mode", required=False)
    prompt = forms.CharField(label="Prompt", widget=forms.Textarea(attrs={"rows": 4}))
    idempotency_key = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)
    remix_of = forms.UUIDField(widget=forms.HiddenInput, required=False)

    def __init__(self, data=None, files=None, *, entry, operation: str, catalog: Sequence, membership,
                 initial: Mapping[str, Any] | None = None, **kwargs):
        initial = dict(initial or {})
        initial.setdefault("idempotency_key", new_idempotency_key())
        initial.setdefault("model", model_value(entry.provider_id, entry.model.id))
        initial.setdefault("operation", operation)
        super().__init__(data, files, initial=initial, **kwargs)
        self.entry = entry
        self.spec: ModelSpec = entry.model
        self.operation = operation
        self.catalog = catalog
        self.membership = membership
        self.params: dict[str, Any] = {}
        self.estimate_skipped: list[str] = []   # set by estimate_params()
        self.picked_media: dict[str, list[Media]] = {}
        self.compare_entries: list = []
        self.remix: Generation | None = None

        spec = self.spec
        self.fields["model"].choices = catalog_groups(catalog)
        self.fields["operation"].choices = [(op, OPERATION_LABELS.get(op, op)) for op in spec.operations]
        prompt = self.fields["prompt"]
        prompt.required = spec.prompt_required_for(operation)
        limit_by_counter(prompt, spec.prompt_max_length)
        if not prompt.required:
            prompt.help_text = "Optional in this mode."
        if spec.negative_prompt:
            self.fields["negative_prompt"] = forms.CharField(
                label="Negative prompt", required=False,
                widget=forms.Textarea(attrs={"rows": 2}), help_text="What to keep out of the result.")
            limit_by_counter(self.fields["negative_prompt"], spec.negative_prompt_limit)

        self.param_names: list[str] = []
        for param in spec.params_for(operation):
            if param.name in RESERVED_NAMES:
                continue
            self.fields[param.name] = param_field(param)
            self.param_names.append(param.name)
        # A mode that renders a saved template: the team's registered ones, a field per variable.
        self.template_picker = attach_picker(self)
        for bound in self.template_picker.variable_fields if self.template_picker else ():
            limit_by_counter(bound.field, bound.field.max_length)
        self.param_names = [name for name in self.param_names if name in self.fields]

        self.slots: list[InputSlot] = spec.inputs_for(operation)
        for slot in self.slots:
            if slot.max_count > 1:
                upload = MultipleFileField(required=False, label=slot.label or slot.role)
            else:
                upload = forms.FileField(required=False, label=slot.label or slot.role)
            upload.widget.attrs["accept"] = "video/*" if slot.kind == Kind.VIDEO else "image/*"
            # The chosen files stay chosen across every swap of the form (another model with this
            # input, a form sent back with errors, the fresh form after a submit): no page can put
            # a file back into a file input, so the element itself is kept.
            upload.widget.attrs["hx-preserve"] = "true"
            self.fields[slot.role] = upload
            self.fields[slot.role + MEDIA_SUFFIX] = forms.CharField(widget=forms.HiddenInput, required=False, max_length=400)

        others = self.compare_choices()
        if others:
            self.fields["compare_models"] = forms.MultipleChoiceField(
                label="Also send to", required=False, choices=others, widget=forms.CheckboxSelectMultiple,
                help_text=f"The same prompt to up to {MAX_COMPARE} more models, side by side; each is charged on its own.")

    # -- what the template draws ------------------------------------------------

    @property
    def param_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.param_names]

    @property
    def main_param_fields(self) -> list[forms.BoundField]:
        drawn_elsewhere = self.template_picker.param_names if self.template_picker else ()
        return [self[name] for name in self.param_names if name not in ADVANCED_PARAMS and name not in drawn_elsewhere]

    @property
    def edit_of(self) -> Generation | None:
        """The failed job this form edits and retries ("Edit and retry"), if it is one."""
        return self.remix if self.remix is not None and self.remix.needs_edit else None

    @property
    def advanced_param_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.param_names if name in ADVANCED_PARAMS]

    @property
    def advanced_has_errors(self) -> bool:
        return self.is_bound and any(name in self.errors for name in ADVANCED_PARAMS)

    @property
    def slot_rows(self) -> list[SlotRow]:
        return [SlotRow(slot, self[slot.role], self[slot.role + MEDIA_SUFFIX], self.media_for_display(slot))
                for slot in self.slots]

    def media_for_display(self, slot: InputSlot) -> list[Media]:
        if slot.role in self.picked_media:
            return self.picked_media[slot.role]
        raw = self[slot.role + MEDIA_SUFFIX].value()
        return self.lookup_media(slot, split_ids(raw))[0]

    def compare_choices(self) -> list[tuple[str, str]]:
        """Other models of the same kind that offer this operation."""
        return [
            (model_value(e.provider_id, e.model.id), f"{e.model.label} ({e.provider_name})")
            for e in self.catalog
            if e.model.kind == self.spec.kind and self.operation in e.model.operations
            and not (e.provider_id == self.entry.provider_id and e.model.id == self.spec.id)
        ]

    # -- validation -------------------------------------------------------------

    def clean_operation(self) -> str:
        return self.cleaned_data.get("operation") or self.operation

    def clean_idempotency_key(self) -> str | None:
        key = (self.cleaned_data.get("idempotency_key") or "").strip()
        if not key:
            return None
        if not all(c.isalnum() or c == "-" for c in key):
            raise ValidationError("This form has expired; reload the page.")
        return key

    def clean_prompt(self) -> str:
        prompt = one_newline(_no_control_chars(self.cleaned_data.get("prompt", "")))
        too_long(prompt, self.spec.prompt_max_length, "a prompt", self.spec)
        return prompt

    def clean_negative_prompt(self) -> str:
        text = one_newline(_no_control_chars(self.cleaned_data.get("negative_prompt", "")))
        too_long(text, self.spec.negative_prompt_limit, "a negative prompt", self.spec)
        return text

    def clean_remix_of(self) -> Generation | None:
        public_id = self.cleaned_data.get("remix_of")
        if not public_id:
            return None
        remix = Generation.objects.filter(team_id=self.membership.team_id, public_id=public_id).first()
        if remix is None:
            raise ValidationError("The generation to remix is not in your team's gallery.")
        self.remix = remix
        return remix

    def clean_compare_models(self) -> list:
        values = self.cleaned_data.get("compare_models") or []
        if len(values) > MAX_COMPARE:
            raise ValidationError(f"Compare with at most {MAX_COMPARE} other models at once.")
        self.compare_entries = [find_entry(self.catalog, *split_model_value(v)) for v in values]
        return values

    def clean(self):
        cleaned = super().clean()
        if not any(name in self.errors for name in self.param_names):
            values = {}
            for name in self.param_names:
                value = cleaned.get(name)
                if value is not None and value != "":
                    values[name] = value
            if self.template_picker:
                values.update(self.template_picker.params(cleaned))
            params, errors = self.spec.clean_params(self.operation, values)
            for name, message in errors.items():
                self.add_error(name if name in self.fields else None, message)
            self.params = params
        for slot in self.slots:
            self._clean_slot(slot)
        return cleaned

    def _clean_slot(self, slot: InputSlot) -> None:
        label = (slot.label or dict(_role_labels()).get(slot.role, slot.role)).lower()
        uploads = self.cleaned_data.get(slot.role) or []
        if not isinstance(uploads, list):
            uploads = [uploads]
        ids = split_ids(self.cleaned_data.get(slot.role + MEDIA_SUFFIX))
        media, problem = self.lookup_media(slot, ids)
        if problem:
            self.add_error(slot.role, problem)
            return
        self.picked_media[slot.role] = media
        count = len(uploads) + len(media)
        if slot.required and count == 0:
            what = "a video" if slot.kind == Kind.VIDEO else "an image"
            self.add_error(slot.role, f"Add the {label}: upload {what} or pick one from the gallery.")
        elif count > slot.max_count:
            if slot.max_count == 1:
                self.add_error(slot.role, f"Use one {label}: either an upload or a pick from the gallery.")
            else:
                self.add_error(slot.role, f"At most {slot.max_count} files here (this has {count}).")

    def lookup_media(self, slot: InputSlot, ids: list[str]) -> tuple[list[Media], str]:
        if not ids:
            return [], ""
        parsed = []
        for raw in ids:
            try:
                parsed.append(uuid.UUID(raw))
            except ValueError:
                return [], "Pick the file from your team's gallery."
        found = {m.public_id: m for m in Media.objects.filter(
            public_id__in=parsed, generation__team_id=self.membership.team_id).select_related("generation")}
        if len(found) != len(set(parsed)):
            return [], "That file is not in your team's gallery."
        media = [found[p] for p in dict.fromkeys(parsed)]
        if any(m.kind != slot.kind for m in media):
            return [], f"Pick {'a video' if slot.kind == Kind.VIDEO else 'an image'} here."
        return media, ""

    # -- what the service gets --------------------------------------------------

    def input_specs(self) -> list:
        from generations.services import InputSpec

        specs = []
        for slot in self.slots:
            uploads = self.cleaned_data.get(slot.role) or []
            if not isinstance(uploads, list):
                uploads = [uploads]
            for upload in uploads:
                upload.seek(0)
                specs.append(InputSpec(role=slot.role, upload=upload))
            specs.extend(InputSpec(role=slot.role, source_media=m) for m in self.picked_media.get(slot.role, []))
        return specs

    def params_for_entry(self, entry, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """This form's values, as far as another model's schema accepts them (compare):
        a value the other model refuses falls back to its default."""
        params = self.params if params is None else params
        if entry is self.entry:
            return dict(params)
        return _with_defaults(entry.model, self.operation, params)

    def estimate_params(self) -> dict[str, Any]:
        """Best-effort parameters for the estimate of a form being filled in:
        each value the schema accepts, the default for the others. The labels of the
        fields whose value it refused go to ``estimate_skipped`` (the estimate says so)."""
        values = {}
        self.estimate_skipped = []
        data = self.data if self.is_bound else {k: v for k, v in self.initial.items() if v is not None}
        for name in self.param_names:
            field = self.fields[name]
            if not self.is_bound and name not in data:
                continue
            raw = field.widget.value_from_datadict(data, self.files, self.add_prefix(name))
            try:
                value = field.param.clean(raw)
            except ValueError:
                value = None
                self.estimate_skipped.append(str(field.label))
            if value is not None:
                values[name] = value
        return _with_defaults(self.spec, self.operation, values)

    def apply_rejection(self, errors: Mapping[str, str]) -> None:
        """Put a service's ``GenerationRejected.errors`` on the fields they name."""
        for name, message in errors.items():
            field = _field_for_error(name, self.fields)
            if field is not None and field in self.errors and message in self.errors[field]:
                continue
            self.add_error(field, message)

    def fresh_initial(self) -> dict[str, Any]:
        """Initial values for the next form after a successful submit: everything as it
        was sent (model, mode, prompt, parameters, the files picked from the gallery, the
        models to compare with), so the next try changes only what the member changes;
        a new one-time key. The upload fields keep their files in the browser
        (``hx-preserve``): no form can send a file back to it."""
        initial = {name: self.data.get(name) for name in ("prompt", "negative_prompt") if name in self.data}
        for name in self.param_names:
            value = self.params.get(name)
            if isinstance(value, list):
                value = ", ".join(value)
            initial[name] = value
        for role, media in self.picked_media.items():
            initial[role + MEDIA_SUFFIX] = ",".join(str(m.public_id) for m in media)
        if self.cleaned_data.get("compare_models"):
            initial["compare_models"] = self.cleaned_data["compare_models"]
        if self.template_picker:
            initial.update(self.template_picker.fresh_initial())
        return initial


def _with_defaults(spec: ModelSpec, operation: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values ``spec`` accepts, its defaults for the others."""
    accepted = {}
    for param in spec.params_for(operation):
        try:
            value = param.clean(values.get(param.name))
        except ValueError:
            value = None
        if value is None:
            value = param.default
        if value is not None:
            accepted[param.name] = value
    return spec.clean_params(operation, accepted)[0]


def _field_for_error(name: str, fields: Iterable[str]) -> str | None:
    if name in ("__all__", "", None):
        return None
    for candidate in (name, name.removeprefix("params."), name.removeprefix("inputs.")):
        if candidate in fields:
            return candidate
    return None


def _no_control_chars(text: str) -> str:
    if text and any((ord(c) < 32 and c not in "\t\n\r") or ord(c) == 127 for c in text):
        raise ValidationError("Control characters are not allowed.")
    return text


def split_ids(raw: str | None) -> list[str]:
    return [part.strip() for part in (raw or "").split(",") if part.strip()]
