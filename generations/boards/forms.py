"""The name a board is made or renamed with (the services check it is free in the team)."""

from django import forms

from generations.boards.models import NAME_MAX_LENGTH


class BoardNameForm(forms.Form):
    name = forms.CharField(max_length=NAME_MAX_LENGTH, error_messages={
        "required": "Give the board a name.",
        "max_length": f"A board's name can be at most {NAME_MAX_LENGTH} characters.",
    })
