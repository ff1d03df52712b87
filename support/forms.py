"""Input of the staff actions: one form per action, named as the service's keywords."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from accounts.forms import StaffRecheckForm
from accounts.models import User
from support import selectors
from support.canned import CANNED_REPLIES, REJECTION_REASONS

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

NOTE_MAX_LENGTH = 1000
REASON_MAX_LENGTH = 500
MESSAGE_MAX_LENGTH = 4000


def _text_field(
    *,
    label: StrOrPromise,
    required: StrOrPromise | None,
    max_length: int,
    placeholder: StrOrPromise,
) -> forms.CharField:
    """A one-line text; `required` is the message for an empty one (None: may be empty)."""
    return forms.CharField(
        label=label,
        required=required is not None,
        max_length=max_length,
        error_messages={"required": required} if required else {},
        widget=forms.TextInput(attrs={"placeholder": placeholder}),
    )


def _canned_choices() -> list[tuple[str, StrOrPromise]]:
    """The canned replies in the page's language, shortened to fit a list."""
    return [("", _("— canned reply —"))] + [
        (key, Truncator(str(text)).chars(70)) for key, text in CANNED_REPLIES.items()
    ]


def _rejection_choices() -> list[tuple[str, StrOrPromise]]:
    return [(key, Truncator(str(text)).chars(70)) for key, text in REJECTION_REASONS.items()]


def _requester_field() -> forms.IntegerField:
    """The request of the requester an action is for (none: the one who opened the case).

    The service checks that it is a requester of the agent's case.
    """
    return forms.IntegerField(
        required=False,
        min_value=1,
        widget=forms.HiddenInput,
        error_messages={
            "invalid": _("Pick a requester of this case."),
            "min_value": _("Pick a requester of this case."),
        },
    )


class RequesterForm(forms.Form):
    """An action for one requester whose button is its whole input."""

    requester = _requester_field()


class RevealContactForm(forms.Form):
    """A contact on file of the account, or with `requester` the contact that requester typed."""

    requester = _requester_field()
    field = forms.ChoiceField(
        label=_("Contact"),
        choices=[("email", _("email")), ("phone", _("phone"))],
        error_messages={
            "required": _("Pick the email or the phone."),
            "invalid_choice": _("Pick the email or the phone."),
        },
    )
    reason = _text_field(
        label=_("Reason"),
        required=_("Say why you need the full value."),
        max_length=REASON_MAX_LENGTH,
        placeholder=_("Why you need the full value"),
    )


class AttestDocumentForm(forms.Form):
    requester = _requester_field()
    note = _text_field(
        label=_("Note"),
        required=_("Describe what you checked."),
        max_length=NOTE_MAX_LENGTH,
        placeholder=_("What you checked in the documents"),
    )


class DocumentApprovalRequestForm(forms.Form):
    """Ask a supervisor to approve the document check attested for one requester."""

    requester = _requester_field()
    note = _text_field(
        label=_("Note"),
        required=None,
        max_length=NOTE_MAX_LENGTH,
        placeholder=_("What the supervisor should look at"),
    )


class EmailChangeApprovalRequestForm(forms.Form):
    """Ask a supervisor to approve one login-email change, named by its id."""

    UNKNOWN = _("Pick a login email change of this case.")

    email_change = forms.IntegerField(
        min_value=1,
        widget=forms.HiddenInput,
        error_messages={"required": UNKNOWN, "invalid": UNKNOWN, "min_value": UNKNOWN},
    )
    note = _text_field(
        label=_("Note"),
        required=None,
        max_length=NOTE_MAX_LENGTH,
        placeholder=_("What the supervisor should look at"),
    )


class EmailChangeStartForm(forms.Form):
    requester = _requester_field()
    new_email = forms.EmailField(
        label=_("New login email"),
        max_length=254,
        error_messages={"required": _("Enter the new login email address.")},
        widget=forms.EmailInput(attrs={"placeholder": _("New login email")}),
    )


class AskCustomerForm(forms.Form):
    """A canned reply or a message of the agent's own (a canned reply wins when both come)."""

    canned = forms.ChoiceField(
        label=_("Canned reply"),
        choices=_canned_choices,
        required=False,
        error_messages={"invalid_choice": _("Pick a canned reply from the list.")},
    )
    message = forms.CharField(
        label=_("Message"),
        required=False,
        max_length=MESSAGE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": _("Or write your own message")}),
    )

    def clean(self) -> dict[str, Any] | None:
        cleaned_data = super().clean()
        given = self.cleaned_data.get("canned") or self.cleaned_data.get("message")
        if not self.errors and not given:
            raise forms.ValidationError(_("Write a message or pick a canned reply."))
        return cleaned_data


class RejectForm(forms.Form):
    reason = forms.ChoiceField(
        label=_("Reason"),
        choices=_rejection_choices,
        error_messages={
            "required": _("Pick a reason."),
            "invalid_choice": _("Pick a reason from the list."),
        },
    )


class EscalateForm(forms.Form):
    note = _text_field(
        label=_("Note"),
        required=_("Say why you escalate."),
        max_length=NOTE_MAX_LENGTH,
        placeholder=_("Why"),
    )


class ReleaseForm(forms.Form):
    reason = _text_field(
        label=_("Reason"),
        required=_("Say why you give the case back."),
        max_length=REASON_MAX_LENGTH,
        placeholder=_("Why you give it back"),
    )


class AgentChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: User) -> str:
        return obj.email


class ReassignForm(StaffRecheckForm):
    """The agent who gets the case; none puts it back in the queue (supervisors only).

    Offered are only staff who can sign in with their second factor and hold no case.
    The supervisor confirms with a fresh authenticator code.
    """

    recheck_action = "case_reassign"

    assignee = AgentChoiceField(
        label=_("Agent"),
        queryset=User.objects.none(),
        required=False,
        empty_label=_("back to the queue"),
        error_messages={"invalid_choice": _("Pick an agent from the list.")},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(
            forms.ModelChoiceField, self.fields["assignee"]
        ).queryset = selectors.agent_list_assignable()


class ApprovalDecisionForm(StaffRecheckForm):
    """A pending four-eyes approval, by id; anything else is refused before the service.

    The supervisor confirms each decision with a fresh authenticator code.
    """

    recheck_action = "approval_decide"

    UNKNOWN = _("This approval does not exist or was already decided.")

    approval_id = forms.IntegerField(
        min_value=1,
        widget=forms.HiddenInput,
        error_messages={
            "required": UNKNOWN,
            "invalid": UNKNOWN,
            "min_value": UNKNOWN,
        },
    )

    note = _text_field(
        label=_("Note to the agent"),
        required=None,
        max_length=NOTE_MAX_LENGTH,
        placeholder=_("Why (kept with the decision)"),
    )

    def clean_approval_id(self) -> int:
        approval_id = self.cleaned_data["approval_id"]
        if not selectors.approval_list_pending().filter(pk=approval_id).exists():
            raise forms.ValidationError(self.UNKNOWN)
        return approval_id


class NoteForm(forms.Form):
    """An internal note: staff read it on the timeline, the customer never does."""

    note = forms.CharField(
        label=_("Internal note"),
        max_length=MESSAGE_MAX_LENGTH,
        error_messages={"required": _("Write the note.")},
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": _("Only staff see this note")}),
    )


class ConfirmationForm(forms.Form):
    """The second step of an irreversible action: confirmed, and what comes after it."""

    confirmed = forms.BooleanField(required=False)
    then = forms.ChoiceField(
        required=False,
        choices=[("", ""), ("next", "next")],
        error_messages={"invalid_choice": _("This page has no such action.")},
    )
