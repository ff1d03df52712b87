"""Forms shared by every app: which of a page's actions a POST asks for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _


class ActionForm(forms.Form):
    """The `action` of a POST, one of the page's own; anything else is a validation error.

    A page with several buttons names each action; the view looks the form and the service
    of the action up in its table only after this form said the name is one of them.
    """

    action = forms.ChoiceField(
        error_messages={
            "required": _("Choose what to do."),
            "invalid_choice": _("This page has no such action."),
        }
    )

    def __init__(self, data: Any, *, actions: Iterable[str]) -> None:
        super().__init__(data)
        cast(forms.ChoiceField, self.fields["action"]).choices = [(name, name) for name in actions]


class NoInputForm(forms.Form):
    """An action whose button is its whole input: nothing to validate but the action."""
