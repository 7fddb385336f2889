"""An endpoint's URL, events and description (the team page and the Django admin)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from generations.providers import http
from generations.team_webhooks.models import Event, WebhookEndpoint


def clean_endpoint_url(raw: str) -> str:
    """https, or http only where the operator allows private addresses (the sandbox, a lab);
    an address that is private outright is refused now (a name is checked when sending)."""
    url = (raw or "").strip()
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and settings.KILN_ALLOW_PRIVATE_URLS):
        raise ValidationError("The URL must start with https:// (Kiln signs each delivery, and sends it "
                              "encrypted).", code="scheme")
    if parts.username or parts.password:
        raise ValidationError("Put no user name or password in the URL: check the signature instead.",
                              code="credentials")
    try:
        http.check_base_url(url)
    except http.DownloadError as exc:
        raise ValidationError(exc.message, code="private") from None
    return url


class EndpointForm(forms.ModelForm):
    events = forms.MultipleChoiceField(choices=Event.choices, widget=forms.CheckboxSelectMultiple,
                                       error_messages={"required": "Choose at least one event."})

    class Meta:
        model = WebhookEndpoint
        fields = ("url", "events", "description")
        labels = {"url": "Endpoint URL"}
        help_texts = {"url": "Where Kiln POSTs each event, e.g. https://ci.example.com/hooks/kiln.",
                      "description": "Optional: what listens there, for your team."}
        widgets = {"url": forms.URLInput(attrs={"placeholder": "https://", "autocomplete": "off"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance.pk and not self.is_bound:
            self.initial.setdefault("events", [Event.GENERATION_SUCCEEDED, Event.GENERATION_FAILED])

    def clean_url(self) -> str:
        return clean_endpoint_url(self.cleaned_data.get("url", ""))

    def clean_events(self) -> list[str]:
        chosen = self.cleaned_data.get("events") or []
        return [value for value, _ in Event.choices if value in chosen]
