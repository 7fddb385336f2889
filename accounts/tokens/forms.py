"""The form that makes a personal access token: a name, scopes, and when it expires."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.utils import timezone

from accounts.tokens.models import Scope
from accounts.tokens.services import NAME_MAX_LENGTH

EXPIRY_CHOICES = [
    ("never", "Never"),
    ("7", "In 7 days"),
    ("30", "In 30 days"),
    ("90", "In 90 days"),
    ("date", "On a date"),
]


class TokenForm(forms.Form):
    name = forms.CharField(max_length=NAME_MAX_LENGTH, strip=True,
                           help_text="What uses it, so you can tell it apart later: “CI renders”, “Slack bot”.",
                           widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "CI renders"}))
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple,
                                       error_messages={"required": "Choose at least one scope."})
    expiry = forms.ChoiceField(choices=EXPIRY_CHOICES, initial="90", widget=forms.RadioSelect, label="Expires")
    expires_on = forms.DateField(required=False, label="Expiry date",
                                 widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
                                 help_text="The token stops working at the end of this day.")

    def clean(self):
        cleaned = super().clean()
        expiry = cleaned.get("expiry")
        cleaned["expires_at"] = None
        if expiry in {"7", "30", "90"}:
            cleaned["expires_at"] = timezone.now() + timedelta(days=int(expiry))
        elif expiry == "date":
            day = cleaned.get("expires_on")
            if day is None:
                if "expires_on" not in self.errors:
                    self.add_error("expires_on", "Choose the date the token expires.")
            elif day <= timezone.localdate():
                self.add_error("expires_on", "Choose a date after today.")
            else:
                # The end of that day, in the site's time zone.
                cleaned["expires_at"] = timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))
        return cleaned
