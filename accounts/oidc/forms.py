from django import forms

from accounts.oidc.models import RULE_ROLES


class DomainRuleForm(forms.Form):
    provider = forms.ChoiceField(label="Provider")
    domain = forms.CharField(label="E-mail domain", max_length=253,
                             widget=forms.TextInput(attrs={"placeholder": "example.com", "autocomplete": "off"}))
    role = forms.ChoiceField(label="Role", choices=RULE_ROLES, initial="member")

    def __init__(self, *args, providers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [(p["id"], p["label"]) for p in providers]
