"""Passkeys on the web: the relying party, the WebAuthn endpoints and the passkeys page.

django-otp-webauthn does the WebAuthn ceremonies and serves its JavaScript from our own
static files (the strict CSP allows nothing else). The relying party ID is SITE_URL's host
and the only origin accepted is SITE_URL's own, read per request: an assertion made for a
look-alike site carries that site's origin and is refused. Passkeys are a second factor
here, never a sign-in without the password.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from logging import getLogger
from urllib.parse import urlsplit

from allauth.core import ratelimit
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from django_otp_webauthn import exceptions as webauthn_errors
from django_otp_webauthn import views as webauthn_views
from django_otp_webauthn.helpers import WebAuthnHelper
from django_otp_webauthn.models import WebAuthnCredential
from django_otp_webauthn.utils import rewrite_exceptions

from accounts import selectors
from accounts.forms import PasskeyRemoveForm, PasskeyRenameForm
from accounts.models import User
from accounts.requests import (
    second_factor_passed,
    second_factor_recent,
    second_factor_sign_in,
    signed_in_user,
)
from accounts.services.audit import AuditContext
from accounts.services.holds import SecurityHoldActive, hold_end_in_words
from accounts.services.passkeys import (
    PasskeyChangeRefused,
    app_replace_with_passkey_decision,
    passkey_register,
    passkey_remove,
    passkey_rename,
)
from accounts.services.users import sign_in_wrong_code_record
from accounts.views import TotpSetupView, safe_next

logger = getLogger(__name__)


def site_origin() -> str:
    """SITE_URL's origin (scheme, host and port), the only one a passkey is accepted from."""
    parts = urlsplit(settings.SITE_URL)
    return f"{parts.scheme}://{parts.netloc}"


def relying_party_id(request: HttpRequest | None = None) -> str:
    """SITE_URL's host: passkeys are bound to it (changing it orphans every passkey)."""
    return urlsplit(settings.SITE_URL).hostname or ""


class PasskeyHelper(WebAuthnHelper):
    """The library's helper with the accepted origin taken from SITE_URL at call time."""

    def get_allowed_origins(self) -> list[str]:
        return [site_origin()]


class PasskeyRefused(webauthn_errors.OTPWebAuthnApiError):
    """A passkey change this account may not make now (hold, re-enrolment, second factor)."""

    status_code = 403
    default_code = "passkey_refused"


class TooManyAttempts(webauthn_errors.OTPWebAuthnApiError):
    status_code = 429
    default_detail = gettext_lazy("Too many attempts. Wait a moment and try again.")
    default_code = "too_many_attempts"


class RegistrationAllowed:
    """A passkey is added only soon after the second factor of this sign-in (a session
    cookie stolen later adds no factor of its own), never in a hold."""

    request: HttpRequest

    def check_can_register(self) -> None:
        user = signed_in_user(self.request)
        if not second_factor_passed(user):
            raise webauthn_errors.NotVerified()
        minutes = settings.PASSKEY_REGISTRATION_MINUTES
        if not second_factor_recent(self.request, within=timedelta(minutes=minutes)):
            raise PasskeyRefused(
                detail=_(
                    "A passkey can be added only within %(minutes)s minutes of signing in. "
                    "Sign out, sign in again, then add it."
                )
                % {"minutes": minutes}
            )
        if user.on_security_hold and user.security_hold_until:
            raise PasskeyRefused(
                detail=_("Security changes are on hold until %(until)s.")
                % {"until": hold_end_in_words(user.security_hold_until)}
            )


class PasskeyRegistrationBegin(RegistrationAllowed, webauthn_views.BeginCredentialRegistrationView):
    """Start registering a passkey: the options for the browser, the challenge kept."""


class PasskeyRegistrationComplete(
    RegistrationAllowed, webauthn_views.CompleteCredentialRegistrationView
):
    """Verify the new passkey and save it with its security event, through the service."""

    def post(self, *args, **kwargs) -> JsonResponse:
        user = signed_in_user(self.request)
        state = self.get_state()
        helper = self.get_helper()
        data = self.request.data  # type: ignore[attr-defined] # parsed JSON, set by the library

        def verify_and_save(account: User) -> WebAuthnCredential:
            with rewrite_exceptions(logger=logger):
                return helper.register_complete(user=account, state=state, data=data)

        try:
            passkey = passkey_register(
                user=user, create=verify_and_save, context=AuditContext.from_request(self.request)
            )
        except (SecurityHoldActive, PasskeyChangeRefused) as refused:
            raise PasskeyRefused(detail=_message(refused)) from None
        return JsonResponse({"id": passkey.pk})


class SecondFactorOnly:
    """Passkey sign-in only as the second step, after the password: never passwordless."""

    request: HttpRequest

    def check_can_authenticate(self) -> None:
        if not self.request.user.is_authenticated:
            raise webauthn_errors.PasswordlessLoginDisabled()
        super().check_can_authenticate()  # type: ignore[misc]


class PasskeyAuthenticationBegin(
    SecondFactorOnly, webauthn_views.BeginCredentialAuthenticationView
):
    """Start the second step of sign-in with a passkey."""


class PasskeyAuthenticationComplete(
    SecondFactorOnly, webauthn_views.CompleteCredentialAuthenticationView
):
    """Check the assertion (challenge, origin, relying party, this user's passkey), then
    give the session its second factor. Rate-limited and recorded like the code form: a
    failed assertion is a wrong second factor in the account's sign-in history."""

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        if not ratelimit.consume(request, action="two_factor_verify", user=request.user):
            raise TooManyAttempts()

    def post(self, *args, **kwargs) -> JsonResponse:
        user = signed_in_user(self.request)
        state = self.get_state()
        try:
            with rewrite_exceptions(logger=logger):
                device = self.get_helper().authenticate_complete(
                    user=user,
                    state=state,
                    data=self.request.data,  # type: ignore[attr-defined] # parsed JSON
                )
            self.check_device_usable(device)
        except webauthn_errors.OTPWebAuthnApiError:
            sign_in_wrong_code_record(user=user, context=AuditContext.from_request(self.request))
            raise
        second_factor_sign_in(self.request, device)
        return JsonResponse(self.get_success_data(device))

    def get_success_url(self) -> str:
        return safe_next(self.request, super().get_success_url())


def _message(refused: Exception) -> str:
    if isinstance(refused, PasskeyChangeRefused):
        return " ".join(refused.messages)
    return str(refused.args[0]) if refused.args else str(refused)


@login_required
def passkeys(request: HttpRequest) -> HttpResponse:
    """/account/security/passkeys/: the user's passkeys, to add, name and remove."""
    user = signed_in_user(request)
    return render(
        request,
        "accounts/passkeys.html",
        {
            "passkeys": selectors.passkey_list(user=user),
            "registration_open": second_factor_recent(
                request, within=timedelta(minutes=settings.PASSKEY_REGISTRATION_MINUTES)
            ),
            "minutes": settings.PASSKEY_REGISTRATION_MINUTES,
            "hold_end": hold_end_in_words(user.security_hold_until)
            if user.on_security_hold and user.security_hold_until
            else "",
        },
    )


PASSKEY_ACTIONS: dict[str, tuple[type[forms.Form], Callable[..., None], Promise]] = {
    "rename": (PasskeyRenameForm, passkey_rename, gettext_lazy("The passkey was renamed.")),
    "remove": (PasskeyRemoveForm, passkey_remove, gettext_lazy("The passkey was removed.")),
}


@login_required
@require_POST
def passkey_change(request: HttpRequest, action: str) -> HttpResponse:
    """Rename or remove one passkey; a hold answers with the hold page (middleware)."""
    form_class, service, done = PASSKEY_ACTIONS[action]
    form = form_class(request.POST)
    if not form.is_valid():
        messages.error(request, _("The passkey was not changed: check what you entered."))
        return redirect("account_passkeys")
    try:
        service(
            user=signed_in_user(request),
            context=AuditContext.from_request(request),
            **form.cleaned_data,
        )
    except PasskeyChangeRefused as refused:
        messages.error(request, _message(refused))
        return redirect("account_passkeys")
    messages.success(request, str(done))
    return redirect("account_passkeys")


def session_passkey_id(request: HttpRequest) -> int | None:
    """The passkey this session's second factor was given with, if it was one."""
    device = getattr(request.user, "otp_device", None)
    return device.pk if isinstance(device, WebAuthnCredential) else None


@method_decorator(login_required, name="dispatch")
class AppReplaceWithPasskeyView(TotpSetupView):
    """/account/security/passkeys/replace-app/: a new authenticator app for a lost one.

    Open to a sign-in made with the password and a passkey still on the account (the
    policy's `self_service_app_with_passkey`): no wait, no agent. The setup replaces the
    old app in the service, which refuses it during a security hold.
    """

    def gate(self, request: HttpRequest) -> HttpResponse | None:
        decision = app_replace_with_passkey_decision(
            user=signed_in_user(request), passkey_id=session_passkey_id(request)
        )
        if not decision:
            messages.error(
                request,
                _(
                    "To replace a lost authenticator app here, sign in with your password "
                    "and one of your passkeys."
                ),
            )
            return redirect("account_security")
        return None


app_replace_with_passkey = AppReplaceWithPasskeyView.as_view()
