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
from tests.attacks.helpers import Desk, email_change_proven
from tests.support.conftest import ACCOUNT_EMAIL

pytestmark = pytest.mark.django_db


def test_the_supervisor_who_started_an_email_change_cannot_approve_it(
    account, agent, supervisor, second_supervisor, capture, sms_outbox, mailoutbox
):
    """The approval asked for by a colleague is refused to the supervisor who started the
    change, in words, and the change keeps waiting; a second supervisor may approve it."""
    boss = Desk(supervisor, capture)
    case_id = email_change_proven(
        boss, new_email="accomplice@example.net", sms_outbox=sms_outbox, mailoutbox=mailoutbox
    )
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
