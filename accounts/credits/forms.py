"""Forms of the credits pages. They validate; ``accounts.credits.services`` changes wallets."""

from django import forms

from accounts.models import Team

MAX_GRANT = 10**12  # a typo guard: 100 million USD


class GrantForm(forms.Form):
    """Grant (positive) or deduct (negative) credits; the member is chosen by the view."""

    amount = forms.IntegerField(
        label="Credits", min_value=-MAX_GRANT, max_value=MAX_GRANT,
        help_text="A negative number deducts. 10,000 credits = 1 USD.",
        widget=forms.NumberInput(attrs={"step": 1}),
    )
    reason = forms.CharField(label="Reason", max_length=300, strip=True,
                             help_text="Kept in the ledger; the member sees it.")

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("Enter a non-zero number of credits.")
        return amount


class CreditSettingsForm(forms.ModelForm):
    monthly_budget = forms.IntegerField(
        required=False, min_value=0, max_value=MAX_GRANT, label="Monthly team budget (credits)",
        help_text="The most the whole team may spend in a calendar month (reserved credits count). Empty: no limit.")
    monthly_allowance = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_GRANT, label="Monthly allowance per member (credits)",
        help_text="On the first of each month every member's available credits are topped up to this. Empty: none.")

    class Meta:
        model = Team
        fields = ["monthly_budget", "monthly_allowance"]


class ReviewForm(forms.Form):
    action = forms.ChoiceField(choices=[("release", "Release"), ("capture", "Capture")])
    amount = forms.IntegerField(required=False, min_value=0, max_value=MAX_GRANT,
                                help_text="Credits to charge; empty charges the estimate.")
