"""The hijacked inbox during a mass revocation.

An incident revoked every customer's 2FA; /recover/2fa/ lets a customer set it up again
with the password and a code emailed to the login address, at once. The attacker holds the
victim's inbox and nothing else. Through that inbox they reset the password, then sign in
with it and take the emailed code from the same inbox: two "proofs" that are one. The
re-enrolment by email must not take a password that the same inbox just reset; the owner
is told where to go instead (/recover/lost-2fa/: a code to the phone, or a wait that every
contact on file can stop). Nor does /recover/lost-2fa/ take such a password with a
code to the same inbox.
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
from accounts.services.audit import AuditContext
from accounts.services.two_factor import two_factor_provision
from recovery.models import SelfServiceRecovery
from tests.factories import UserFactory, totp_code
from tests.recovery.self_service_helpers import lost_2fa

pytestmark = pytest.mark.django_db

VICTIM = "satoshi.revoked@example.org"
RESET_LINK = re.compile(r"http://testserver(/accounts/password/reset/key/[^\s]+/)")
CODE = re.compile(r"again is (\d{6})\b")
ATTACKERS_PASSWORD = "inbox-thief-password-77"


def mailed(mailoutbox: list, pattern: re.Pattern[str]) -> str | None:
    for message in reversed(mailoutbox):
        if message.to == [VICTIM] and (found := pattern.search(message.body)):
            return found.group(1)
    return None


def reset_through_the_inbox(attacker: Client, capture, mailoutbox: list) -> None:
    """allauth's password reset, its link read from the victim's inbox."""
    with capture():
        attacker.post(reverse("account_reset_password"), {"email": VICTIM})
    link = mailed(mailoutbox, RESET_LINK)
    assert link is not None
    form = attacker.get(link, follow=True)
    assert form.status_code == 200
    with capture():
        reset = attacker.post(
            form.redirect_chain[-1][0] if form.redirect_chain else link,
            {"password1": ATTACKERS_PASSWORD, "password2": ATTACKERS_PASSWORD},
        )
    assert reset.status_code == 302
    assert User.objects.get(email=VICTIM).check_password(ATTACKERS_PASSWORD)


def test_a_password_reset_through_the_inbox_is_no_second_proof_for_re_enrolment(
    capture, mailoutbox
):
    user = UserFactory.create(email=VICTIM, phone="+4915100000077", reenrolment_required=True)
    attacker = Client(REMOTE_ADDR="203.0.113.150")
    reset_through_the_inbox(attacker, capture, mailoutbox)

    signed_in = attacker.post(
        reverse("account_login"), {"login": VICTIM, "password": ATTACKERS_PASSWORD}
    )
    assert signed_in.status_code == 302
    mailoutbox.clear()
    with capture():
        asked = attacker.post(reverse("recover_2fa"), {"action": "send"})
    code = mailed(mailoutbox, CODE)
    if code is not None:
        attacker.post(reverse("recover_2fa"), {"action": "verify", "code": code})
        attacker.get(reverse("recover_2fa_setup"))
        device = TOTPDevice.objects.filter(user=user, confirmed=False).last()
        if device is not None:
            attacker.post(reverse("recover_2fa_setup"), {"code": totp_code(device)})
    assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    # The page says where to go instead.
    assert asked.status_code == 302 and asked["Location"] == reverse("recover_lost_2fa")
    page = attacker.get(reverse("recover_lost_2fa")).content.decode()
    assert "set through a reset link to your email" in page


def test_a_password_reset_through_the_inbox_and_an_emailed_code_start_no_wait(capture, mailoutbox):
    """The same two "proofs" on /recover/lost-2fa/, on an account without a phone: every
    notice and stop link would reach the attacker's inbox alone. The emailed code is not
    offered as the second proof after such a reset; nothing waits, nothing changes."""
    user = UserFactory.create(email=VICTIM, phone=None)
    two_factor_provision(user=user, context=AuditContext(), notify=False)
    attacker = Client(REMOTE_ADDR="203.0.113.151")
    reset_through_the_inbox(attacker, capture, mailoutbox)

    page = lost_2fa(capture, attacker)
    assert page.start(identifier=VICTIM, password=ATTACKERS_PASSWORD).status_code == 302
    mailoutbox.clear()
    refused = page.send("email")
    assert refused.status_code == 409
    assert "set through a reset link to your email" in refused.content.decode()
    assert mailed(mailoutbox, re.compile(r"recover your account is (\d{6})\.")) is None
    assert not SelfServiceRecovery.objects.filter(status__in=["waiting", "ready"]).exists()
    assert TOTPDevice.objects.filter(user=user, confirmed=True).count() == 1


def test_a_password_reset_through_the_inbox_stays_no_second_proof_days_later(capture, mailoutbox):
    """The attacker waits out any look-back window before using the same two "proofs":
    as long as the password is the one the inbox set, a code to that inbox proves nothing
    more."""
    user = UserFactory.create(email=VICTIM, phone=None)
    two_factor_provision(user=user, context=AuditContext(), notify=False)
    attacker = Client(REMOTE_ADDR="203.0.113.152")
    reset_through_the_inbox(attacker, capture, mailoutbox)

    with time_machine.travel(timezone.now() + timedelta(days=30), tick=False):
        page = lost_2fa(capture, attacker)
        assert page.start(identifier=VICTIM, password=ATTACKERS_PASSWORD).status_code == 302
        refused = page.send("email")
    assert refused.status_code == 409
    assert not SelfServiceRecovery.objects.filter(status__in=["waiting", "ready"]).exists()
