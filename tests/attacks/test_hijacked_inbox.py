"""The hijacked inbox.

They broke into the victim's email account, so every code mailed to the email on file
reaches them, and they have a second address of their own. They do not hold the victim's
phone, password, backup codes or authenticator. They open a request and talk to an agent.
"""

from __future__ import annotations

import pytest

from accounts.models import SecurityEvent, User
from support.models import CaseApproval, EmailChange, RecoveryLink
from tests.attacks.helpers import CODE_IN_EMAIL, Desk, last_code, open_request
from tests.support.conftest import ACCOUNT_EMAIL, ACCOUNT_PHONE

pytestmark = pytest.mark.django_db

ATTACKER_ADDRESS = "backup.mailbox@example.net"
NEEDS_AN_ACCOUNT_PROOF = (
    "one of: a code sent to the phone on file; a backup code; the current password; "
    "the authenticator app or a passkey"
)


def test_an_email_code_alone_neither_re_authenticates_nor_changes_the_login_email(
    account, agent, supervisor, capture, sms_outbox, mailoutbox
):
    """With the email on file proven (by the hijacked inbox) re-authentication is refused
    and a login-email change can neither be sent for approval nor approved: an email code
    is not among the account proofs the change needs. Each refusal says what is missing."""
    attacker = open_request(
        capture=capture,
        contact_email=ACCOUNT_EMAIL,
        description="My phone was stolen together with the authenticator app.",
    )
    desk = Desk(agent, capture)
    case_id = desk.take_next()
    request = attacker.request
    assert case_id == request.pk

    desk.act(case_id, "send_email_code", requester=request.pk)
    code = last_code(mailoutbox, to=[ACCOUNT_EMAIL], pattern=CODE_IN_EMAIL)
    assert attacker.verify("email", code).status_code == 302
    assert sms_outbox == []

    answer = desk.act(case_id, "reauthenticate", requester=request.pk)
    assert f"Not allowed yet. Still needed: {NEEDS_AN_ACCOUNT_PROOF}." in answer
    answer = desk.act(case_id, "tell_login_email", requester=request.pk)
    assert "Not allowed yet. Still needed: a code sent to the phone on file." in answer

    desk.act(case_id, "start_email_change", requester=request.pk, new_email=ATTACKER_ADDRESS)
    new_code = last_code(mailoutbox, to=[ATTACKER_ADDRESS], pattern=CODE_IN_EMAIL)
    assert attacker.verify("new_email", new_code).status_code == 302
    change = EmailChange.objects.get()
    assert change.status == EmailChange.Status.AWAITING_APPROVAL
    assert NEEDS_AN_ACCOUNT_PROOF in desk.case_page(case_id)

    answer = desk.act(
        case_id, "request_email_change_approval", email_change=change.pk, note="Inbox proven"
    )
    assert f"Not allowed yet. Still needed: {NEEDS_AN_ACCOUNT_PROOF}." in answer
    assert not CaseApproval.objects.exists()

    # An approval that reached the supervisor anyway (say, asked before the proofs ran out)
    # is refused when decided: the supervisor's page says what is missing.
    approval = CaseApproval.objects.create(
        case=request,
        action=CaseApproval.Action.CHANGE_EMAIL,
        email_change=change,
        requested_by=agent,
    )
    decided = Desk(supervisor, capture).decide(approval.pk, "approve")
    assert f"Not allowed yet. Still needed: {NEEDS_AN_ACCOUNT_PROOF}." in decided.content.decode()
    approval.refresh_from_db()
    change.refresh_from_db()
    assert approval.decided_at is None
    assert change.status == EmailChange.Status.AWAITING_APPROVAL and change.effective_at is None

    user = User.objects.get(pk=account.pk)
    assert user.email == ACCOUNT_EMAIL and user.phone == ACCOUNT_PHONE
    assert user.security_hold_until is None and user.reenrolment_required is False
    assert not RecoveryLink.objects.exists()
    assert not SecurityEvent.objects.filter(
        account_id=user.pk, type__in=["account_recovered", "email_change_scheduled"]
    ).exists()
    assert not [m for m in sms_outbox if m.to == ACCOUNT_PHONE]
