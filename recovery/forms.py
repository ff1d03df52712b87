"""Input of the recovery pages: validation only, with clear localized messages."""

from __future__ import annotations

from django import forms
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from accounts.contacts import InvalidPhoneNumber, phone_to_e164
from accounts.forms import EMAIL_MAX_LENGTH, PhoneNumberField
from support.evidence import MAX_EVIDENCE_BYTES, MAX_EVIDENCE_FILES, sniff_content_type

MAX_EMAILS_TRIED = 5


class PhoneForm(forms.Form):
    phone = PhoneNumberField(label=_("Your mobile phone number"))


class SixDigitCodeForm(forms.Form):
    code = forms.CharField(
        label=_("6-digit code"),
        max_length=12,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def clean_code(self) -> str:
        code = self.cleaned_data["code"].replace(" ", "").replace("-", "")
        if not (code.isdigit() and len(code) == 6):
            raise forms.ValidationError(_("Enter the 6 digits of the code we sent you."))
        return code


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class EvidenceField(forms.FileField):
    """Up to five JPEG, PNG or PDF files of at most 10 MB, recognised by their content."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault(
            "widget", MultipleFileInput(attrs={"accept": "image/jpeg,image/png,application/pdf"})
        )
        super().__init__(**kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else ([data] if data else [])
        if len(files) > MAX_EVIDENCE_FILES:
            raise forms.ValidationError(
                _("Attach at most %(count)d files.") % {"count": MAX_EVIDENCE_FILES}
            )
        cleaned = []
        for upload in files:
            upload = super().clean(upload, initial)
            if upload.size > MAX_EVIDENCE_BYTES:
                raise forms.ValidationError(_("Each file may be at most 10 MB."))
            head = upload.read(16)
            upload.seek(0)
            if sniff_content_type(head) is None:
                raise forms.ValidationError(
                    _("Only JPEG or PNG images and PDF documents can be attached.")
                )
            cleaned.append(upload)
        return cleaned


class HelpForm(forms.Form):
    contact_email = forms.EmailField(
        label=_("Email address where we can reach you"),
        max_length=EMAIL_MAX_LENGTH,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    contact_phone = PhoneNumberField(label=_("Mobile phone number on your account"), required=False)
    emails_tried = forms.CharField(
        label=_("Email addresses you may have used for your account"),
        help_text=_("One per line."),
        required=False,
        max_length=(EMAIL_MAX_LENGTH + 1) * MAX_EMAILS_TRIED,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    description = forms.CharField(
        label=_("What happened?"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 5}),
    )
    evidence = EvidenceField(
        label=_("Documents (optional)"),
        required=False,
        help_text=ngettext_lazy(
            "Up to %(count)d file: JPEG, PNG or PDF, at most 10 MB. For example a photo of "
            "your ID.",
            "Up to %(count)d files: JPEG, PNG or PDF, at most 10 MB each. For example a photo of "
            "your ID.",
            "count",
        )
        % {"count": MAX_EVIDENCE_FILES},
    )

    def clean_emails_tried(self) -> list[str]:
        raw = self.cleaned_data["emails_tried"].replace(",", "\n").split()
        emails = []
        for email in raw:
            try:
                validate_email(email)
                if len(email) > EMAIL_MAX_LENGTH:
                    raise forms.ValidationError("too long")
            except forms.ValidationError:
                raise forms.ValidationError(
                    _("%(email)s is not a valid email address.") % {"email": email}
                ) from None
            emails.append(email.lower())
        if len(emails) > MAX_EMAILS_TRIED:
            raise forms.ValidationError(
                _("List at most %(count)d addresses.") % {"count": MAX_EMAILS_TRIED}
            )
        return emails


class ReplyForm(forms.Form):
    message = forms.CharField(
        label=_("Your message"),
        max_length=4000,
        error_messages={"required": _("Write your message first.")},
        widget=forms.Textarea(attrs={"rows": 4}),
    )


class ProofCodeForm(SixDigitCodeForm):
    """A code from the status page, with the channel it came by."""

    kind = forms.ChoiceField(
        label=_("The code came by"),
        choices=[
            ("phone", _("Text message")),
            ("email", _("Email")),
            ("new_email", _("Email to my new address")),
        ],
        error_messages={
            "required": _("Say how the code came: by text message or by email."),
            "invalid_choice": _("Say how the code came: by text message or by email."),
        },
    )


class ReferenceForm(forms.Form):
    reference = forms.CharField(label=_("Message reference"), max_length=24)

    def clean_reference(self) -> str:
        """`7K2M-9QXA-B4TZ`, typed in any case, with or without dashes and spaces.

        Messages sent before references grew to 12 characters carry 8 (`7K2M-9QXA`);
        they are still checked.
        """
        value = self.cleaned_data["reference"].strip().upper().replace(" ", "")
        compact = value.replace("-", "")
        if len(compact) not in (8, 12) or not compact.isalnum():
            raise forms.ValidationError(
                _("A reference has 12 letters and digits, like 7K2M-9QXA-B4TZ.")
            )
        return "-".join(compact[i : i + 4] for i in range(0, len(compact), 4))


class AccountIdentifierField(forms.CharField):
    """The account's login email or the phone number on file (cleaned to lower case / E.164)."""

    default_error_messages = {
        "invalid": _("Enter the email address or the phone number of your account."),
    }

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("max_length", EMAIL_MAX_LENGTH)
        kwargs.setdefault("label", _("Email address or phone number of your account"))
        super().__init__(**kwargs)
        self.widget.attrs.update({"autocomplete": "username"})

    def to_python(self, value):
        value = (super().to_python(value) or "").strip()
        if not value:
            return value
        if "@" in value:
            try:
                validate_email(value)
            except forms.ValidationError:
                raise forms.ValidationError(
                    self.error_messages["invalid"], code="invalid"
                ) from None
            return value.lower()
        try:
            return phone_to_e164(value)
        except InvalidPhoneNumber:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


def _password_field(**kwargs) -> forms.CharField:
    return forms.CharField(
        label=_("Password"),
        max_length=4096,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        **kwargs,
    )


class LostFactorStartForm(forms.Form):
    """/recover/lost-2fa/, first step: the account and its password or a backup code."""

    identifier = AccountIdentifierField()
    password = _password_field(required=False)
    backup_code = forms.CharField(
        label=_("Or one of your backup codes"),
        required=False,
        max_length=24,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def clean(self):
        cleaned = super().clean() or {}
        if bool(cleaned.get("password")) == bool(cleaned.get("backup_code", "").strip()):
            raise forms.ValidationError(
                _("Enter either your password or one of your backup codes."), code="one_secret"
            )
        return cleaned


class NewEmailStartForm(forms.Form):
    """/recover/new-email/, first step: the account, its password and the new address."""

    identifier = AccountIdentifierField()
    password = _password_field(error_messages={"required": _("Enter your password.")})
    new_email = forms.EmailField(
        label=_("Your new email address"),
        max_length=EMAIL_MAX_LENGTH,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )


SELF_SERVICE_CHANNELS = [
    ("phone", _("Text message to the phone on file")),
    ("email", _("Email to the address on file")),
    ("new_email", _("Email to the new address")),
]


class ChannelForm(forms.Form):
    channel = forms.ChoiceField(
        choices=SELF_SERVICE_CHANNELS,
        error_messages={
            "required": _("Say where the code should go."),
            "invalid_choice": _("Say where the code should go."),
        },
    )


class SelfServiceCodeForm(SixDigitCodeForm, ChannelForm):
    """A code of a self-service recovery, with the channel it came by."""


class CaseLinkResendForm(forms.Form):
    """A request's reference and the contact email given with it."""

    reference = forms.CharField(
        label=_("Case reference"),
        max_length=20,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        ),
    )
    contact_email = forms.EmailField(
        label=_("Contact email you gave"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    def clean_reference(self) -> str:
        """`RC-4F7K-2M9Q`, typed in any case, with or without the dashes."""
        compact = self.cleaned_data["reference"].strip().upper().replace(" ", "").replace("-", "")
        if compact.startswith("RC"):
            compact = compact[2:]
        if len(compact) != 8 or not compact.isalnum():
            raise forms.ValidationError(
                _("A case reference looks like RC-4F7K-2M9Q."), code="invalid"
            )
        return f"RC-{compact[:4]}-{compact[4:]}"

    def clean_contact_email(self) -> str:
        return self.cleaned_data["contact_email"].strip().lower()
