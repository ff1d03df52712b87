"""The session thief who adds a passkey of their own.

The thief holds a signed-in, 2FA-verified session cookie of the customer (from malware or
a shared computer), taken some time after the customer signed in. A passkey is a lasting
second factor and the strongest recovery proof (`authenticator`): with the password
phished later it replaces the authenticator app at once. A session alone must not add one;
the customer adds a passkey soon after signing in, as the passkeys page asks.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import BackupCode
from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from tests.factories import UserFactory, totp_code
from tests.passkey_authenticator import SoftwarePasskey, signed_in_with_passkey
from tests.support.conftest import customer_client

pytestmark = pytest.mark.django_db

PAGE = "/account/security/passkeys/"
BEGIN = "/accounts/2fa/passkey/registration/begin/"
COMPLETE = "/accounts/2fa/passkey/registration/complete/"
SETUP = "/accounts/2fa/setup/"


def test_a_session_taken_later_cannot_start_adding_a_passkey(settings):
    """Just after the sign-in the page offers the button and the ceremony starts; the
    same cookie an hour later (the thief's copy) gets the page's reason in words instead
    of the button, both steps of the ceremony are refused, and no passkey exists."""
    user = UserFactory.create(email="satoshi.nakamoto@gmx.net", phone="+4915123456789")
    two_factor_provision(user=user, context=AuditContext(), notify=False)
    owner = customer_client(user)
    assert 'id="passkey-register-button"' in owner.get(PAGE).content.decode()
    assert owner.post(BEGIN).status_code == 200

    later = timezone.now() + timedelta(minutes=settings.PASSKEY_REGISTRATION_MINUTES + 45)
    with time_machine.travel(later, tick=False):
        thief = owner
        page = thief.get(PAGE).content.decode()
        assert "Sign out, sign in again, then add it." in page
        assert 'id="passkey-register-button"' not in page
        begun = thief.post(BEGIN)
        assert begun.status_code == 403
        assert "within 15 minutes of signing in" in begun.json()["detail"]
        assert thief.post(COMPLETE, "{}", content_type="application/json").status_code == 403
    assert not WebAuthnCredential.objects.filter(user=user).exists()


def test_a_session_taken_later_cannot_add_an_authenticator_app_beside_a_passkey(settings):
    """An account left with a passkey only (a revocation that kept passkeys) may set up an
    app from the session that just signed in with the passkey; the thief's copy of that
    cookie an hour later sets up no app of its own and replaces no backup codes."""
    user = UserFactory(email="nick.szabo@gmx.net", phone="+4915123456782")
    passkey = SoftwarePasskey(user)
    owner = signed_in_with_passkey(user, passkey)
    assert owner.get(SETUP).status_code == 200

    later = timezone.now() + timedelta(minutes=settings.PASSKEY_REGISTRATION_MINUTES + 45)
    with time_machine.travel(later, tick=False):
        thief = owner
        opened = thief.get(SETUP)
        device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
        assert device is not None
        confirmed = thief.post(SETUP, {"code": totp_code(device)})
        assert opened.status_code == 302 and confirmed.status_code == 302
        assert thief.get(opened["Location"]).status_code == 200

    assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    assert not BackupCode.objects.filter(device__user=user).exists()
