"""The form a team manager adds a provider key with."""

from django import forms

from generations.keys.services import validate_base_url
from generations.providers.registry import provider_choices


class ProviderKeyForm(forms.Form):
    provider = forms.ChoiceField(choices=provider_choices)
    label = forms.CharField(max_length=100, help_text="A name for this key, e.g. “Production”.")
    # Write-only: never rendered back, not even after a failed submit.
    api_key = forms.CharField(label="API key", max_length=500,
                              widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}))
    base_url = forms.CharField(label="Base URL", max_length=200, required=False, validators=[validate_base_url],
                               help_text="Leave empty for the provider's own API; its host alone works too.")
    models_override = forms.CharField(label="Models", required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                      help_text="Model ids this key serves, one per line; empty for the defaults "
                                                "(a gateway's own list, once “Test key” has fetched it).")
    make_default = forms.BooleanField(
        label="Make it the default key for its provider", required=False,
        help_text="Unticked, it is added as a fallback: the provider's current key keeps serving it, and this one "
                  "takes over only when that one is refused or disabled.")
