"""Approval of one change applied to another.

The attacker works on a case next to a genuine change of login email: change A to an
address the requester proved, approved by a supervisor; and change B, started later, to an
address nobody proved. They hold nothing but the hope that the approval of A carries B.
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from accounts.contacts import mask_email
from accounts.models import User
from notifications.models import Notification
from support.models import CaseApproval, EmailChange
from tests.attacks.helpers import CODE_IN_EMAIL, Desk, last_code, open_request, phone_proven
from tests.support.conftest import ACCOUNT_EMAIL, ACCOUNT_PHONE

pytestmark = pytest.mark.django_db

PROVEN = "proven.address@example.net"
UNPROVEN = "never.proven@example.net"


def test_approving_change_a_never_schedules_change_b(
    account, agent, supervisor, capture, sms_outbox, mailoutbox
):
    """Two changes started on one case, the second one after the first was proven: the
    supervisor's approval names change A and schedules A alone; B stays unproven, without a
    date, a cancel link or a notice. B cannot be sent for approval, and no change-email
    approval can exist without naming its change."""
    requester = open_request(
        capture=capture,
        contact_email="reach.me@example.net",
        contact_phone=ACCOUNT_PHONE,
        emails_tried=ACCOUNT_EMAIL,
    )
    desk = Desk(agent, capture)
    case_id = phone_proven(desk, requester, sms_outbox=sms_outbox)

    desk.act(case_id, "start_email_change", requester=case_id, new_email=PROVEN)
    code_a = last_code(mailoutbox, to=[PROVEN], pattern=CODE_IN_EMAIL)
    assert requester.verify("new_email", code_a).status_code == 302
    desk.act(case_id, "start_email_change", requester=case_id, new_email=UNPROVEN)
    change_a = EmailChange.objects.get(new_email=PROVEN)
    change_b = EmailChange.objects.get(new_email=UNPROVEN)
    assert change_a.status == EmailChange.Status.AWAITING_APPROVAL
    assert change_b.status == EmailChange.Status.PROVING

    refused = desk.act(case_id, "request_email_change_approval", email_change=change_b.pk)
    assert "The new email address must be proven first." in refused
    with pytest.raises(IntegrityError), transaction.atomic():
        CaseApproval.objects.create(
            case_id=case_id, action=CaseApproval.Action.CHANGE_EMAIL, requested_by=agent
        )

    desk.act(case_id, "request_email_change_approval", email_change=change_a.pk, note="A")
    approval = CaseApproval.objects.get()
    assert approval.email_change == change_a
    mailoutbox.clear()
    sms_outbox.clear()
    Desk(supervisor, capture).decide(approval.pk, "approve")

    change_a.refresh_from_db()
    change_b.refresh_from_db()
    assert change_a.status == EmailChange.Status.WAITING_PERIOD
    assert change_a.effective_at is not None and change_a.cancel_token_hash
    assert change_b.status == EmailChange.Status.CANCELLED, "it ends with the case"
    assert change_b.effective_at is None and change_b.cancel_token_hash == ""
    scheduled = Notification.objects.filter(template_key="support/email_change_scheduled")
    assert {n.recipient for n in scheduled} == {ACCOUNT_EMAIL, ACCOUNT_PHONE}
    notices = [m.body for m in [*mailoutbox, *sms_outbox]]
    assert len(notices) == 2
    assert all(mask_email(PROVEN) in body for body in notices)
    assert not any(mask_email(UNPROVEN) in body for body in notices)
    assert User.objects.get(pk=account.pk).email == ACCOUNT_EMAIL, "only after the wait"
