"""The stranger who jams the victim's backup codes from /recover/lost-2fa/.

The stranger knows the victim's email address and phone number, nothing else. The first
step of /recover/lost-2fa/ takes "the account and a backup code"; each wrong guess used to
count as a failure of the victim's backup-code device, whose throttle doubles its delay
with every failure and forgets them only after a success. Ten guesses an hour (the page's
limit per email and per phone) locked the victim's backup codes for minutes, and a day of
guessing for longer than any customer waits: at the sign-in's 2FA step too. The page's own
rate limits are what bound the guesses; the victim's codes keep working.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.services.audit import AuditContext
from recovery.models import SelfServiceRecovery
from recovery.self_service import Started, self_service_start
from tests.concurrency import in_thread, until_lock_waiters
from tests.recovery.self_service_helpers import (
    ACCOUNT_EMAIL,
    ACCOUNT_PHONE,
    browser,
    customer_account,
    lost_2fa,
)
from tests.support.conftest import password_only_client

pytestmark = pytest.mark.django_db


def test_wrong_backup_codes_from_a_stranger_do_not_lock_the_owners_codes(capture):
    user, codes = customer_account()
    start = timezone.now()
    answers = []
    # One guess every ten minutes: within the page's limits, and each one after the delay
    # the guess before it would have set.
    for n in range(10):
        with time_machine.travel(start + timedelta(minutes=10 * n), tick=False):
            stranger = lost_2fa(capture, browser(ip=f"203.0.113.{120 + n}", user_agent="Jam/1"))
            guess = f"AAAA-BBBB-CCCC-{n:04d}".replace("0", "D")
            identifier = ACCOUNT_EMAIL if n % 2 else ACCOUNT_PHONE
            answers.append(stranger.start(identifier=identifier, backup_code=guess).status_code)
    assert answers == [400] * 10

    with time_machine.travel(start + timedelta(minutes=91), tick=False):
        owner = password_only_client(user)
        signed_in = owner.post(reverse("two_factor_verify"), {"code": codes[0]})
        assert signed_in.status_code == 302, signed_in.content.decode()
        assert owner.get(reverse("account_security")).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_one_backup_code_given_to_two_starts_at_once_starts_one_attempt():
    """The second start waits for the first one's use of the code, then finds it gone."""
    _user, codes = customer_account()
    context = AuditContext(ip_address="203.0.113.130", user_agent="Twice/1")

    def start() -> Started | None:
        return self_service_start(
            kind="lost_factor", identifier=ACCOUNT_EMAIL, backup_code=codes[0], context=context
        )

    used, commit = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def first() -> Started | None:
        try:
            with transaction.atomic():
                started = start()
                used.set()
                assert commit.wait(timeout=30)
            return started
        finally:
            used.set()

    first_thread = in_thread(first, results, "first")
    assert used.wait(timeout=30)
    second_thread = in_thread(start, results, "second")
    until_lock_waiters(1, unless_ended=second_thread)
    commit.set()
    first_thread.join(timeout=30)
    second_thread.join(timeout=30)

    assert isinstance(results["first"], Started)
    assert results["second"] is None
    assert SelfServiceRecovery.objects.count() == 1
