"""A login-email change through support: proofs, an approval bound to the change, the
waiting period, the change itself, and the owner's cancel."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import SecurityEvent, User
from support.models import (
    CaseApproval,
    CaseEvent,
    CasePriority,
    CaseProof,
    CaseStatus,
    EmailChange,
    RecoveryCase,
)
from support.services import actions
from support.services.cases import case_open, case_proof_verify
from support.services.queue import case_claim_next
from tests.support.conftest import (
    ACCOUNT_EMAIL,
    ACCOUNT_PHONE,
    PROOF_CODE_EMAIL,
    PROOF_CODE_SMS,
    first_group,
)

if TYPE_CHECKING:
    from tests.factories import Capture

pytestmark = pytest.mark.django_db

NEW_EMAIL = "satoshi.moved@example.net"
CANCEL_LINK = re.compile(r"/recover/cancel-email-change/([A-Za-z0-9_-]{40,})/")


def change_awaiting_approval(
    agent: User, capture: Capture, mailoutbox: list, sms_outbox: list
) -> tuple[RecoveryCase, EmailChange, CaseApproval]:
    """A case `agent` took, whose requester proved the phone on file and the new address,
    and the agent's request for a supervisor's approval of the change."""
    with capture():
        opened = case_open(
            contact_email="reach.me@example.org",
            contact_phone=ACCOUNT_PHONE,
            emails_tried=[ACCOUNT_EMAIL],
            description="My mail provider closed my old address.",
        )
    case = RecoveryCase.objects.get(pk=opened.case.pk)
    assert case_claim_next(agent=agent) == case
    with capture():
        actions.case_send_proof_code(case_id=case.pk, agent=agent, kind=CaseProof.Kind.PHONE)
    code = first_group(PROOF_CODE_SMS, sms_outbox[-1].body)
    assert case_proof_verify(case=case, kind=CaseProof.Kind.PHONE, code=code).value == "ok"
    with capture():
        change = actions.case_email_change_start(case_id=case.pk, agent=agent, new_email=NEW_EMAIL)
    new_code = first_group(PROOF_CODE_EMAIL, mailoutbox[-1].body)
    assert mailoutbox[-1].to == [NEW_EMAIL]
    assert actions.case_new_email_verify(case=case, code=new_code).value == "ok"
    approval = actions.case_approval_request(
        case_id=case.pk,
        agent=agent,
        action=CaseApproval.Action.CHANGE_EMAIL,
        email_change=change.pk,
    )
    return case, change, approval


@pytest.fixture
def scheduled(account, agent, supervisor, capture, mailoutbox, sms_outbox) -> EmailChange:
    """The requester proved the phone on file and the new address; a supervisor approved."""
    _case, change, approval = change_awaiting_approval(agent, capture, mailoutbox, sms_outbox)
    mailoutbox.clear()
    sms_outbox.clear()
    with capture():
        actions.case_approval_decide(approval_id=approval.pk, supervisor=supervisor, approve=True)
    change.refresh_from_db()
    assert change.status == EmailChange.Status.WAITING_PERIOD
    return change


def test_without_an_account_proof_the_change_cannot_go_to_a_supervisor(
    account, agent, capture, mailoutbox
):
    """Without an account proof the change cannot go to a supervisor; the refusal names the
    proofs that would do."""
    with capture():
        opened = case_open(contact_email="x@example.org", emails_tried=[ACCOUNT_EMAIL])
    case = RecoveryCase.objects.get(pk=opened.case.pk)
    case_claim_next(agent=agent)
    with capture():
        change = actions.case_email_change_start(case_id=case.pk, agent=agent, new_email=NEW_EMAIL)
    code = first_group(PROOF_CODE_EMAIL, mailoutbox[-1].body)
    assert actions.case_new_email_verify(case=case, code=code).value == "ok"
    with pytest.raises(actions.CaseActionError, match="Still needed: one of: a code sent to the"):
        actions.case_approval_request(
            case_id=case.pk,
            agent=agent,
            action=CaseApproval.Action.CHANGE_EMAIL,
            email_change=change.pk,
        )


@pytest.mark.parametrize("address", ["", "   ", "not-an-address", "a@b@c.de"])
def test_an_empty_or_malformed_address_is_refused_and_nothing_is_sent(
    account, agent, capture, mailoutbox, address
):
    """The service itself refuses what is not an address: no change, no code."""
    with capture():
        opened = case_open(contact_email="x@example.org", emails_tried=[ACCOUNT_EMAIL])
    case_claim_next(agent=agent)
    mailoutbox.clear()
    with pytest.raises(actions.CaseActionError, match=r"Enter a valid new email address\."):
        actions.case_email_change_start(case_id=opened.case.pk, agent=agent, new_email=address)
    assert not EmailChange.objects.exists() and mailoutbox == []


def test_after_the_wait_the_change_applies_and_the_account_is_on_hold(scheduled, account):
    """The owner did not object: after the waiting period the new address signs in and the
    account is on the email-change hold."""
    with time_machine.travel(scheduled.effective_at + timedelta(minutes=1)):
        assert actions.email_changes_apply_due() == 1
        user = User.objects.get(pk=account.pk)
        assert user.email == NEW_EMAIL
        assert user.security_hold_until is not None
        assert user.security_hold_until >= timezone.now() + timedelta(hours=47)


def test_the_owners_cancel_reopens_the_case_at_high_priority_with_events_and_a_hold(
    scheduled, account, mailoutbox, sms_outbox
):
    """The link in the notice to the old address stops the change; the case is back in the
    queue at high priority, the timeline and the audit record it, the account is on hold,
    and the page says so."""
    case = scheduled.case
    case.refresh_from_db()
    assert case.status == CaseStatus.RESOLVED
    notice = next(m for m in mailoutbox if m.to == [ACCOUNT_EMAIL])
    token = first_group(CANCEL_LINK, notice.body)
    assert any(CANCEL_LINK.search(m.body) for m in sms_outbox if m.to == ACCOUNT_PHONE)

    owner = Client()
    assert owner.get(f"/recover/cancel-email-change/{token}/").status_code == 302
    done = owner.post(reverse("recover_email_change_cancel"))

    assert done.status_code == 200
    html = done.content.decode()
    assert "Your request is back with our support team" in html
    assert "on hold until" in html
    scheduled.refresh_from_db()
    assert scheduled.status == EmailChange.Status.CANCELLED
    case.refresh_from_db()
    assert case.status == CaseStatus.WAITING and case.priority == CasePriority.HIGH
    assert case.resolution == "" and case.closed_at is None
    assert case.events.filter(type=CaseEvent.Type.REOPENED).count() == 1
    assert scheduled.requester.events.filter(type=CaseEvent.Type.EMAIL_CHANGE_CANCELLED).exists()
    event = SecurityEvent.objects.get(account_id=account.pk, type="email_change_cancelled")
    assert event.details["case"] == case.reference
    user = User.objects.get(pk=account.pk)
    assert user.email == ACCOUNT_EMAIL
    assert user.security_hold_until is not None
    assert user.security_hold_until >= timezone.now() + timedelta(hours=47)
    assert actions.email_changes_apply_due() == 0
    assert owner.post(reverse("recover_email_change_cancel")).status_code == 404


def test_support_cannot_start_or_approve_a_change_during_a_hold(
    account, agent, supervisor, capture, mailoutbox, sms_outbox
):
    """An account on a security hold keeps its login email through support too: starting a
    change is refused with the hold's end, and so is approving one already proven; a change
    approved before a hold waits for its end."""
    from accounts.services.holds import security_hold_extend

    case, change, approval = change_awaiting_approval(agent, capture, mailoutbox, sms_outbox)

    security_hold_extend(user=account, hours=48)
    with pytest.raises(actions.CaseActionError, match="on hold until"):
        actions.case_approval_decide(approval_id=approval.pk, supervisor=supervisor, approve=True)
    change.refresh_from_db()
    assert change.status == EmailChange.Status.AWAITING_APPROVAL

    assert case_claim_next(agent=supervisor) == case
    with pytest.raises(actions.CaseActionError, match="on hold until"):
        actions.case_email_change_start(
            case_id=case.pk, agent=supervisor, new_email="another@example.net"
        )
    assert EmailChange.objects.count() == 1


def test_a_change_due_during_a_hold_waits_for_its_end(scheduled, account):
    """The waiting period ended while the account is on hold: the change applies only once
    the hold is over."""
    User.objects.filter(pk=account.pk).update(
        security_hold_until=scheduled.effective_at + timedelta(hours=5)
    )
    with time_machine.travel(scheduled.effective_at + timedelta(minutes=1)):
        assert actions.email_changes_apply_due() == 0
        assert User.objects.get(pk=account.pk).email == ACCOUNT_EMAIL
    with time_machine.travel(scheduled.effective_at + timedelta(hours=6)):
        assert actions.email_changes_apply_due() == 1
        assert User.objects.get(pk=account.pk).email == NEW_EMAIL


def test_the_cancel_page_names_the_holds_end_with_its_time_zone(scheduled, mailoutbox):
    """The stop page's hold end is read anywhere: it names its zone (UTC) and how long from
    now, in the owner's language, as every other hold end the customer sees does."""
    notice = next(m for m in mailoutbox if m.to == [ACCOUNT_EMAIL])
    token = first_group(CANCEL_LINK, notice.body)
    owner = Client(HTTP_ACCEPT_LANGUAGE="de")
    assert owner.get(f"/recover/cancel-email-change/{token}/").status_code == 302

    html = owner.post(reverse("recover_email_change_cancel")).content.decode()

    assert "Sicherheitseinstellungen Ihres Kontos bis" in html
    assert " UTC (in 1\xa0Tag, 23\xa0Stunden)" in html
