"""The passkey proof of /recover/lost-2fa/: a WebAuthn assertion for the attempt's account.

django-otp-webauthn does the ceremony (challenge, origin and relying party checked by the
site's `PasskeyHelper`); these endpoints bind it to the self-service attempt of this
browser session instead of a signed-in user. Only the account's own passkeys are offered
and accepted, the challenge is kept per attempt and used once, and every assertion costs
one try of the self-service code limit.
"""

from __future__ import annotations

from logging import getLogger

from allauth.core import ratelimit
from django.contrib.auth import login as auth_login
from django.contrib.sessions.backends.base import UpdateError
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_otp_webauthn import exceptions as webauthn_errors
from django_otp_webauthn import views as webauthn_views
from django_otp_webauthn.utils import rewrite_exceptions

from accounts.passkeys import PasskeyRefused, TooManyAttempts
from accounts.requests import second_factor_sign_in
from accounts.services.audit import AuditContext
from recovery.models import SelfServiceRecovery
from recovery.self_service import (
    PasskeyOutcome,
    SelfServiceRefused,
    self_service_passkey_check,
    self_service_passkey_failed,
    self_service_passkey_offered,
    self_service_passkey_prove,
)
from recovery.session_attempts import attempt_of_session

logger = getLogger(__name__)

REFUSALS = {
    SelfServiceRefused.ALREADY_WAITING: gettext_lazy(
        "A recovery of this account is already in its waiting period. Every contact on file "
        "was told about it and can stop it."
    ),
}

# The ceremony's challenge, kept apart from the sign-in ceremony's and tied to one attempt.
PASSKEY_STATE_SESSION_KEY = "recovery_lost_factor_passkey_state"


def _refused(refused: SelfServiceRefused) -> PasskeyRefused:
    return PasskeyRefused(detail=REFUSALS.get(refused.reason, _("This account is frozen")))


class AttemptPasskey:
    """The account of the lost-2fa attempt this session started, while it can take a passkey.

    What would refuse the proof (a frozen account, another recovery waiting) is said before
    the passkey is asked, so a refused ceremony leaves no trace, not even the passkey's use.
    """

    request: HttpRequest

    def attempt(self) -> SelfServiceRecovery:
        attempt = attempt_of_session(self.request, SelfServiceRecovery.Kind.LOST_FACTOR)
        if attempt is None or not self_service_passkey_offered(attempt=attempt):
            raise webauthn_errors.InvalidState()
        try:
            self_service_passkey_check(attempt=attempt)
        except SelfServiceRefused as refused:
            raise _refused(refused) from None
        return attempt

    def get_user(self):
        return self.attempt().user

    def check_can_authenticate(self) -> None:
        self.attempt()


class LostFactorPasskeyBegin(AttemptPasskey, webauthn_views.BeginCredentialAuthenticationView):
    """The options for the browser: a fresh challenge and only this account's passkeys."""

    def post(self, *args, **kwargs) -> JsonResponse:
        attempt = self.attempt()
        options, state = self.get_helper().authenticate_begin(
            user=attempt.user, require_user_verification=False
        )
        self.request.session[PASSKEY_STATE_SESSION_KEY] = {"attempt": attempt.pk, **state}
        return JsonResponse(options)


class LostFactorPasskeyComplete(
    AttemptPasskey, webauthn_views.CompleteCredentialAuthenticationView
):
    """Check the assertion against the attempt's account and record the proof.

    Password and passkey make a sign-in, recorded as any sign-in with a second factor: the
    session is signed in with that passkey and goes to the app replacement. After the
    password, an assertion that fails its checks is a failed sign-in. Otherwise the page
    shows what comes next (the wait).
    """

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        if not ratelimit.consume(request, action="recover_check_code"):
            raise TooManyAttempts()

    def post(self, *args, **kwargs) -> JsonResponse:
        request = self.request
        attempt = self.attempt()
        context = AuditContext.from_request(request)
        # Popped and saved first: a challenge is never answered twice.
        state = request.session.pop(PASSKEY_STATE_SESSION_KEY, None)
        try:
            request.session.save()
        except UpdateError:
            # A completion at the same moment signed this session in and replaced it: the
            # challenge went with the old session.
            raise webauthn_errors.InvalidState() from None
        if not state or state.pop("attempt", None) != attempt.pk:
            raise webauthn_errors.InvalidState()
        try:
            with rewrite_exceptions(logger=logger):
                device = self.get_helper().authenticate_complete(
                    user=attempt.user,
                    state=state,
                    data=request.data,  # type: ignore[attr-defined]
                )
            self.check_device_usable(device)
        except webauthn_errors.OTPWebAuthnApiError:
            self_service_passkey_failed(attempt=attempt, context=context)
            raise
        try:
            outcome = self_service_passkey_prove(
                attempt=attempt, passkey_id=device.pk, context=context
            )
        except SelfServiceRefused as refused:
            raise _refused(refused) from None
        if outcome == PasskeyOutcome.REFUSED:
            raise webauthn_errors.InvalidState()
        if outcome == PasskeyOutcome.SIGNED_IN:
            auth_login(request, device.user, backend="django.contrib.auth.backends.ModelBackend")
            second_factor_sign_in(request, device)
            return JsonResponse(
                {"id": device.pk, "redirect_url": reverse("account_app_replace_with_passkey")}
            )
        return JsonResponse({"id": device.pk, "redirect_url": reverse("recover_lost_2fa")})


lost_2fa_passkey_begin = LostFactorPasskeyBegin.as_view()
lost_2fa_passkey_complete = LostFactorPasskeyComplete.as_view()
