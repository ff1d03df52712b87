"""The phisher with the victim's password and inbox, stopped after "finish", who re-enrols.

They prove the password and a code to the email on file on /recover/lost-2fa/, sit out
the wait and press "finish", which removes the owner's authenticator and backup codes.
The owner then stops the recovery with the link texted to their phone. The stop signs the
phisher's browser out and closes both setup pages to it; but the account was left waiting
for a re-enrolment, and /recover/2fa/ asks for exactly what the phisher holds: the password
and a code to the login email. Signing in again, they set up their own authenticator
within minutes of being stopped. A recovery stopped after the reset must leave the account
to support: nobody sets up a factor until an agent has checked who is asking.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import SecurityEvent, User
from accounts.selectors import account_restrictions
from recovery.models import SelfServiceRecovery
from support.models import OPEN_STATUSES, RecoveryCase
from tests.factories import PASSWORD, totp_code
from tests.recovery.self_service_helpers import (
    ACCOUNT_EMAIL,
    browser,
    cancel,
    customer_account,
    phisher_waiting,
)

pytestmark = pytest.mark.django_db
Status = SelfServiceRecovery.Status

REENROLMENT_CODE = re.compile(r"again is (\d{6})\b")
PHISHER_IP = "203.0.113.91"
PHISHER_AGENT = "Phish/4"


def test_a_phisher_stopped_after_the_reset_cannot_re_enrol_with_password_and_inbox(
    capture, sms_outbox, mailoutbox
):
    user, _codes = customer_account()
    phisher, owners_link = phisher_waiting(
        capture,
        holding="email",
        ip=PHISHER_IP,
        user_agent=PHISHER_AGENT,
        mailoutbox=mailoutbox,
        sms_outbox=sms_outbox,
    )

    with time_machine.travel(timezone.now() + timedelta(days=5), tick=False):
        assert phisher.finish()["Location"] == reverse("recover_lost_2fa_setup")
        assert cancel(owners_link, capture).status_code == 200
        assert phisher.attempt.status == Status.CANCELLED

        # The phisher signs in again with the password and asks /recover/2fa/ for a code.
        again = browser(ip=PHISHER_IP, user_agent=PHISHER_AGENT)
        with capture():
            again.post(reverse("account_login"), {"login": ACCOUNT_EMAIL, "password": PASSWORD})
            again.post(reverse("recover_2fa"), {"action": "send"})
        codes = [
            match.group(1)
            for m in mailoutbox
            if m.to == [ACCOUNT_EMAIL] and (match := REENROLMENT_CODE.search(m.body))
        ]
        if codes:
            code = codes[-1]
            again.post(reverse("recover_2fa"), {"action": "verify", "code": code})
            again.get(reverse("recover_2fa_setup"))
            device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
            if device is not None:
                with capture():
                    again.post(reverse("recover_2fa_setup"), {"code": totp_code(device)})

        assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        assert not SecurityEvent.objects.filter(
            account_id=user.pk, type=SecurityEvent.Type.TWO_FACTOR_REENROLLED
        ).exists()
        # The account waits for support, and the exchange is told so.
        user = User.objects.get(pk=user.pk)
        assert user.frozen_at is not None
        assert "account_frozen" in account_restrictions(user=user).reasons
        assert RecoveryCase.objects.filter(matched_user=user, status__in=OPEN_STATUSES).exists()
