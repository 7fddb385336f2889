from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordForm

from accounts.models import Role
from generations.keys import validate_base_url
from generations.providers.registry import provider_choices


class SignInForm(AuthenticationForm):
    """Django's sign-in form, labelled for e-mail addresses."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "E-mail"
        self.fields["username"].widget.attrs.update({"autocomplete": "email", "inputmode": "email"})

    def clean_username(self):
        # Addresses are stored in lower case; people type them in any case.
        return (self.cleaned_data.get("username") or "").strip().lower()


class ChoosePasswordForm(SetPasswordForm):
    """The password an invitee chooses (validated against the invited address, which
    becomes the account's). Only ``cleaned_data`` is used: the invitation creates the user."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].label = "Password"
        self.fields["new_password2"].label = "Password again"


class PasswordResetRequestForm(PasswordResetForm):
    """The address to send a reset link to. ``send`` hands it to a task, which looks the
    address up and e-mails whoever has it (see ``accounts.tasks.send_password_reset``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["email"].label = "E-mail"

    def save(self, *args, **kwargs):  # Django's view calls this: never look the address up here
        raise NotImplementedError("use send()")

    def send(self, site: str) -> None:
        from accounts.tasks import send_password_reset

        send_password_reset.delay(self.cleaned_data["email"], site)


class AddMemberForm(forms.Form):
    email = forms.EmailField(label="E-mail", max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ProviderKeyForm(forms.Form):
    provider = forms.ChoiceField(choices=provider_choices)
    label = forms.CharField(max_length=100, help_text="A name for this key, e.g. “Production”.")
    # Write-only: never rendered back, not even after a failed submit.
    api_key = forms.CharField(label="API key", max_length=500,
                              widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}))
    base_url = forms.CharField(label="Base URL", max_length=200, required=False, validators=[validate_base_url],
                               help_text="Leave empty for the provider's own API.")
    models_override = forms.CharField(label="Models", required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                      help_text="Model ids this key serves, one per line; empty for the defaults.")
