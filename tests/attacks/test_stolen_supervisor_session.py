"""The thief of a supervisor's session.

Someone who holds a signed-in supervisor's admin session (a cookie lifted from a shared
computer or a browser left open) but not the supervisor's phone. With it they try the
supervisor's sensitive steps: approve a four-eyes request, lift a security hold, move a
case to an accomplice. Each step asks for a fresh code from the supervisor's own
authenticator; a code they saw over the shoulder works once and never again.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import SecurityEvent, User
from accounts.services.holds import security_hold_extend
from support.models import CaseApproval, CaseEvent, CaseStatus, RecoveryCase
from support.services import actions
from support.services.cases import case_open
from support.services.queue import case_claim_next
from tests.factories import UserFactory
from tests.support.conftest import admin_client, fresh_code, png_upload

pytestmark = pytest.mark.django_db

APPROVALS = "admin:support_approvals"


def pending_document_approval(agent, *, email: str) -> CaseApproval:
    case = case_open(contact_email=email, files=[png_upload()]).case
    RecoveryCase.objects.filter(pk=case.pk).update(status=CaseStatus.WAITING)
    claimed = case_claim_next(agent=agent)
    assert claimed is not None and claimed.pk == case.pk
    actions.case_attest_document(case_id=case.pk, agent=agent, note="Passport matches")
    return actions.case_approval_request(
        case_id=case.pk, agent=agent, action=CaseApproval.Action.DOCUMENT
    )


def failures(supervisor: User) -> list[tuple[str, str]]:
    return [
        (event.details["action"], event.details["reason"])
        for event in SecurityEvent.objects.filter(
            account_id=supervisor.pk, type=SecurityEvent.Type.STAFF_RECHECK_FAILED
        ).order_by("seq")
    ]


def test_a_stolen_session_without_the_authenticator_decides_no_approval(agent, supervisor):
    """The thief approves without a code and with a guessed one: 400, a message that asks
    for the current code, the approval still pending, nothing on the case's timeline, and
    each failure recorded on the supervisor's account."""
    approval = pending_document_approval(agent, email="victim@example.org")
    thief = admin_client(supervisor)

    for code in ("", "123456"):
        # The thief posts the confirmation step itself: the code is what stops them.
        response = thief.post(
            reverse(APPROVALS),
            {"action": "approve", "approval_id": approval.pk, "otp_code": code, "confirmed": "on"},
        )
        assert response.status_code == 400
        page = response.content.decode()
        assert (
            "Enter the current code from your authenticator app" in page
            or "That code is not right, or it was already used" in page
        )

    approval.refresh_from_db()
    assert approval.decided_at is None
    assert not approval.case.events.filter(type=CaseEvent.Type.APPROVAL_DECIDED).exists()
    assert failures(supervisor) == [
        ("approval_decide", "missing"),
        ("approval_decide", "wrong"),
    ]


def test_the_supervisors_fresh_code_decides_and_a_replayed_one_is_refused(agent, supervisor):
    """The supervisor approves with the code on their phone: decided. The thief, who saw
    that code, replays it on a second approval at once: refused, still pending, audited."""
    first = pending_document_approval(agent, email="first@example.org")
    second = pending_document_approval(agent, email="second@example.org")
    client = admin_client(supervisor)
    code = fresh_code(supervisor)

    approved = client.post(
        reverse(APPROVALS),
        {"action": "approve", "approval_id": first.pk, "otp_code": code, "confirmed": "on"},
    )
    replayed = client.post(
        reverse(APPROVALS), {"action": "deny", "approval_id": second.pk, "otp_code": code}
    )

    assert approved.status_code == 302
    first.refresh_from_db()
    assert (first.approved, first.decided_by) == (True, supervisor)
    assert replayed.status_code == 400
    assert "That code is not right, or it was already used" in replayed.content.decode()
    second.refresh_from_db()
    assert second.decided_at is None
    assert failures(supervisor) == [("approval_decide", "wrong")]


def test_the_sign_in_code_does_not_confirm_a_step(agent, supervisor):
    """The code typed at sign-in (which a thief watching the sign-in saw) is spent: it does
    not confirm a decision in the same half minute."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from tests.factories import totp_code

    approval = pending_document_approval(agent, email="victim@example.org")
    client = admin_client(supervisor)
    device = TOTPDevice.objects.get(user=supervisor)
    sign_in_code = totp_code(device, at=device.t0 + device.last_t * device.step + 1)

    response = client.post(
        reverse(APPROVALS),
        {
            "action": "approve",
            "approval_id": approval.pk,
            "otp_code": sign_in_code,
            "confirmed": "on",
        },
    )

    assert response.status_code == 400
    approval.refresh_from_db()
    assert approval.decided_at is None


def test_a_stolen_session_lifts_no_hold_and_reassigns_no_case(agent, other_agent, supervisor):
    """Without a code, the thief's hold lift and reassignment are refused: the hold stays,
    the case stays with its holder, and both failures are in the supervisor's audit; then
    the authenticator's throttle refuses even a right code for a while."""
    customer = UserFactory.create()
    security_hold_extend(user=customer, hours=48)
    case = case_open(contact_email="held@example.org").case
    RecoveryCase.objects.filter(pk=case.pk).update(status=CaseStatus.WAITING)
    claimed = case_claim_next(agent=agent)
    assert claimed is not None and claimed.pk == case.pk
    thief = admin_client(supervisor)

    lift = thief.post(
        reverse("admin:accounts_user_lift_hold", args=[customer.pk]),
        {"reason": "Customer called, all fine"},
    )
    reassign = thief.post(
        reverse("admin:support_case_work", args=[case.pk]),
        {"action": "reassign", "assignee": "", "otp_code": "000000"},
    )

    assert lift.status_code == 400
    assert "Enter the current code from your authenticator app" in lift.content.decode()
    assert User.objects.get(pk=customer.pk).on_security_hold
    assert not SecurityEvent.objects.filter(
        account_id=customer.pk, type=SecurityEvent.Type.SECURITY_HOLD_LIFTED
    ).exists()
    assert reassign.status_code == 400
    case.refresh_from_db()
    assert (case.status, case.claimed_by) == (CaseStatus.CLAIMED, agent)
    assert not case.events.filter(type=CaseEvent.Type.REASSIGNED).exists()
    assert failures(supervisor) == [("security_hold_lift", "missing"), ("case_reassign", "wrong")]

    # Right after two failures django-otp's throttle answers before it looks at a code.
    throttled = thief.post(
        reverse("admin:accounts_user_lift_hold", args=[customer.pk]),
        {"reason": "Customer called, all fine", "otp_code": fresh_code(supervisor)},
    )
    assert throttled.status_code == 400
    assert "Too many wrong codes" in throttled.content.decode()
    assert User.objects.get(pk=customer.pk).on_security_hold
    assert failures(supervisor)[-1] == ("security_hold_lift", "throttled")


def test_the_refusal_speaks_the_supervisors_language(agent, supervisor):
    """A German supervisor reads why the step was refused in German."""
    approval = pending_document_approval(agent, email="victim@example.org")
    client = admin_client(supervisor)

    response = client.post(
        reverse(APPROVALS),
        {"action": "deny", "approval_id": approval.pk, "otp_code": ""},
        HTTP_ACCEPT_LANGUAGE="de",
    )

    assert response.status_code == 400
    assert "Geben Sie zur Bestätigung den aktuellen Code" in response.content.decode()
