"""The lone agent.

A support agent (or a supervisor working the queue) who wants to hand an account over on
their own: a requester proved one thing (the phone on file, say with a swapped SIM) and
uploaded a "passport"; the staff member holds the case and can attest documents. Nobody
else takes part.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import User
from support.models import CaseApproval, CaseProof, CaseStatus, RecoveryLink
from support.services import actions
from tests.attacks.helpers import Desk, passport_request_phone_proven, section

pytestmark = pytest.mark.django_db

STILL_NEEDED = (
    "Not allowed yet. Still needed: one of: a code sent to the email on file; a backup code; "
    "the current password; the authenticator app or a passkey."
)


def test_one_proof_and_the_agents_own_attestation_do_not_re_authenticate(
    account, agent, capture, sms_outbox
):
    """The agent attests the documents; re-authentication is still refused, in words, and
    the page shows the attestation waiting for a supervisor. The agent cannot decide that
    approval: the approvals page is the supervisors'."""
    desk = Desk(agent, capture)
    case_id = passport_request_phone_proven(desk, sms_outbox=sms_outbox)
    desk.act(case_id, "attest_document", requester=case_id, note="Looks like him")
    proof = CaseProof.objects.get(kind=CaseProof.Kind.DOCUMENT)
    assert proof.attested_by == agent and proof.case_id == case_id

    page = desk.case_page(case_id)
    requester_part = section(page, f"requester-{proof.case.reference}")
    assert "waiting for a supervisor's approval" in requester_part
    assert STILL_NEEDED.removeprefix("Not allowed yet. Still needed: ").rstrip(".") in (
        requester_part
    )
    assert STILL_NEEDED in desk.act(case_id, "reauthenticate", requester=case_id)

    desk.act(case_id, "request_document_approval", requester=case_id, note="Trust me")
    approval = CaseApproval.objects.get()
    assert approval.proof == proof
    assert desk.decide(approval.pk, "approve").status_code == 403
    approval.refresh_from_db()
    assert approval.decided_at is None

    user = User.objects.get(pk=account.pk)
    assert user.reenrolment_required is False and user.security_hold_until is None
    assert not RecoveryLink.objects.exists()


def test_a_supervisor_cannot_approve_their_own_attestation(
    account, agent, supervisor, second_supervisor, capture, sms_outbox
):
    """A supervisor who attested the documents cannot approve them, even when another
    agent asked; an approval row written around the service does not count either. Only a
    second supervisor's approval lets the case go on."""
    boss = Desk(supervisor, capture)
    case_id = passport_request_phone_proven(boss, sms_outbox=sms_outbox)
    boss.act(case_id, "attest_document", requester=case_id, note="Looks like him")
    assert STILL_NEEDED in boss.act(case_id, "reauthenticate", requester=case_id)
    boss.act(case_id, "release", reason="An agent finishes it")

    desk = Desk(agent, capture)
    assert desk.take_next() == case_id
    desk.act(case_id, "request_document_approval", requester=case_id, note="Attested by Sue")
    approval = CaseApproval.objects.get()

    refused = boss.decide(approval.pk, "approve").content.decode()
    assert "You attested this document check yourself: another supervisor decides." in refused
    assert "your own attestation" in refused
    approval.refresh_from_db()
    assert approval.decided_at is None

    # Written around the service, the attester's approval still counts for nothing.
    CaseApproval.objects.filter(pk=approval.pk).update(
        decided_by=supervisor, decided_at=timezone.now(), approved=True
    )
    case = approval.case
    assert not actions.reauthentication_decision(case)
    CaseApproval.objects.filter(pk=approval.pk).update(
        decided_by=None, decided_at=None, approved=None
    )

    Desk(second_supervisor, capture).decide(approval.pk, "approve")
    approval.refresh_from_db()
    assert (approval.approved, approval.decided_by) == (True, second_supervisor)
    case.refresh_from_db()
    assert case.status == CaseStatus.WAITING
    assert actions.reauthentication_decision(case)
