"""An ended self-service attempt's page tells how it ended, not that a contact stopped it."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from recovery.models import SelfServiceRecovery
from recovery.self_service import self_service_stop_for_frozen
from tests.factories import PASSWORD
from tests.recovery.self_service_helpers import (
    ACCOUNT_EMAIL,
    ACCOUNT_PHONE,
    CODE_IN_SMS,
    browser,
    cancel_token,
    customer_account,
    last_code,
    lost_2fa,
)

pytestmark = pytest.mark.django_db

Status = SelfServiceRecovery.Status
STOPPED_BY_LINK = "Someone stopped it with the link we sent to a contact on file"


def _prove_two(path, sms_outbox) -> None:
    assert path.start(identifier=ACCOUNT_EMAIL, password=PASSWORD).status_code == 302
    assert path.send("phone").status_code == 302
    code = last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS)
    assert path.verify("phone", code).status_code == 302


def test_an_attempt_a_newer_one_replaced_does_not_claim_a_contact_stopped_it(capture, sms_outbox):
    """Nobody stopped the first attempt and no case was opened: a newer attempt took its
    place after its wait ran out unfinished. Its page says that."""
    customer_account()
    first = lost_2fa(capture)
    _prove_two(first, sms_outbox)
    with time_machine.travel(timezone.now() + timedelta(hours=25), tick=False):
        _prove_two(lost_2fa(capture, browser()), sms_outbox)
        assert SelfServiceRecovery.objects.filter(status=Status.ABANDONED).count() == 1
        page = first.get().content.decode()

    assert STOPPED_BY_LINK not in page
    assert "support team will look at your account" not in page
    assert "A newer recovery of this account replaced this one" in page


def test_an_attempt_a_freeze_ended_says_so_once_the_freeze_is_cleared(capture, sms_outbox):
    """The owner's "this wasn't me" ended the attempt; after support cleared the freeze, the
    asking browser learns that, not a contact's stop link."""
    user, _codes = customer_account()
    path = lost_2fa(capture)
    _prove_two(path, sms_outbox)
    User.objects.filter(pk=user.pk).update(frozen_at=timezone.now())
    assert self_service_stop_for_frozen(user=user) == 1
    User.objects.filter(pk=user.pk).update(frozen_at=None)

    page = path.get().content.decode()
    assert STOPPED_BY_LINK not in page
    assert "the account was frozen" in page


def test_the_stop_page_of_a_recovery_past_its_wait_does_not_promise_nothing_changes(
    capture, mailoutbox, sms_outbox
):
    """The asker's wait ran out and they went on: the authenticator and backup codes are
    gone. The owner who opens the stop link now is told that before stopping, not that
    "nothing will change"."""
    customer_account()
    path = lost_2fa(capture)
    _prove_two(path, sms_outbox)
    token = cancel_token(mailoutbox, to=[ACCOUNT_EMAIL])
    with time_machine.travel(timezone.now() + timedelta(hours=25), tick=False):
        assert path.finish().status_code == 302
        assert path.attempt.status == Status.READY
        owner = browser(ip="192.0.2.80")
        landing = owner.get(reverse("recover_self_service_cancel_link", args=[token]))
        page = owner.get(landing["Location"]).content.decode()

    assert "nothing will change" not in page
    assert "your authenticator app and backup codes were already removed" in page


def test_the_hold_after_a_stopped_recovery_is_not_called_a_recovery_or_change(
    capture, mailoutbox, sms_outbox, client
):
    """The owner stopped a recovery: nothing changed, yet the account is on hold. A reset
    asked for then says the hold follows a recovery or change *or one that was stopped*,
    not that the account was recovered or changed."""
    customer_account()
    asker = lost_2fa(capture)
    _prove_two(asker, sms_outbox)
    token = cancel_token(mailoutbox, to=[ACCOUNT_EMAIL])
    owner = browser(ip="192.0.2.80")
    owner.get(reverse("recover_self_service_cancel_link", args=[token]))
    with capture():
        assert owner.post(reverse("recover_self_service_cancel")).status_code == 200
    mailoutbox.clear()

    with capture():
        client.post(reverse("account_reset_password"), {"email": ACCOUNT_EMAIL})

    (message,) = [m for m in mailoutbox if m.to == [ACCOUNT_EMAIL]]
    assert "cannot be changed until the hold ends" in message.body
    assert "after a recent recovery or change, or one that was stopped" in message.body
