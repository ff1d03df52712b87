"""The supervisor who recovers an account and then lifts its hold.

A supervisor works a case themselves and re-authenticates the account on the requester's
two proofs (a SIM swapper with the victim's inbox, say, or an accomplice). The recovery
puts the account on a security hold, so the exchange keeps withdrawals closed while the
owner can still notice. The supervisor then lifts that hold with a reason: the one who let
the requester in is the one who opens the withdrawals, and nobody else took part.

Or the supervisor approved the document check an agent attested, the agent re-authenticated
the account on it, and the approving supervisor lifts the hold: the two who let the
requester in would also open the withdrawals, with nobody independent of them. Or the
supervisor took over a login-email change an agent had prepared and asked a colleague to
approve it, then lifts the hold the change set once it applied.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
import time_machine
from django.urls import reverse

from accounts.models import SecurityEvent, User
from support.models import CaseApproval, EmailChange
from support.roles import SUPERVISORS_GROUP
from support.services.actions import email_changes_apply_due
from tests.attacks.helpers import (
    CODE_IN_EMAIL,
    Desk,
    email_change_proven,
    last_code,
    open_request,
    phone_proven,
    recovered_on_a_document,
)
from tests.support.conftest import ACCOUNT_EMAIL, ACCOUNT_PHONE, fresh_code, staff_member

if TYPE_CHECKING:
    from tests.factories import ClientResponse

pytestmark = pytest.mark.django_db


def lift(desk: Desk, account: User, reason: str) -> ClientResponse:
    """`desk`'s staff member asks to lift the account's hold, with a reason and a code."""
    return desk.client.post(
        reverse("admin:accounts_user_lift_hold", args=[account.pk]),
        {"reason": reason, "otp_code": fresh_code(desk.staff)},
    )


def test_the_supervisor_who_recovered_an_account_cannot_lift_its_hold(
    account, supervisor, second_supervisor, capture, sms_outbox, mailoutbox
):
    """The recovering supervisor's lift is refused in words and the hold stays; another
    supervisor, who had no part in the recovery, may lift it."""
    requester = open_request(
        capture=capture,
        contact_email=ACCOUNT_EMAIL,
        contact_phone=ACCOUNT_PHONE,
        emails_tried=ACCOUNT_EMAIL,
    )
    boss = Desk(supervisor, capture)
    case_id = phone_proven(boss, requester, sms_outbox=sms_outbox)
    boss.act(case_id, "send_email_code", requester=case_id)
    email_code = last_code(mailoutbox, to=[ACCOUNT_EMAIL], pattern=CODE_IN_EMAIL)
    assert requester.verify("email", email_code).status_code == 302
    boss.act(case_id, "reauthenticate", requester=case_id)
    assert User.objects.get(pk=account.pk).on_security_hold

    refused = lift(boss, account, "Customer called, all fine")
    assert refused.status_code == 400
    assert (
        "You took part in this account&#x27;s recovery or login-email change: another "
        "supervisor decides on its hold." in refused.content.decode()
    )
    assert User.objects.get(pk=account.pk).on_security_hold
    lifted = SecurityEvent.objects.filter(
        account_id=account.pk, type=SecurityEvent.Type.SECURITY_HOLD_LIFTED
    )
    assert not lifted.exists()

    done = lift(Desk(second_supervisor, capture), account, "Owner confirmed by video call")
    assert done.status_code == 302
    assert not User.objects.get(pk=account.pk).on_security_hold
    assert lifted.get().actor_id == second_supervisor.pk


def test_the_supervisor_who_approved_the_document_of_a_recovery_cannot_lift_its_hold(
    account, agent, supervisor, second_supervisor, capture, sms_outbox
):
    """An agent attests a passport and proves the phone on file; the supervisor approves
    the document check; the agent re-authenticates. The approving supervisor's lift is
    refused in words and the hold stays; a supervisor who had no part lifts it."""
    boss = Desk(supervisor, capture)
    recovered_on_a_document(Desk(agent, capture), boss, sms_outbox=sms_outbox)
    assert User.objects.get(pk=account.pk).on_security_hold

    refused = lift(boss, account, "Customer called, all fine")
    assert refused.status_code == 400
    assert (
        "You took part in this account&#x27;s recovery or login-email change: another "
        "supervisor decides on its hold." in refused.content.decode()
    )
    assert User.objects.get(pk=account.pk).on_security_hold

    done = lift(Desk(second_supervisor, capture), account, "Owner confirmed by video call")
    assert done.status_code == 302
    assert not User.objects.get(pk=account.pk).on_security_hold


def test_the_supervisor_who_asked_to_approve_an_email_change_cannot_lift_its_hold(
    account, agent, supervisor, second_supervisor, capture, sms_outbox, mailoutbox
):
    """An agent prepares a proven login-email change and gives the case back; the
    supervisor takes it and asks a colleague to approve the change. Once it applied, the
    asking supervisor's lift is refused (as the approver's is); a third supervisor lifts."""
    desk = Desk(agent, capture)
    case_id = email_change_proven(
        desk, new_email="taken.over@example.org", sms_outbox=sms_outbox, mailoutbox=mailoutbox
    )
    desk.act(case_id, "release", reason="Shift over")
    boss = Desk(supervisor, capture)
    assert boss.take_next() == case_id
    change = EmailChange.objects.get()
    boss.act(case_id, "request_email_change_approval", email_change=change.pk, note="Fine")
    colleague = Desk(second_supervisor, capture)
    assert colleague.decide(CaseApproval.objects.get().pk, "approve").status_code == 200
    change.refresh_from_db()
    assert change.effective_at is not None
    third = staff_member("super.theo@desk.example", SUPERVISORS_GROUP)

    with time_machine.travel(change.effective_at + timedelta(minutes=1), tick=False):
        assert email_changes_apply_due() == 1
        assert User.objects.get(pk=account.pk).on_security_hold
        for staff in (supervisor, second_supervisor):
            refused = lift(Desk(staff, capture), account, "Customer called")
            assert refused.status_code == 400, staff
            assert User.objects.get(pk=account.pk).on_security_hold
        done = lift(Desk(third, capture), account, "Owner confirmed by video call")
        assert done.status_code == 302
        assert not User.objects.get(pk=account.pk).on_security_hold
