"""The supervisor who approves the change they started.

A supervisor works a case as an agent and starts a change of its login email to an
address their accomplice controls; the accomplice types the code. Asking for the approval
themselves would be refused, so they give the case back; a colleague takes it, finds the
change proven and, doing their job, sends it for approval. The supervisor then approves
"someone else's" request: the one who chose the address is the one who approves it.
"""

from __future__ import annotations

import pytest

from accounts.models import User
from notifications.models import Notification
from support.models import CaseApproval, EmailChange
from tests.attacks.helpers import CODE_IN_EMAIL, CODE_IN_SMS, Desk, last_code, open_request
from tests.support.conftest import ACCOUNT_EMAIL, ACCOUNT_PHONE

pytestmark = pytest.mark.django_db


def test_the_supervisor_who_started_an_email_change_cannot_approve_it(
    account, agent, supervisor, second_supervisor, capture, sms_outbox, mailoutbox
):
    """The approval asked for by a colleague is refused to the supervisor who started the
    change, in words, and the change keeps waiting; a second supervisor may approve it."""
    requester = open_request(
        capture=capture,
        contact_email="other.inbox@example.net",
        contact_phone=ACCOUNT_PHONE,
        emails_tried=ACCOUNT_EMAIL,
    )
    boss = Desk(supervisor, capture)
    case_id = boss.take_next()
    boss.act(case_id, "send_phone_code", requester=case_id)
    code = last_code(sms_outbox, to=ACCOUNT_PHONE, pattern=CODE_IN_SMS)
    assert requester.verify("phone", code).status_code == 302
    boss.act(case_id, "start_email_change", requester=case_id, new_email="accomplice@example.net")
    new_code = last_code(mailoutbox, to=["accomplice@example.net"], pattern=CODE_IN_EMAIL)
    assert requester.verify("new_email", new_code).status_code == 302
    boss.act(case_id, "release", reason="Out of time, please finish")

    colleague = Desk(agent, capture)
    assert colleague.take_next() == case_id
    change = EmailChange.objects.get()
    colleague.act(case_id, "request_email_change_approval", email_change=change.pk, note="Proven")
    approval = CaseApproval.objects.get()
    assert approval.requested_by == agent and change.requested_by == supervisor

    refused = boss.decide(approval.pk, "approve").content.decode()
    assert "You started this email change yourself: another supervisor decides." in refused
    approval.refresh_from_db()
    change.refresh_from_db()
    assert approval.decided_at is None
    assert change.status == EmailChange.Status.AWAITING_APPROVAL and change.effective_at is None
    assert not Notification.objects.filter(template_key="support/email_change_scheduled").exists()

    Desk(second_supervisor, capture).decide(approval.pk, "approve")
    change.refresh_from_db()
    assert change.status == EmailChange.Status.WAITING_PERIOD
    assert User.objects.get(pk=account.pk).email == ACCOUNT_EMAIL, "only after the wait"
