"""A customer signed in with a passkey sets up an authenticator app during a security hold.

After a revocation that kept the passkeys (`revoke_2fa --factors totp,backup`) an account
has a passkey and nothing else, and its sign-in goes through the passkey. During a hold
(here the 48 hours after a login-email change) nobody may change the account's second
factors: whoever holds that session (the owner, or the one who took it over) must not add
an authenticator app of their own, nor replace the backup codes with new ones.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import BackupCode, SecurityEvent
from accounts.services.holds import security_hold_extend
from tests.factories import UserFactory
from tests.passkey_authenticator import SoftwarePasskey, signed_in_with_passkey

pytestmark = pytest.mark.django_db

SETUP = "/accounts/2fa/setup/"


def test_no_authenticator_app_is_added_to_a_passkey_account_during_a_hold():
    user = UserFactory(email="wei.dai@posteo.de", phone="+4915123456781")
    passkey = SoftwarePasskey(user)
    client = signed_in_with_passkey(user, passkey)
    assert client.get(reverse("account_security")).status_code == 200
    security_hold_extend(user=user, hours=48)
    events = SecurityEvent.objects.filter(account_id=user.pk).count()

    assert client.get(SETUP).status_code == 200
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    code = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
    response = client.post(SETUP, {"code": code})

    assert response.status_code == 403, response.status_code
    assert "Security changes are on hold" in response.content.decode()

    assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    assert not BackupCode.objects.filter(device__user=user).exists()
    assert SecurityEvent.objects.filter(account_id=user.pk).count() == events
