from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordForm

from accounts.models import Role


class SignInForm(AuthenticationForm):
    """Django's sign-in form, labelled for e-mail addresses."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "E-mail"
        self.fields["username"].widget.attrs.update({"autocomplete": "email", "inputmode": "email"})

    def clean_username(self):
        # Addresses are stored in lower case; people type them in any case.
        return (self.cleaned_data.get("username") or "").strip().lower()

    def confirm_login_allowed(self, user):
        """An account a provider refused at a recheck is refused here too (accounts/oidc)."""
        super().confirm_login_allowed(user)
        from accounts.oidc.services import access_lost

        if access_lost(user):
            raise forms.ValidationError("Your company's sign-in provider no longer accepts this account: "
                                        "sign in through it instead.", code="access_lost")


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
