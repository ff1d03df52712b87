"""Views of the accounts app: the 2FA step, 2FA setup and the security page."""

from __future__ import annotations

import base64
from datetime import timedelta

import qrcode
import qrcode.image.svg
from allauth.account import views as allauth_views
from allauth.account.adapter import get_adapter
from allauth.core import ratelimit
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.http import require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts import selectors
from accounts.contacts import mask_email
from accounts.durations import time_until_in_words
from accounts.forms import CodeForm, NextForm, TotpCodeForm
from accounts.models import User
from accounts.requests import (
    second_factor_passed,
    second_factor_recent,
    second_factor_sign_in,
    signed_in_user,
)
from accounts.services.audit import AuditContext
from accounts.services.holds import hold_end_in_words, security_changes_check
from accounts.services.two_factor import (
    TotpSetupRefused,
    backup_codes_regenerate,
    totp_device_confirm,
    totp_device_start,
    two_factor_verify,
)
from accounts.services.users import (
    PasswordChangedMeanwhile,
    sign_in_wrong_code_record,
    user_sessions_end_others,
)
from config.ratelimits import allauth_form_page_too_many, too_many_response

SETUP_DEVICE_SESSION_KEY = "two_factor_setup_device_id"


def safe_next(request: HttpRequest, default: str) -> str:
    """The `next` of the form or the URL when it stays on this site, else `default`."""
    for data in (request.POST, request.GET):
        form = NextForm(data, host=request.get_host(), https=request.is_secure())
        if form.is_valid() and form.cleaned_data["next"]:
            return form.cleaned_data["next"]
    return default


def qr_code_svg(data: str) -> str:
    """Render a QR code as inline SVG, locally: the secret never leaves the server."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")


def setup_page_context(device: TOTPDevice, form) -> dict:
    """What the authenticator setup page shows: the QR code and the key in groups of four."""
    manual_key = base64.b32encode(device.bin_key).decode()
    return {
        "form": form,
        "qr_svg": qr_code_svg(device.config_url),
        # On the phone that holds the authenticator app, a tap adds the account.
        "otpauth_url": device.config_url,
        "manual_key": " ".join(manual_key[i : i + 4] for i in range(0, len(manual_key), 4)),
    }


def backup_codes_page(request: HttpRequest, codes: list[str]) -> HttpResponse:
    """The new backup codes, shown once, with a text file of them to download."""
    text = "\n".join(["Recovery Desk", _("Backup codes: each signs you in once."), "", *codes, ""])
    return render(
        request,
        "accounts/backup_codes.html",
        {"codes": codes, "codes_text": text, "continue_url": reverse("account_security")},
    )


class LoginView(allauth_views.LoginView):
    """allauth's sign-in; over its failed-attempts limit, our 429 with the email kept.

    allauth answers that limit with an error on the page (200, no `Retry-After`); it is
    counted for every typed email, known or not, so the 429 tells nothing of the account.
    """

    def form_invalid(self, form) -> HttpResponse:
        if form.has_error(NON_FIELD_ERRORS, code="too_many_login_attempts"):
            key = get_adapter(self.request).login_attempts_key(
                self.request, form.cleaned_data.get("login", "")
            )
            return allauth_form_page_too_many(self, action="login_failed", key=key)
        return super().form_invalid(form)


class PasswordResetFromKeyView(allauth_views.PasswordResetFromKeyView):
    """allauth's reset link page; a link that another request used while this one ran reads
    as the used link it now is, as it would a moment later."""

    def form_valid(self, form) -> HttpResponse:
        try:
            return super().form_valid(form)
        except PasswordChangedMeanwhile:
            return self.render_to_response(self.get_context_data(token_fail=True))


@method_decorator(login_required, name="dispatch")
class TwoFactorVerifyView(View):
    """The second step of sign-in: a code from the authenticator app or a backup code."""

    template_name = "accounts/two_factor_verify.html"

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponseBase:
        if isinstance(request.user, User):
            if second_factor_passed(request.user):
                return HttpResponseRedirect(safe_next(request, reverse("account_security")))
            if not selectors.user_has_authenticator(user=request.user):
                return redirect("two_factor_setup")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, CodeForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = CodeForm(request.POST)
        if not form.is_valid():
            return self._render(request, form)
        if not ratelimit.consume(request, action="two_factor_verify", user=request.user):
            return too_many_response(
                request,
                action="two_factor_verify",
                user=request.user,
                template=self.template_name,
                context={"form": form, "next": safe_next(request, "")},
            )
        result = two_factor_verify(
            user=signed_in_user(request),
            code=form.cleaned_data["code"],
            context=AuditContext.from_request(request),
        )
        if result.device is None:
            sign_in_wrong_code_record(
                user=signed_in_user(request), context=AuditContext.from_request(request)
            )
            if result.too_many and result.locked_until:
                form.add_error(
                    None,
                    _("Too many wrong codes. Try again in %(wait)s.")
                    % {"wait": time_until_in_words(result.locked_until)},
                )
            elif result.locked_until:
                form.add_error(
                    None,
                    _("Wait %(wait)s before you try another code.")
                    % {"wait": time_until_in_words(result.locked_until)},
                )
            else:
                form.add_error("code", _("This code is not valid, or it was already used."))
            return self._render(request, form, status=400)
        second_factor_sign_in(request, result.device)
        # allauth's "signed in" message is off: until here the sign-in was not complete.
        messages.success(request, _("You are signed in."))
        return HttpResponseRedirect(safe_next(request, reverse("account_security")))

    def _render(self, request: HttpRequest, form, status: int = 200) -> HttpResponse:
        return render(
            request,
            self.template_name,
            {
                "form": form,
                "next": safe_next(request, ""),
                "has_passkey": selectors.user_has_passkey(user=signed_in_user(request)),
            },
            status=status,
        )


class TotpSetupView(View):
    """Set up an authenticator: QR code and key, a confirming code, then backup codes once.

    First setup after sign-up and re-enrolment after a revocation are this one page, form
    and service. A flow says who may enter (`gate`), whether it is a re-enrolment (the
    service then records that and puts the account on hold) and what ends with it (`done`).
    """

    template_name = "accounts/two_factor_setup.html"
    reenrolment = False

    def gate(self, request: HttpRequest) -> HttpResponse | None:
        """A redirect for a user who may not set up an authenticator here, else None."""
        return None

    def done(self, request: HttpRequest) -> None:
        """What the flow clears once the authenticator is confirmed."""

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponseBase:
        refused = self.gate(request)
        if refused is not None:
            return refused
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        device = totp_device_start(user=signed_in_user(request))
        request.session[SETUP_DEVICE_SESSION_KEY] = device.pk
        return self._render(request, device, TotpCodeForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        device = selectors.totp_device_unconfirmed(
            user=signed_in_user(request), device_id=request.session.get(SETUP_DEVICE_SESSION_KEY)
        )
        if device is None:
            return redirect(request.path)
        form = TotpCodeForm(request.POST)
        if not form.is_valid():
            return self._render(request, device, form, status=400)
        try:
            codes = totp_device_confirm(
                user=signed_in_user(request),
                device_id=device.pk,
                code=form.cleaned_data["code"],
                context=AuditContext.from_request(request),
                reenrolment=self.reenrolment,
            )
        except TotpSetupRefused:
            # The account changed under this page (a revocation, a finished re-enrolment):
            # the gate sends the user where they belong now.
            return redirect(request.path)
        if codes is None:
            form.add_error("code", form.mismatch_message)
            return self._render(request, device, form, status=400)
        del request.session[SETUP_DEVICE_SESSION_KEY]
        self.done(request)
        device.refresh_from_db()
        second_factor_sign_in(request, device)
        return backup_codes_page(request, codes)

    def _render(self, request, device: TOTPDevice, form, status: int = 200) -> HttpResponse:
        return render(request, self.template_name, setup_page_context(device, form), status=status)


@method_decorator(login_required, name="dispatch")
class TwoFactorSetupView(TotpSetupView):
    """/accounts/2fa/setup/: the first authenticator of a signed-in user who has none."""

    def gate(self, request: HttpRequest) -> HttpResponse | None:
        user = signed_in_user(request)
        if user.reenrolment_required:
            # A password alone never sets up 2FA again after a revocation.
            return redirect("recover_2fa")
        if not second_factor_passed(user) and selectors.user_has_authenticator(user=user):
            return redirect("two_factor_verify")
        if selectors.user_has_totp(user=user):
            # Replacing a working app is the security page's business, not a first setup.
            return redirect("account_security")
        minutes = settings.PASSKEY_REGISTRATION_MINUTES
        if selectors.user_has_passkey(user=user) and not second_factor_recent(
            request, within=timedelta(minutes=minutes)
        ):
            # An app beside a passkey is a second factor more: like a passkey, only soon
            # after this sign-in's second step, so a session cookie taken later adds none.
            messages.error(
                request,
                _(
                    "An authenticator app can be added only within %(minutes)s minutes of "
                    "signing in. Sign out, sign in again, then add it."
                )
                % {"minutes": minutes},
            )
            return redirect("account_security")
        return None


@login_required
def security(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    return render(
        request,
        "accounts/security.html",
        {
            "two_factor": selectors.two_factor_status(user=user),
            "events": selectors.security_event_list_recent(user=user),
            "sessions": selectors.user_session_list(user=user),
            "sign_ins": selectors.sign_in_list_recent(user=user),
            "current_session_key": request.session.session_key,
            "regenerate_form": TotpCodeForm(),
            "signed_in_with_passkey": isinstance(
                getattr(request.user, "otp_device", None), WebAuthnCredential
            ),
            "hold_end": hold_end_in_words(user.security_hold_until)
            if user.on_security_hold and user.security_hold_until
            else "",
            "hold_until": user.security_hold_until if user.on_security_hold else None,
        },
    )


@login_required
@require_POST
def backup_codes_regenerate_view(request: HttpRequest) -> HttpResponse:
    form = TotpCodeForm(request.POST)
    codes = None
    if form.is_valid():
        if not ratelimit.consume(request, action="two_factor_verify", user=request.user):
            return too_many_response(request, action="two_factor_verify", user=request.user)
        codes = backup_codes_regenerate(
            user=signed_in_user(request),
            code=form.cleaned_data["code"],
            context=AuditContext.from_request(request),
        )
    if codes is None:
        messages.error(request, _("Backup codes were not changed: the code was not valid."))
        return redirect("account_security")
    return backup_codes_page(request, codes)


@login_required
@require_POST
def sessions_end_others(request: HttpRequest) -> HttpResponse:
    count = user_sessions_end_others(
        user=signed_in_user(request),
        current_session_key=request.session.session_key,
        context=AuditContext.from_request(request),
    )
    messages.success(request, _("Signed out of %(count)d other session(s).") % {"count": count})
    return redirect("account_security")


@login_required
def email_management_closed(request: HttpRequest) -> HttpResponse:
    """/accounts/email/, in place of allauth's page: the login email is not managed here.

    allauth's page would let a signed-in session add an address, confirm it, make it
    primary and remove the old one: a new login email with no second factor, no notice to
    the old address or the phone, no wait and no hold. The supported ways are support's
    change and the self-service new-email flow, both through the recovery policy. A form
    posted here changes nothing and is answered 403.
    """
    return render(
        request,
        "accounts/email_closed.html",
        {"masked_email": mask_email(signed_in_user(request).email)},
        status=403 if request.method == "POST" else 200,
    )


@login_required
def password_change(request: HttpRequest) -> HttpResponseBase:
    """allauth's password change (it asks for the current password), refused during a hold.

    The adapter refuses the new password too; checking here first shows the hold page
    before the customer types anything.
    """
    security_changes_check(user=signed_in_user(request))
    return allauth_views.password_change(request)


@login_required
def password_set(request: HttpRequest) -> HttpResponse:
    """/accounts/password/set/, in place of allauth's page: no password from a session alone.

    An account without a usable password gets one through a reset link to its login email;
    one with a password changes it with the current one (`password_change`).
    """
    user = signed_in_user(request)
    security_changes_check(user=user)
    if user.has_usable_password():
        return redirect("account_change_password")
    return render(
        request,
        "accounts/password_set_closed.html",
        status=403 if request.method == "POST" else 200,
    )


login = LoginView.as_view()
password_reset_from_key = PasswordResetFromKeyView.as_view()
two_factor_verify_view = TwoFactorVerifyView.as_view()
two_factor_setup_view = TwoFactorSetupView.as_view()
