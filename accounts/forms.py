"""Forms of the accounts app: signup with phone, 2FA codes."""

from __future__ import annotations

from typing import Any

from allauth.account.forms import LoginForm as AllauthLoginForm
from allauth.account.forms import ResetPasswordForm as AllauthResetPasswordForm
from allauth.account.forms import SignupForm as AllauthSignupForm
from allauth.core import ratelimit
from django import forms
from django.contrib.auth.hashers import make_password
from django.core.validators import MaxLengthValidator
from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django_otp.admin import OTPAdminAuthenticationForm
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.contacts import (
    InvalidPhoneNumber,
    email_domain_suggestion,
    phone_to_e164,
    texting_limits_consume,
)
from accounts.models import BackupCodeDevice, User, backup_code_compact
from accounts.requests import signed_in_user
from accounts.selectors import staff_by_password
from accounts.services.audit import AuditContext
from accounts.services.two_factor import Recheck, staff_otp_recheck
from accounts.services.users import phone_taken_notify
from notifications.services import notification_reference_new


class PhoneNumberField(forms.CharField):
    """A phone number, cleaned to E.164; numbers without "+" use PHONE_DEFAULT_REGION."""

    default_error_messages = {
        "invalid": _("Enter a valid phone number, for example +49 151 23456789."),
    }

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("max_length", 32)
        super().__init__(**kwargs)
        # A number keypad on phones; set as the input type, not as an attribute that the
        # widget's own type="text" would come before.
        self.widget.input_type = "tel"
        self.widget.attrs.update({"autocomplete": "tel", "placeholder": "+49 151 23456789"})

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return value
        try:
            return phone_to_e164(value)
        except InvalidPhoneNumber:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


# The email column's length: a longer address can belong to no account, and must never reach
# a query or an outbox row that would fail on it.
EMAIL_MAX_LENGTH = 254


def email_field_bound(field: forms.Field) -> None:
    """Limit one of allauth's email fields to what the database holds."""
    field.max_length = EMAIL_MAX_LENGTH  # type: ignore[attr-defined]
    field.validators.append(MaxLengthValidator(EMAIL_MAX_LENGTH))
    field.widget.attrs["maxlength"] = str(EMAIL_MAX_LENGTH)


class ResetPasswordForm(AllauthResetPasswordForm):
    """allauth's password reset, bounded to the email column."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        email_field_bound(self.fields["email"])


class LoginForm(AllauthLoginForm):
    """allauth's sign-in; after a failure it suggests a fix for a mistyped email domain.

    The suggestion is a link back to this page with `?login=<address>`, which fills in the
    email field.
    """

    email_suggestion: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["login"].widget.attrs.update(
            {"autocomplete": "email", "inputmode": "email", "autocapitalize": "none"}
        )
        if "remember" in self.fields:
            self.fields["remember"].label = _("Keep me signed in on this device")
        request = getattr(self, "request", None)
        suggested = request.GET.get("login", "") if request is not None else ""
        if not self.is_bound and suggested:
            self.initial["login"] = suggested[:EMAIL_MAX_LENGTH]

    def clean(self):
        try:
            return super().clean()
        except forms.ValidationError:
            self.email_suggestion = email_domain_suggestion(self.data.get("login"))
            raise


class SignupForm(AllauthSignupForm):
    """allauth's signup plus a mandatory phone number, unique across accounts.

    A taken number is not reported on the page: the view answers as for any signup while
    the number's holder is told by SMS.
    """

    phone = PhoneNumberField(
        label=_("Mobile phone"),
        help_text=_("We text you here if you ever need to recover your account."),
    )

    field_order = ["email", "phone", "password1", "password2"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # allauth accepts 320 characters; the column holds 254 (a longer one was cut).
        email_field_bound(self.fields["email"])

    def clean(self):
        cleaned_data = super().clean()
        phone = cleaned_data.get("phone")
        self.phone_taken = bool(phone) and User.objects.filter(phone=phone).exists()
        return cleaned_data

    def try_save(self, request):
        phone = self.cleaned_data.get("phone")
        # The holder of a taken number is texted no more often than /recover/email/ would
        # text them, or a stranger signing up again and again floods their phone. Every
        # number is counted alike, and the answer never depends on the count.
        may_text = bool(phone) and texting_limits_consume(request, phone)
        if self.phone_taken:
            if may_text:
                phone_taken_notify(
                    phone=phone,
                    attempt_key=notification_reference_new(),
                    language=get_language() or "en",
                )
            # allauth then answers exactly as for a new account and creates nothing.
            self.account_already_exists = True
        if self.account_already_exists:
            # A new account costs a password hash, which dominates the request: without one
            # a taken email or phone would answer in a fraction of the time.
            make_password(self.cleaned_data.get("password1"))
        return super().try_save(request)


class CodeForm(forms.Form):
    """One code from the authenticator app, or a backup code."""

    code = forms.CharField(
        label=_("Code"),
        max_length=24,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "text",
                "autocapitalize": "characters",
                "spellcheck": "false",
                "autofocus": True,
                "class": "code-input",
            }
        ),
    )

    def clean_code(self) -> str:
        return self.cleaned_data["code"].strip()


class TotpCodeForm(CodeForm):
    """A 6-digit code from the authenticator app."""

    mismatch_message = _(
        "That code did not match. Check the time on your phone and enter the newest code."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["code"].widget.attrs.update(
            {"inputmode": "numeric", "pattern": "[0-9 ]*", "maxlength": "7"}
        )

    def clean_code(self) -> str:
        code = self.cleaned_data["code"].replace(" ", "")
        if not (code.isdigit() and len(code) == 6):
            raise forms.ValidationError(
                _("Enter the 6-digit code shown by your authenticator app.")
            )
        return code


class NextForm(forms.Form):
    """Where to go after a step: a URL on this site; any other target cleans to ""."""

    next = forms.CharField(required=False, max_length=2000)

    def __init__(self, data: Any, *, host: str, https: bool) -> None:
        super().__init__(data)
        self.host, self.https = host, https

    def clean_next(self) -> str:
        target = self.cleaned_data["next"]
        if url_has_allowed_host_and_scheme(
            target, allowed_hosts={self.host}, require_https=self.https
        ):
            return target
        return ""


class StaffOTPLoginForm(OTPAdminAuthenticationForm):
    """The admin sign-in: password and one code; the kind of code picks the device.

    django-otp asks staff to pick a device from a list; a 6-digit code can only be from the
    authenticator and a 16-character one only a backup code, so the choice is made for them.
    Failures are rate-limited per IP and per account like the customers' sign-in, and a
    wrong password, a missing code and a wrong code get one answer: telling them apart would
    confirm a stolen staff password. For the same reason the password check costs one hash
    whether the password is right or wrong, so the inherited `clean`, which asks every
    authentication backend, is replaced by its two steps: the password, then the code.
    """

    failed_message = _(
        "The email address, password or code is not correct. Note that all of them are needed."
    )
    too_many_message = _("Too many failed sign-ins. Wait a few minutes and try again.")

    def clean(self) -> dict[str, Any]:
        request = self.request
        key = str(self.data.get("username") or "").strip().lower()[:EMAIL_MAX_LENGTH]
        if request is not None and not ratelimit.consume(
            request, action="staff_login_failed", key=key, dry_run=True
        ):
            raise forms.ValidationError(self.too_many_message, code="too_many")
        try:
            self.user_cache = self._user_by_password()
            self.clean_otp(self.user_cache)
            return self.cleaned_data
        except forms.ValidationError:
            if request is not None:
                ratelimit.consume(request, action="staff_login_failed", key=key)
            # A known user would make the page list their devices: forget who it was.
            self.user_cache = None
            raise forms.ValidationError(self.failed_message, code="invalid_login") from None

    def _user_by_password(self) -> User | None:
        """The staff member these credentials name, as AuthenticationForm's `clean` finds
        them, but with one password hash whatever the answer (`staff_by_password`)."""
        email = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if email is None or not password:
            return None  # the field itself is in error
        user = staff_by_password(email=email, password=password)
        if user is None:
            raise self.get_invalid_login_error()
        self.confirm_login_allowed(user)
        return user

    def _update_form(self, user: User) -> None:
        # django-otp would fill in the device list and send the password back into the page.
        return None

    def _chosen_device(self, user):
        device = super()._chosen_device(user)
        if device is not None:
            return device
        token = backup_code_compact(self.cleaned_data.get("otp_token") or "")
        model = BackupCodeDevice if len(token) == 16 else TOTPDevice
        return model.objects.filter(user=user, confirmed=True).first()


class StaffRecheckForm(forms.Form):
    """The confirming form of a sensitive staff action: its own fields and a fresh code
    from the staff member's authenticator (`accounts.services.two_factor.staff_otp_recheck`).

    Subclasses name the action (`recheck_action`, written to the audit on a failure) and
    add their fields; a view builds them with `for_request`, which binds the signed-in
    staff member and the request's audit context. The code is checked last, and only when
    every other field is valid, so a form refused for other input never uses a code up.
    A wrong, missing or replayed code is a form error: nothing of the action is written,
    and the failure is recorded on the staff member's own account.
    """

    recheck_action = ""
    recheck_messages = {
        Recheck.MISSING: _("Enter the current code from your authenticator app to confirm."),
        Recheck.WRONG: _(
            "That code is not right, or it was already used. Enter the newest code from your "
            "authenticator app."
        ),
        Recheck.THROTTLED: _("Too many wrong codes. Wait a moment and try again."),
        Recheck.NO_AUTHENTICATOR: _(
            "This step needs an authenticator app on your staff account. Ask an operator to "
            "set one up."
        ),
    }

    otp_code = forms.CharField(
        label=_("Code from your authenticator app"),
        required=False,
        max_length=12,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "size": 8}
        ),
    )

    def __init__(
        self,
        *args: Any,
        recheck_user: User | None = None,
        audit_context: AuditContext | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.recheck_user = recheck_user
        self.audit_context = audit_context or AuditContext()

    @classmethod
    def for_request(cls, request: HttpRequest, *args: Any, **kwargs: Any) -> StaffRecheckForm:
        """The form for the signed-in staff member of `request`."""
        return cls(
            *args,
            recheck_user=signed_in_user(request),
            audit_context=AuditContext.from_request(request),
            **kwargs,
        )

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean() or {}
        if self.errors:
            return cleaned_data
        if self.recheck_user is None:
            raise forms.ValidationError(self.recheck_messages[Recheck.MISSING], code="missing")
        result = staff_otp_recheck(
            user=self.recheck_user,
            code=cleaned_data.get("otp_code") or "",
            action=self.recheck_action,
            context=self.audit_context,
        )
        if result != Recheck.OK:
            self.add_error("otp_code", forms.ValidationError(self.recheck_messages[result]))
        # The code is spent: it is no input of the action.
        cleaned_data.pop("otp_code", None)
        return cleaned_data


class PasskeyRenameForm(forms.Form):
    """A new name for one of the signed-in user's passkeys."""

    passkey_id = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    name = forms.CharField(label=_("Name"), max_length=64, strip=True)


class PasskeyRemoveForm(forms.Form):
    """Which of the signed-in user's passkeys to remove."""

    passkey_id = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
