"""The owner who says "this wasn't me" at the instant the phisher presses "finish".

The phisher proved two methods on /recover/lost-2fa/ and sat out the wait. As they press
"finish" (which removes the owner's authenticator), the owner confirms "this wasn't me"
from a notice. The freeze locked the account row and then the account's self-service
attempts; "finish" locked its attempt and then the account row. Taken in that order by
both, each waited for the other: PostgreSQL broke the deadlock by failing one of them
(whichever looked for a deadlock first), whose browser got the "service unavailable, try
again" page; had it been the owner's freeze, the finish would have gone through. Both now
take the attempt first: one waits, then acts on what the other left.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import SecurityEvent, User
from accounts.services.audit import security_event_record
from accounts.services.tokens import not_me_link_issue
from recovery.models import SelfServiceRecovery
from tests.concurrency import in_thread, until_lock_waiters
from tests.factories import PASSWORD
from tests.recovery.self_service_helpers import (
    ACCOUNT_EMAIL,
    ACCOUNT_PHONE,
    CODE_IN_SMS,
    browser,
    customer_account,
    last_code,
    lost_2fa,
)

pytestmark = pytest.mark.django_db(transaction=True)
Status = SelfServiceRecovery.Status


def test_a_freeze_and_a_finish_at_the_same_instant_give_no_error_and_the_freeze_holds(
    capture, sms_outbox
):
    user, _codes = customer_account()
    phisher = lost_2fa(capture, browser(ip="203.0.113.90", user_agent="Phish/3"))
    phisher.client.raise_request_exception = False
    assert phisher.start(identifier=ACCOUNT_EMAIL, password=PASSWORD).status_code == 302
    phisher.send("phone")
    phisher.verify("phone", last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS))
    assert phisher.attempt.status == Status.WAITING
    event = security_event_record(user=user, type=SecurityEvent.Type.PASSWORD_CHANGED, notify=False)
    owner = Client(raise_request_exception=False)
    assert owner.get(f"/recover/not-me/{not_me_link_issue(user=user, security_event=event)}/")

    results: dict[str, object] = {}
    release = threading.Event()
    held = threading.Event()

    def hold_the_account_row() -> None:
        # Someone else's short transaction on the account (a sign-in, say) is under way
        # when both requests arrive; it lets them line up in the order that deadlocked.
        with transaction.atomic():
            User.objects.select_for_update().get(pk=user.pk)
            held.set()
            release.wait(timeout=30)

    with time_machine.travel(timezone.now() + timedelta(days=5), tick=False):
        blocker = in_thread(hold_the_account_row, results, "blocker")
        assert held.wait(timeout=10)
        freeze = in_thread(
            lambda: owner.post(reverse("recover_not_me")).status_code, results, "freeze"
        )
        until_lock_waiters(1)
        finish = in_thread(lambda: phisher.finish().status_code, results, "finish")
        until_lock_waiters(2)
        release.set()
        for thread in (blocker, freeze, finish):
            thread.join(timeout=60)

    assert results["freeze"] == 200
    assert results["finish"] == 302
    assert User.objects.get(pk=user.pk).frozen_at is not None
    assert phisher.attempt.status == Status.CANCELLED
    assert TOTPDevice.objects.filter(user=user, confirmed=True).exists(), "nothing was reset"
