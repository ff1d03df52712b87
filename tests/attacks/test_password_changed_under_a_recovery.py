"""The phisher with the password and the SIM, and the owner who does what the notice says.

The phisher enters the phished password on /recover/new-email/ or /recover/lost-2fa/. Every
contact on file reads at once: "Someone entered the password of your account ... If this
was not you, change your password now." The owner, still signed in with their
authenticator, changes the password. The proof of the old password must then count for
nothing: the phisher's codes start no wait, and a wait already running ends without a
change.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from recovery.models import SelfServiceRecovery
from recovery.self_service import self_service_apply_due
from tests.factories import PASSWORD, totp_code
from tests.recovery.self_service_helpers import (
    ACCOUNT_EMAIL,
    ACCOUNT_PHONE,
    CODE_IN_EMAIL,
    CODE_IN_SMS,
    browser,
    customer_account,
    last_code,
    lost_2fa,
    new_email,
    phisher_waiting,
)
from tests.support.conftest import customer_client

pytestmark = pytest.mark.django_db
Status = SelfServiceRecovery.Status
PHISHERS_INBOX = "phisher@example.net"
OWNERS_NEW_PASSWORD = "the-owner-changed-it-42"


def owner_changes_password(user: User) -> None:
    owner = customer_client(user)
    changed = owner.post(
        reverse("account_change_password"),
        {
            "oldpassword": PASSWORD,
            "password1": OWNERS_NEW_PASSWORD,
            "password2": OWNERS_NEW_PASSWORD,
        },
    )
    assert changed.status_code == 302, changed.content.decode()
    assert User.objects.get(pk=user.pk).check_password(OWNERS_NEW_PASSWORD)


def test_a_password_changed_after_the_phisher_entered_it_starts_no_wait(
    capture, sms_outbox, mailoutbox
):
    user, _codes = customer_account()
    phisher = new_email(capture, browser(ip="203.0.113.91", user_agent="Phish/5"))
    started = phisher.start(identifier=ACCOUNT_PHONE, password=PASSWORD, new_email=PHISHERS_INBOX)
    assert started.status_code == 302
    told = [m.body for m in mailoutbox if m.to == [ACCOUNT_EMAIL]]
    assert any("change your password now" in body for body in told)

    owner_changes_password(user)

    phisher.verify("phone", last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS))
    phisher.verify("new_email", last_code(mailoutbox, to=[PHISHERS_INBOX], pattern=CODE_IN_EMAIL))
    assert phisher.attempt.status not in (Status.WAITING, Status.READY, Status.COMPLETED)
    with time_machine.travel(timezone.now() + timedelta(days=10), tick=False):
        self_service_apply_due()
        phisher.get()
    assert User.objects.get(pk=user.pk).email == ACCOUNT_EMAIL


def test_a_password_changed_during_the_wait_ends_the_phishers_recovery(
    capture, sms_outbox, mailoutbox
):
    user, _codes = customer_account()
    phisher, _owners_link = phisher_waiting(
        capture,
        holding="phone",
        ip="203.0.113.92",
        user_agent="Phish/6",
        mailoutbox=mailoutbox,
        sms_outbox=sms_outbox,
    )

    owner_changes_password(user)

    with time_machine.travel(timezone.now() + timedelta(days=5), tick=False):
        finished = phisher.finish()
        assert finished["Location"] != reverse("recover_lost_2fa_setup")
        assert phisher.client.get(reverse("recover_lost_2fa_setup")).status_code == 302
    assert phisher.attempt.status == Status.CANCELLED
    user = User.objects.get(pk=user.pk)
    assert not user.reenrolment_required
    assert TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    # The page tells the phisher why, in words.
    assert "The password of the account changed" in phisher.get().content.decode()


def test_a_password_changed_during_the_wait_ends_a_move_to_a_new_email(
    capture, sms_outbox, mailoutbox
):
    user, _codes = customer_account()
    phisher = new_email(capture, browser(ip="203.0.113.93", user_agent="Phish/7"))
    phisher.start(identifier=ACCOUNT_PHONE, password=PASSWORD, new_email=PHISHERS_INBOX)
    phisher.verify("phone", last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS))
    phisher.verify("new_email", last_code(mailoutbox, to=[PHISHERS_INBOX], pattern=CODE_IN_EMAIL))
    assert phisher.attempt.status == Status.WAITING

    owner_changes_password(user)

    mailoutbox.clear()
    sms_outbox.clear()
    with time_machine.travel(timezone.now() + timedelta(days=10), tick=False), capture():
        assert self_service_apply_due() == 0
    assert phisher.attempt.status == Status.CANCELLED
    assert User.objects.get(pk=user.pk).email == ACCOUNT_EMAIL
    # Every contact was told the login email would change: now they hear it will not.
    ended = [m for m in [*mailoutbox, *sms_outbox] if "has ended" in m.body]
    assert sorted(str(m.to) for m in ended) == sorted([str([ACCOUNT_EMAIL]), ACCOUNT_PHONE])
    assert all("Nothing was changed" in m.body for m in ended)
    lost = lost_2fa(capture, phisher.client)
    assert lost.get().status_code == 200


def test_new_backup_codes_during_the_wait_end_a_recovery_started_with_an_old_one(
    capture, sms_outbox
):
    """A thief with one of the owner's saved backup codes and the SIM starts the wait. The
    owner, who still has the app, replaces the backup codes: the proof of the old code
    counts for nothing any more, and the wait ends without removing the app."""
    user, codes = customer_account()
    thief = lost_2fa(capture, browser(ip="203.0.113.94", user_agent="Thief/1"))
    assert thief.start(identifier=ACCOUNT_PHONE, backup_code=codes[0]).status_code == 302
    thief.send("phone")
    thief.verify("phone", last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS))
    assert thief.attempt.status == Status.WAITING

    owner = customer_client(user)
    app = TOTPDevice.objects.get(user=user, confirmed=True)
    # A minute on: the app shows a code the owner's sign-in did not use yet.
    with time_machine.travel(timezone.now() + timedelta(minutes=1), tick=False):
        replaced = owner.post(reverse("backup_codes_regenerate"), {"code": totp_code(app)})
    assert replaced.status_code == 200, replaced.content.decode()

    with time_machine.travel(timezone.now() + timedelta(days=5), tick=False):
        finished = thief.finish()
        assert finished["Location"] != reverse("recover_lost_2fa_setup")
    assert thief.attempt.status == Status.CANCELLED
    assert TOTPDevice.objects.filter(pk=app.pk, confirmed=True).exists()
