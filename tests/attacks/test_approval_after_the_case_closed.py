"""The agent whose change was turned down by a colleague.

An agent prepared a login-email change and sent it to the supervisors; before anyone
decided, a supervisor who took the escalated case judged the requester an impostor and
rejected the case. The agent (or the customer they talk to) now hopes a second supervisor,
working down the approvals page, approves the change that is still listed there.
"""

from __future__ import annotations

import pytest

from accounts.models import User
from notifications.models import Notification
from support.models import CaseApproval, CaseStatus, EmailChange, RecoveryCase
from support.services.actions import case_approval_decide
from support.services.queue import CaseActionError
from tests.attacks.helpers import Desk, email_change_proven
from tests.support.conftest import ACCOUNT_EMAIL

pytestmark = pytest.mark.django_db


def _change_sent_for_approval(agent, capture, sms_outbox, mailoutbox):
    desk = Desk(agent, capture)
    case_id = email_change_proven(
        desk, new_email="taker@example.net", sms_outbox=sms_outbox, mailoutbox=mailoutbox
    )
    change = EmailChange.objects.get()
    desk.act(case_id, "request_email_change_approval", email_change=change.pk, note="Proven")
    return case_id, change, CaseApproval.objects.get()


def test_an_approval_left_pending_on_a_rejected_case_schedules_nothing(
    account, agent, supervisor, second_supervisor, capture, sms_outbox, mailoutbox
):
    """The case is rejected while its approval waits; the approval leaves the approvals
    page, a supervisor's "approve" is refused in words, the change never starts its wait
    and the rejected case stays rejected, with no "email change scheduled" notice."""
    case_id, change, approval = _change_sent_for_approval(agent, capture, sms_outbox, mailoutbox)
    rejecter = Desk(second_supervisor, capture)
    assert rejecter.take_next() == case_id
    rejecter.act(case_id, "reject", reason="not_verified")
    assert RecoveryCase.objects.get(pk=case_id).status == CaseStatus.REJECTED

    approver = Desk(supervisor, capture)
    page = approver.client.get("/admin/support/recoverycase/approvals/").content.decode()
    assert change.requester.reference not in page
    refused = approver.decide(approval.pk, "approve").content.decode()
    assert "This approval does not exist or was already decided." in refused
    with pytest.raises(CaseActionError, match="This case is closed"):
        case_approval_decide(approval_id=approval.pk, supervisor=supervisor, approve=True)

    approval.refresh_from_db()
    change.refresh_from_db()
    case = RecoveryCase.objects.get(pk=case_id)
    assert approval.approved is not True
    assert change.status != EmailChange.Status.WAITING_PERIOD and change.effective_at is None
    assert case.status == CaseStatus.REJECTED
    assert not Notification.objects.filter(template_key="support/email_change_scheduled").exists()
    assert User.objects.get(pk=account.pk).email == ACCOUNT_EMAIL
