"""One authenticator setup for both flows: first setup (/accounts/2fa/setup/) and
re-enrolment after a revocation (/recover/2fa/setup/) share the page, the form and the
service, and differ only in who may enter and what the confirmation records."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import BackupCode, SecurityEvent, User
from accounts.services.audit import AuditContext
from accounts.services.two_factor import (
    TotpSetupRefused,
    totp_device_confirm,
    totp_device_start,
)
from recovery.views import REENROL_SESSION_KEY
from tests.conftest import database_state
from tests.factories import PASSWORD, UserFactory, totp_code

pytestmark = pytest.mark.django_db


def sign_in(client, user) -> None:
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content


@pytest.mark.parametrize(
    ("flagged", "reenrolment"), [(False, True), (True, False)], ids=["not-revoked", "revoked"]
)
def test_the_service_refuses_a_setup_that_does_not_fit_the_account(flagged, reenrolment):
    """A re-enrolment for an account whose 2FA was not revoked, or a first setup for one
    whose 2FA was revoked, is refused even with the right code, and nothing is written."""
    user = UserFactory.create(reenrolment_required=flagged)
    device = totp_device_start(user=user)
    before = database_state()

    with pytest.raises(TotpSetupRefused):
        totp_device_confirm(
            user=user,
            device_id=device.pk,
            code=totp_code(device),
            context=AuditContext(),
            reenrolment=reenrolment,
        )

    assert database_state() == before


def test_a_revocation_during_first_setup_sends_the_user_to_re_enrolment(
    client, django_capture_on_commit_callbacks
):
    """2FA is revoked while the first-setup page is open: the right code then confirms
    nothing, and the user is sent on to /recover/2fa/ (password alone never re-enrols)."""
    user = UserFactory.create()
    sign_in(client, user)
    assert client.get(reverse("two_factor_setup")).status_code == 200
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    User.objects.filter(pk=user.pk).update(reenrolment_required=True)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("two_factor_setup"), {"code": totp_code(device)}, follow=True
        )

    assert response.redirect_chain[-1][0] == reverse("recover_2fa")
    assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    assert not BackupCode.objects.filter(device__user=user).exists()
    assert not SecurityEvent.objects.filter(account_id=user.pk).exists()


@pytest.mark.parametrize("url_name", ["two_factor_setup", "recover_2fa_setup"])
def test_both_flows_refuse_a_malformed_code_alike(client, url_name):
    """The same form answers a malformed code the same way on both setup pages: 400 and
    the same message, and the authenticator stays unconfirmed."""
    if url_name == "recover_2fa_setup":
        user = UserFactory.create(reenrolment_required=True)
        sign_in(client, user)
        session = client.session
        session[REENROL_SESSION_KEY] = user.pk
        session.save()
    else:
        user = UserFactory.create()
        sign_in(client, user)
    assert client.get(reverse(url_name)).status_code == 200

    response = client.post(reverse(url_name), {"code": "12 34"})

    assert response.status_code == 400
    assert "Enter the 6-digit code shown by your authenticator app." in response.content.decode()
    assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def test_re_enrolment_keeps_a_longer_hold(settings):
    """A re-enrolment right after an agent's recovery (48-hour hold) does not shorten that
    hold to the re-enrolment's own 24 hours."""
    user = UserFactory.create(reenrolment_required=True)
    agent_hold = timezone.now() + timedelta(hours=settings.SECURITY_HOLD_HOURS_RECOVERY)
    User.objects.filter(pk=user.pk).update(security_hold_until=agent_hold)
    device = totp_device_start(user=user)

    codes = totp_device_confirm(
        user=user,
        device_id=device.pk,
        code=totp_code(device),
        context=AuditContext(),
        reenrolment=True,
    )

    assert codes is not None
    user.refresh_from_db()
    assert user.security_hold_until == agent_hold
    assert user.reenrolment_required is False
    assert SecurityEvent.objects.filter(account_id=user.pk, type="two_factor_reenrolled").exists()
