"""The lone supervisor.

A supervisor who works a case themselves and wants to push a four-eyes action through
alone: they hold the case, can attest documents and start a login-email change, and can
decide approvals. Nobody else takes part.
"""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from support.models import CaseApproval, EmailChange
from tests.attacks.helpers import CODE_IN_EMAIL, Desk, last_code, open_request, phone_proven
from tests.support.conftest import ACCOUNT_EMAIL, ACCOUNT_PHONE

pytestmark = pytest.mark.django_db


def test_a_supervisor_who_asks_for_an_approval_cannot_give_it(
    account, supervisor, capture, sms_outbox, mailoutbox
):
    """The supervisor asks for approval of an email change they prepared; the approvals
    page marks it as their own request, their "approve" is refused in words, and the
    database refuses the decision written around the service."""
    requester = open_request(
        capture=capture,
        contact_email="other.inbox@example.net",
        contact_phone=ACCOUNT_PHONE,
        emails_tried=ACCOUNT_EMAIL,
    )
    boss = Desk(supervisor, capture)
    case_id = phone_proven(boss, requester, sms_outbox=sms_outbox)
    boss.act(case_id, "start_email_change", requester=case_id, new_email="boss.pick@example.net")
    new_code = last_code(mailoutbox, to=["boss.pick@example.net"], pattern=CODE_IN_EMAIL)
    assert requester.verify("new_email", new_code).status_code == 302
    change = EmailChange.objects.get()
    boss.act(case_id, "request_email_change_approval", email_change=change.pk, note="Mine")
    approval = CaseApproval.objects.get()
    assert approval.requested_by == supervisor and approval.email_change == change

    page = boss.client.get("/admin/support/recoverycase/approvals/").content.decode()
    assert "your own request" in page
    refused = boss.decide(approval.pk, "approve").content.decode()
    assert "You cannot approve your own request." in refused
    with pytest.raises(IntegrityError), transaction.atomic():
        CaseApproval.objects.filter(pk=approval.pk).update(
            decided_by=supervisor, decided_at=timezone.now(), approved=True
        )

    approval.refresh_from_db()
    change.refresh_from_db()
    assert approval.decided_at is None
    assert change.status == EmailChange.Status.AWAITING_APPROVAL and change.effective_at is None
    assert User.objects.get(pk=account.pk).email == ACCOUNT_EMAIL
