"""A self-service page says how its recovery really ended.

Only a stop link from a contact on file is "someone stopped it with the link we sent"; an
attempt that a newer one replaced, or one that ended when the owner froze the account,
says that instead.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.models import NotMeLink, User
from accounts.services.audit import AuditContext
from accounts.services.tokens import not_me_link_find, not_me_link_issue
from recovery.models import SelfServiceRecovery
from recovery.services import account_freeze
from tests.factories import PASSWORD
from tests.recovery.self_service_helpers import (
    ACCOUNT_EMAIL,
    ACCOUNT_PHONE,
    CODE_IN_EMAIL,
    CODE_IN_SMS,
    browser,
    customer_account,
    last_code,
    lost_2fa,
)

pytestmark = pytest.mark.django_db
Status = SelfServiceRecovery.Status
STOPPED_BY_LINK = "Someone stopped it with the link we sent to a contact on file"


def waiting_attempt(capture, client, sms_outbox):
    page = lost_2fa(capture, client)
    assert page.start(identifier=ACCOUNT_EMAIL, password=PASSWORD).status_code == 302
    page.send("phone")
    page.verify("phone", last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS))
    assert page.attempt.status == Status.WAITING
    return page


def test_an_attempt_replaced_by_a_newer_one_does_not_claim_a_stop_link(
    capture, sms_outbox, mailoutbox
):
    customer_account()
    first = waiting_attempt(capture, browser(), sms_outbox)
    first_attempt = first.attempt
    with time_machine.travel(timezone.now() + timedelta(days=5), tick=False):
        second = lost_2fa(capture, browser(ip="198.51.100.8"))
        assert second.start(identifier=ACCOUNT_EMAIL, password=PASSWORD).status_code == 302
        second.send("email")
        second.verify("email", last_code(mailoutbox, to=[ACCOUNT_EMAIL], pattern=CODE_IN_EMAIL))
        first_attempt.refresh_from_db()
        assert first_attempt.status == Status.ABANDONED
        page = first.get().content.decode()
    assert STOPPED_BY_LINK not in page
    assert "A newer recovery of this account replaced this one" in page


def test_an_attempt_ended_by_the_owners_freeze_says_so_once_the_freeze_is_cleared(
    capture, sms_outbox
):
    user, _codes = customer_account()
    page = waiting_attempt(capture, browser(), sms_outbox)
    link = not_me_link_issue(user=user, security_event=None)
    found = not_me_link_find(token=link)
    assert isinstance(found, NotMeLink)
    account_freeze(link=found, context=AuditContext())
    assert page.attempt.status == Status.CANCELLED
    # Support checked who the owner is and cleared the freeze.
    User.objects.filter(pk=user.pk).update(frozen_at=None)
    shown = page.get().content.decode()
    assert STOPPED_BY_LINK not in shown
    assert "It ended when the account was frozen" in shown
