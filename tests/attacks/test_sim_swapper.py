"""The SIM swapper.

They moved the victim's phone number onto their own SIM, so every code texted to the phone
on file reaches them; they have an inbox of their own. They do not hold the victim's email
inbox, password, backup codes or authenticator. They open a request and talk to an agent.
"""

from __future__ import annotations

import pytest

from accounts.models import BackupCode, SecurityEvent, User
from support.models import CaseApproval, EmailChange, RecoveryLink
from tests.attacks.helpers import CODE_IN_EMAIL, CODE_IN_SMS, Desk, last_code, open_request
from tests.support.conftest import ACCOUNT_EMAIL, ACCOUNT_PHONE

pytestmark = pytest.mark.django_db

ATTACKER_INBOX = "fresh.start@example.net"
STILL_NEEDED = (
    "Not allowed yet. Still needed: one of: a code sent to the email on file; a backup code; "
    "the current password; the authenticator app or a passkey."
)


def test_a_phone_code_alone_neither_re_authenticates_nor_changes_the_login_email(
    account, agent, capture, sms_outbox, mailoutbox
):
    """With the phone on file proven (by the swapped SIM) the agent's page says what is
    still missing, re-authentication is refused, and the agent alone cannot change the
    login email to the attacker's proven address: that waits for a supervisor's approval of
    that very change, and nothing about the account changes."""
    attacker = open_request(
        capture=capture,
        contact_email=ATTACKER_INBOX,
        contact_phone=ACCOUNT_PHONE,
        emails_tried=ACCOUNT_EMAIL,
        description="Lost my phone with the app. New SIM, same number.",
    )
    desk = Desk(agent, capture)
    case_id = desk.take_next()
    request = attacker.request
    assert case_id == request.pk

    # The agent sends a code to the phone on file for this requester; the SIM gets it.
    desk.act(case_id, "send_phone_code", requester=request.pk)
    code = last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS)
    assert attacker.verify("phone", code).status_code == 302
    page = desk.case_page(case_id)
    assert 'Tell the login email: <span class="ok">allowed' in page
    assert STILL_NEEDED.removeprefix("Not allowed yet. Still needed: ").rstrip(".") in page

    # Re-authentication: refused, in words.
    answer = desk.act(case_id, "reauthenticate", requester=request.pk)
    assert STILL_NEEDED in answer

    # A code to the email on file goes to the victim's inbox; guessing it fails.
    desk.act(case_id, "send_email_code", requester=request.pk)
    assert last_code(mailoutbox, to=[ACCOUNT_EMAIL], pattern=CODE_IN_EMAIL)
    assert attacker.verify("email", "123456").status_code == 400
    assert STILL_NEEDED in desk.act(case_id, "reauthenticate", requester=request.pk)

    # The login email: the attacker proves their own address, but the agent cannot schedule
    # the change; all they can do is ask a supervisor to approve that one change.
    desk.act(case_id, "start_email_change", requester=request.pk, new_email=ATTACKER_INBOX)
    new_code = last_code(mailoutbox, to=[ATTACKER_INBOX], pattern=CODE_IN_EMAIL)
    assert attacker.verify("new_email", new_code).status_code == 302
    change = EmailChange.objects.get()
    assert change.status == EmailChange.Status.AWAITING_APPROVAL
    desk.act(case_id, "request_email_change_approval", email_change=change.pk, note="SIM")
    approval = CaseApproval.objects.get()
    assert approval.email_change == change and approval.decided_at is None
    # The agent cannot decide it: only a supervisor who did not ask.
    assert desk.decide(approval.pk, "approve").status_code == 403
    approval.refresh_from_db()
    assert approval.decided_at is None

    user = User.objects.get(pk=account.pk)
    assert user.email == ACCOUNT_EMAIL and user.security_hold_until is None
    assert user.reenrolment_required is False
    assert BackupCode.objects.filter(device__user=user).count() == 10
    change.refresh_from_db()
    assert change.status == EmailChange.Status.AWAITING_APPROVAL and change.effective_at is None
    assert not RecoveryLink.objects.exists()
    assert not SecurityEvent.objects.filter(
        account_id=user.pk, type__in=["account_recovered", "email_change_scheduled"]
    ).exists()
