"""The owner who answers an account takeover with "this wasn't me".

The attacker holds the victim's SIM and talked support into a change of login email to an
inbox of theirs: the phone code and the new address are proven, a supervisor approved, the
24-hour wait runs. The owner does not find the cancel link of that notice but presses
"this wasn't me" on a security notice: the account is frozen, "nobody can sign in", an
urgent case is open. A freeze must stop every change still pending on the account; the
attacker's address must never become the login email by itself.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.services.tokens import not_me_link_issue
from recovery.models import SelfServiceRecovery
from recovery.self_service import self_service_apply_due
from support.models import CaseApproval, EmailChange
from support.services.actions import email_changes_apply_due
from tests.attacks.helpers import (
    CODE_IN_EMAIL,
    Desk,
    last_code,
    open_request,
    phone_proven,
    recovered_on_a_document,
)
from tests.factories import PASSWORD
from tests.recovery.self_service_helpers import CODE_IN_EMAIL as SELF_SERVICE_CODE_IN_EMAIL
from tests.recovery.self_service_helpers import CODE_IN_SMS as SELF_SERVICE_CODE_IN_SMS
from tests.recovery.self_service_helpers import browser, new_email
from tests.recovery.self_service_helpers import last_code as self_service_last_code
from tests.support.conftest import ACCOUNT_EMAIL, ACCOUNT_PHONE

pytestmark = pytest.mark.django_db

ATTACKER_INBOX = "support.says.yes@example.net"


def _approved_change_to_the_attackers_inbox(
    *, agent, supervisor, capture, sms_outbox, mailoutbox
) -> EmailChange:
    attacker = open_request(
        capture=capture,
        contact_email=ATTACKER_INBOX,
        contact_phone=ACCOUNT_PHONE,
        emails_tried=ACCOUNT_EMAIL,
        description="Lost my inbox, please move my account to my new address.",
    )
    desk = Desk(agent, capture)
    # The code to the phone on file reaches the swapped SIM.
    case_id = phone_proven(desk, attacker, sms_outbox=sms_outbox)
    desk.act(case_id, "start_email_change", requester=case_id, new_email=ATTACKER_INBOX)
    code = last_code(mailoutbox, to=[ATTACKER_INBOX], pattern=CODE_IN_EMAIL)
    assert attacker.verify("new_email", code).status_code == 302
    change = EmailChange.objects.get(new_email=ATTACKER_INBOX)
    desk.act(case_id, "request_email_change_approval", email_change=change.pk, note="ok")
    Desk(supervisor, capture).decide(CaseApproval.objects.get().pk, "approve")
    change.refresh_from_db()
    assert change.status == EmailChange.Status.WAITING_PERIOD
    return change


def _this_wasnt_me(account: User, capture) -> None:
    """The owner presses "this wasn't me" on a security notice and confirms."""
    owner = Client(REMOTE_ADDR="198.51.100.23")
    token = not_me_link_issue(user=account, security_event=None)
    landing = owner.get(reverse("recover_not_me_link", args=[token]))
    with capture():
        frozen = owner.post(landing["Location"])
    assert frozen.status_code == 200
    assert "nobody can sign in" in frozen.content.decode()


def test_this_wasnt_me_stops_a_scheduled_login_email_change(
    account, agent, supervisor, capture, sms_outbox, mailoutbox
):
    """The owner freezes the account during the wait; when the wait is over (and even once
    support has re-authenticated the owner and the hold is over) the login email is still
    the owner's, and the change reads as cancelled."""
    change = _approved_change_to_the_attackers_inbox(
        agent=agent,
        supervisor=supervisor,
        capture=capture,
        sms_outbox=sms_outbox,
        mailoutbox=mailoutbox,
    )
    _this_wasnt_me(account, capture)

    with time_machine.travel(timezone.now() + timedelta(days=3), tick=False):
        email_changes_apply_due()
        assert User.objects.get(pk=account.pk).email == ACCOUNT_EMAIL
        change.refresh_from_db()
        assert change.status == EmailChange.Status.CANCELLED
        # Support clears the freeze later: nothing pending comes back to life.
        User.objects.filter(pk=account.pk).update(frozen_at=None, security_hold_until=None)
        email_changes_apply_due()
        assert User.objects.get(pk=account.pk).email == ACCOUNT_EMAIL


def test_this_wasnt_me_stops_a_waiting_self_service_move_to_a_new_email(
    account, capture, sms_outbox, mailoutbox
):
    """The phisher with the password and the SIM waits out /recover/new-email/; the owner
    freezes the account meanwhile. Neither the wait's end nor support clearing the freeze
    later moves the login email to the phisher's address."""
    phisher = new_email(capture, browser(ip="203.0.113.91", user_agent="Phish/4"))
    started = phisher.start(identifier=ACCOUNT_PHONE, password=PASSWORD, new_email=ATTACKER_INBOX)
    assert started.status_code == 302
    phisher.verify(
        "phone",
        self_service_last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=SELF_SERVICE_CODE_IN_SMS),
    )
    phisher.verify(
        "new_email",
        self_service_last_code(mailoutbox, to=[ATTACKER_INBOX], pattern=SELF_SERVICE_CODE_IN_EMAIL),
    )
    assert phisher.attempt.status == SelfServiceRecovery.Status.WAITING
    _this_wasnt_me(account, capture)
    assert phisher.attempt.status == SelfServiceRecovery.Status.CANCELLED

    with time_machine.travel(timezone.now() + timedelta(days=10), tick=False):
        User.objects.filter(pk=account.pk).update(frozen_at=None, security_hold_until=None)
        self_service_apply_due()
        assert phisher.get().status_code == 200
        assert User.objects.get(pk=account.pk).email == ACCOUNT_EMAIL


RECOVERY_LINK = re.compile(r"/recover/reset/([A-Za-z0-9_-]{40,})/")
NOT_ME_LINK = re.compile(r"/recover/not-me/([A-Za-z0-9_-]{40,})/")


def _token(outbox: list, *, to: str | list[str], pattern: re.Pattern[str]) -> str:
    for message in reversed(outbox):
        if message.to == to and (match := pattern.search(message.body)):
            return match.group(1)
    raise AssertionError(f"no link sent to {to}")


def test_this_wasnt_me_spends_the_recovery_link_already_sent(
    account, agent, supervisor, capture, sms_outbox, mailoutbox
):
    """The SIM swapper proved the phone and brought a forged passport that one agent
    attested and a supervisor approved: the recovery link goes by SMS to the swapped SIM.
    The owner reads "your account was recovered" in their inbox and presses "this wasn't
    me" before the swapper opens the link. The link then sets no password and signs no
    browser in to the frozen account."""
    recovered_on_a_document(Desk(agent, capture), Desk(supervisor, capture), sms_outbox=sms_outbox)
    link = _token(sms_outbox, to=ACCOUNT_PHONE, pattern=RECOVERY_LINK)

    owner = Client(REMOTE_ADDR="198.51.100.23")
    not_me = _token(mailoutbox, to=[ACCOUNT_EMAIL], pattern=NOT_ME_LINK)
    landing = owner.get(reverse("recover_not_me_link", args=[not_me]))
    with capture():
        assert owner.post(landing["Location"]).status_code == 200
    password_before = User.objects.get(pk=account.pk).password

    attacker = Client(REMOTE_ADDR="203.0.113.92")
    opened = attacker.get(reverse("recover_reset_link", args=[link]))
    if opened.status_code == 302:
        posted = attacker.post(
            opened["Location"],
            {"new_password1": "Taken-over-2026!", "new_password2": "Taken-over-2026!"},
        )
        assert posted.status_code == 404
    else:
        assert opened.status_code == 404
    user = User.objects.get(pk=account.pk)
    assert user.password == password_before and user.frozen_at is not None
    assert "_auth_user_id" not in attacker.session
    assert attacker.get(reverse("recover_2fa_setup")).status_code == 302
