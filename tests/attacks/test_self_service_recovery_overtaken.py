"""The account taker with the phished password and the login inbox, racing the owner's
self-service recovery at its last step.

The owner lost the authenticator app, proved the password and the phone on file on
/recover/lost-2fa/, sat out the wait (nobody stopped it: the owner asked) and pressed
"finish", which removed the old app and flagged the account for re-enrolment. Before the
owner's browser confirms its new app, the attacker signs in with the old password and asks
/recover/2fa/ (the re-enrolment of a mass revocation) for the emailed code. The recovery
must stay the owner's: the attacker's app is never confirmed, and the owner's setup
still ends with the owner's app.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from recovery.models import SelfServiceRecovery
from tests.factories import PASSWORD, totp_code
from tests.recovery.self_service_helpers import (
    ACCOUNT_EMAIL,
    ACCOUNT_PHONE,
    CODE_IN_SMS,
    browser,
    cancel,
    cancel_token,
    customer_account,
    last_code,
    lost_2fa,
)

pytestmark = pytest.mark.django_db
Status = SelfServiceRecovery.Status
CODE = re.compile(r"\b(\d{6})\b")


def test_the_password_and_the_inbox_do_not_overtake_the_owners_self_service_recovery(
    capture, sms_outbox, mailoutbox
):
    user, _codes = customer_account()
    owner = lost_2fa(capture)
    assert owner.start(identifier=ACCOUNT_EMAIL, password=PASSWORD).status_code == 302
    owner.send("phone")
    owner.verify("phone", last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS))
    assert owner.attempt.status == Status.WAITING

    with time_machine.travel(timezone.now() + timedelta(days=5), tick=False):
        assert owner.finish()["Location"] == reverse("recover_lost_2fa_setup")
        assert owner.client.get(reverse("recover_lost_2fa_setup")).status_code == 200
        mailoutbox.clear()

        attacker = Client(REMOTE_ADDR="203.0.113.66", HTTP_USER_AGENT="Phish/4")
        attacker.post(reverse("account_login"), {"login": ACCOUNT_EMAIL, "password": PASSWORD})
        with capture():
            attacker.post(reverse("recover_2fa"), {"action": "send"})
        emailed = [
            found.group(1)
            for m in mailoutbox
            if m.to == [ACCOUNT_EMAIL] and (found := CODE.search(m.body))
        ]
        if emailed:
            attacker.post(reverse("recover_2fa"), {"action": "verify", "code": emailed[-1]})
            attacker.get(reverse("recover_2fa_setup"))
            attackers = TOTPDevice.objects.filter(user=user, confirmed=False).last()
            if attackers is not None:
                attacker.post(reverse("recover_2fa_setup"), {"code": totp_code(attackers)})
        assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()

        # The owner's browser still finishes the recovery with the owner's app.
        assert owner.client.get(reverse("recover_lost_2fa_setup")).status_code == 200
        device = TOTPDevice.objects.filter(user=user, confirmed=False).get()
        confirmed = owner.client.post(
            reverse("recover_lost_2fa_setup"), {"code": totp_code(device)}
        )
        assert confirmed.status_code == 200
        assert TOTPDevice.objects.filter(user=user, confirmed=True).get().pk == device.pk
        assert owner.attempt.status == Status.COMPLETED


def test_every_contact_hears_when_the_app_is_removed_and_can_still_stop_it(
    capture, sms_outbox, mailoutbox
):
    """Pressing "finish" removes the authenticator and the backup codes: a change of a sign-in
    factor, told to every contact on file when it happens, with a link that still stops
    the recovery (the phisher holding one contact cannot set up their app then)."""
    user, _codes = customer_account()
    phisher = lost_2fa(capture, browser(ip="203.0.113.94", user_agent="Phish/8"))
    assert phisher.start(identifier=ACCOUNT_PHONE, password=PASSWORD).status_code == 302
    phisher.send("phone")
    phisher.verify("phone", last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS))
    with time_machine.travel(timezone.now() + timedelta(days=5), tick=False):
        mailoutbox.clear()
        sms_outbox.clear()
        assert phisher.finish()["Location"] == reverse("recover_lost_2fa_setup")
        (email,) = [m for m in mailoutbox if m.to == [ACCOUNT_EMAIL]]
        (text,) = [m for m in sms_outbox if m.to == ACCOUNT_PHONE]
        for body in (email.body, text.body):
            assert "authenticator app" in body and "removed" in body
        owners_link = cancel_token(mailoutbox, to=[ACCOUNT_EMAIL])
        assert cancel(owners_link, capture).status_code == 200
        assert phisher.attempt.status == Status.CANCELLED
        assert phisher.client.get(reverse("recover_lost_2fa_setup")).status_code == 302
    assert User.objects.get(pk=user.pk).frozen_at is not None
