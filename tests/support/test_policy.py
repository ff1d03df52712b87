"""Re-authentication policy, four-eyes approvals, proof codes and the recovery link."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from allauth.usersessions.models import UserSession
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.hashing import HashPurpose, keyed_hash
from accounts.models import BackupCode, BackupCodeDevice, SecurityEvent, User
from accounts.services.tokens import CodeCheck
from notifications.models import Notification
from support.models import (
    CaseApproval,
    CaseEvent,
    CasePriority,
    CaseProof,
    CaseStatus,
    RecoveryCase,
    RecoveryLink,
)
from support.services import actions
from support.services.cases import case_proof_code_send, case_proof_verify
from support.services.queue import CaseActionError, case_claim_next
from tests.factories import PASSWORD, totp_code
from tests.support.conftest import (
    ACCOUNT_EMAIL,
    ACCOUNT_PHONE,
    PROOF_CODE_EMAIL,
    PROOF_CODE_SMS,
    RECOVERY_LINK,
    admin_client,
    customer_client,
    first_group,
    fresh_code,
    inbox_lost_case,
    other_code,
    password_only_client,
    png_upload,
)

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-passphrase-for-2026"
BACKUP_CODE = re.compile(r"<code>((?:[0-9A-HJKMNP-TV-Z]{4}-){3}[0-9A-HJKMNP-TV-Z]{4})</code>")


@pytest.fixture
def case(account, capture) -> RecoveryCase:
    """The customer lost their inbox: new contact address, right email tried, right phone."""
    case = inbox_lost_case(
        capture, description="My old mailbox was closed and my phone with the app was stolen."
    )
    assert case.status == CaseStatus.WAITING and case.matched_user == account
    return case


def prove(case, kind, *, capture, mailoutbox, sms_outbox) -> None:
    """The customer asks for a code on the status page and types in what they received."""
    code = send_code(case, kind, capture=capture, mailoutbox=mailoutbox, sms_outbox=sms_outbox)
    assert case_proof_verify(case=case, kind=kind, code=code) == CodeCheck.OK


def send_code(case, kind, *, capture, mailoutbox, sms_outbox) -> str:
    mailoutbox.clear()
    sms_outbox.clear()
    with capture():
        assert case_proof_code_send(case=case, kind=kind)
    if kind == CaseProof.Kind.PHONE:
        assert [m.to for m in sms_outbox] == [ACCOUNT_PHONE] and mailoutbox == []
        return first_group(PROOF_CODE_SMS, sms_outbox[0].body)
    assert [m.to for m in mailoutbox] == [[ACCOUNT_EMAIL]] and sms_outbox == []
    return first_group(PROOF_CODE_EMAIL, mailoutbox[0].body)


def account_untouched(account: User) -> None:
    fresh = User.objects.get(pk=account.pk)
    assert TOTPDevice.objects.filter(user=account).count() == 1
    assert BackupCode.objects.filter(device__user=account).count() == 10
    assert fresh.reenrolment_required is False
    assert fresh.security_hold_until is None
    assert not RecoveryLink.objects.exists()
    assert not SecurityEvent.objects.filter(account_id=account.pk, type="account_recovered")


def test_one_proof_is_not_enough_to_re_authenticate(
    agent, account, case, capture, mailoutbox, sms_outbox
):
    """With only the phone proven, re-authentication is refused and nothing changes."""
    prove(case, CaseProof.Kind.PHONE, capture=capture, mailoutbox=mailoutbox, sms_outbox=sms_outbox)
    case_claim_next(agent=agent)
    assert not actions.reauthentication_decision(case)

    with pytest.raises(CaseActionError, match=r"Not allowed yet\. Still needed: one of: a code"):
        actions.case_reauthenticate(case_id=case.pk, agent=agent)

    account_untouched(account)
    case.refresh_from_db()
    assert case.status == CaseStatus.CLAIMED and case.claimed_by == agent


def test_two_proofs_re_authenticate_the_account(
    agent, account, case, capture, mailoutbox, sms_outbox
):
    """Phone and email proven: every session ends, TOTP and backup codes are removed, the
    account must re-enrol and is on a 48-hour hold, a single-use link goes to the proven email,
    every contact on file hears of the recovery, and the case is resolved."""
    signed_in = customer_client(account)
    password_only_client(account)
    assert UserSession.objects.filter(user=account).count() == 2
    prove(case, CaseProof.Kind.PHONE, capture=capture, mailoutbox=mailoutbox, sms_outbox=sms_outbox)
    prove(case, CaseProof.Kind.EMAIL, capture=capture, mailoutbox=mailoutbox, sms_outbox=sms_outbox)
    assert set(case.proofs.values_list("kind", flat=True)) == {"phone", "email"}
    case_claim_next(agent=agent)
    assert actions.reauthentication_decision(case)
    mailoutbox.clear()
    sms_outbox.clear()

    with capture():
        actions.case_reauthenticate(case_id=case.pk, agent=agent)

    user = User.objects.get(pk=account.pk)
    assert not UserSession.objects.filter(user=user).exists()
    security_page = signed_in.get(reverse("account_security"))
    assert security_page.status_code == 302
    assert security_page["Location"].startswith(reverse("account_login"))
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not BackupCodeDevice.objects.filter(user=user).exists()
    assert not BackupCode.objects.filter(device__user_id=user.pk).exists()
    assert user.reenrolment_required is True
    expected_hold = timezone.now() + timedelta(hours=48)
    assert user.security_hold_until is not None
    assert abs(user.security_hold_until - expected_hold) < timedelta(minutes=1)

    link_mails = [m for m in mailoutbox if "/recover/reset/" in m.body]
    assert len(link_mails) == 1 and link_mails[0].to == [ACCOUNT_EMAIL]
    token = first_group(RECOVERY_LINK, link_mails[0].body)
    link = RecoveryLink.objects.get(token_hash=keyed_hash(token, purpose=HashPurpose.RECOVERY_LINK))
    assert link.user == user and link.case_id == case.pk and link.used_at is None
    assert abs(link.expires_at - (timezone.now() + timedelta(hours=24))) < timedelta(minutes=1)
    assert not any("/recover/reset/" in m.body for m in sms_outbox), "only the proven email"

    event = SecurityEvent.objects.get(account_id=user.pk, type="account_recovered")
    assert event.actor_id == agent.pk
    assert event.details == {
        "case": case.reference,
        "requester": case.reference,
        "proofs": ["email", "phone"],
        "staff": [agent.pk],
    }
    notices = Notification.objects.filter(security_event=event)
    assert {(n.channel, n.recipient, n.status) for n in notices} == {
        ("email", ACCOUNT_EMAIL, "sent"),
        ("sms", ACCOUNT_PHONE, "sent"),
    }
    assert any(m.to == ACCOUNT_PHONE for m in sms_outbox)
    assert sum(m.to == [ACCOUNT_EMAIL] for m in mailoutbox) == 2, "link + security notice"

    case.refresh_from_db()
    assert case.status == CaseStatus.RESOLVED
    assert case.resolution == RecoveryCase.Resolution.REAUTHENTICATED
    assert case.claimed_by is None and case.closed_at is not None
    done = case.events.get(type=CaseEvent.Type.REAUTHENTICATED)
    assert done.actor == agent and done.details == {"channel": "email"}


@pytest.fixture
def case_with_document(account, capture) -> RecoveryCase:
    """The customer lost their inbox and their app, and uploaded a passport photo."""
    return inbox_lost_case(
        capture,
        description="Inbox closed, phone with the app stolen; new SIM, same number.",
        files=[png_upload()],
    )


def test_one_proof_and_a_document_approved_by_a_second_person_allow_re_authentication(
    agent, supervisor, account, case_with_document, capture, mailoutbox, sms_outbox
):
    """The agent attests the documents and asks; a supervisor approves; the case comes back
    to the agents with high priority and can then be re-authenticated with the phone proof
    and the approved document; the link goes by SMS, the one channel proven, and lives ten
    minutes."""
    case = case_with_document
    prove(case, CaseProof.Kind.PHONE, capture=capture, mailoutbox=mailoutbox, sms_outbox=sms_outbox)
    case_claim_next(agent=agent)
    actions.case_attest_document(case_id=case.pk, agent=agent, note="Passport matches")
    assert not actions.reauthentication_decision(case), "an attestation alone counts nothing"
    approval = actions.case_approval_request(
        case_id=case.pk,
        agent=agent,
        action=CaseApproval.Action.DOCUMENT,
        note="Phone proven, inbox provider closed",
    )
    assert approval.proof == case.proofs.get(kind=CaseProof.Kind.DOCUMENT)
    case.refresh_from_db()
    assert case.status == CaseStatus.ESCALATED and case.claimed_by is None
    with pytest.raises(CaseActionError, match="Only supervisors"):
        actions.case_approval_decide(approval_id=approval.pk, supervisor=agent, approve=True)

    actions.case_approval_decide(approval_id=approval.pk, supervisor=supervisor, approve=True)

    approval.refresh_from_db()
    assert (approval.approved, approval.decided_by) == (True, supervisor)
    case.refresh_from_db()
    assert case.status == CaseStatus.WAITING and case.priority == CasePriority.HIGH
    assert case_claim_next(agent=agent) == case
    assert actions.reauthentication_decision(case)
    sms_outbox.clear()
    with capture():
        actions.case_reauthenticate(case_id=case.pk, agent=agent)

    case.refresh_from_db()
    assert case.resolution == RecoveryCase.Resolution.REAUTHENTICATED
    link_sms = [m for m in sms_outbox if "/recover/reset/" in m.body]
    assert [m.to for m in link_sms] == [ACCOUNT_PHONE]
    assert "within 10 min" in link_sms[0].body
    link = RecoveryLink.objects.get(user=account)
    assert abs(link.expires_at - (timezone.now() + timedelta(minutes=10))) < timedelta(minutes=1)


def test_a_recovery_link_sent_by_sms_expires_after_ten_minutes(
    agent, supervisor, account, case_with_document, capture, mailoutbox, sms_outbox
):
    """The phone is the one channel proven, so the link goes by SMS and, like any secret
    sent by SMS, works for ten minutes only (NIST SP 800-63B-4): at nine minutes it opens
    the reset page, at eleven it is refused as invalid."""
    case = case_with_document
    with time_machine.travel("2026-05-04 09:00:00+00:00", tick=False) as clock:
        prove(
            case,
            CaseProof.Kind.PHONE,
            capture=capture,
            mailoutbox=mailoutbox,
            sms_outbox=sms_outbox,
        )
        case_claim_next(agent=agent)
        actions.case_attest_document(case_id=case.pk, agent=agent, note="Passport matches")
        approval = actions.case_approval_request(
            case_id=case.pk, agent=agent, action=CaseApproval.Action.DOCUMENT
        )
        actions.case_approval_decide(approval_id=approval.pk, supervisor=supervisor, approve=True)
        case_claim_next(agent=agent)
        sms_outbox.clear()
        with capture():
            actions.case_reauthenticate(case_id=case.pk, agent=agent)
        token = next(
            first_group(RECOVERY_LINK, m.body) for m in sms_outbox if m.to == ACCOUNT_PHONE
        )
        assert not any("/recover/reset/" in m.body for m in mailoutbox)

        clock.shift(timedelta(minutes=9))
        assert Client().get(f"/recover/reset/{token}/").status_code == 302
        clock.shift(timedelta(minutes=2))
        late = Client().get(f"/recover/reset/{token}/")
        assert late.status_code == 404
        assert "This link is not valid" in late.content.decode()


def test_four_eyes_the_requester_cannot_approve_their_own_request(
    supervisor, second_supervisor, account, case_with_document, capture, mailoutbox, sms_outbox
):
    """A supervisor who worked the case and asked may not decide (service and database both
    refuse); the approvals page shows it as their own request; another supervisor decides."""
    case = case_with_document
    prove(case, CaseProof.Kind.PHONE, capture=capture, mailoutbox=mailoutbox, sms_outbox=sms_outbox)
    assert case_claim_next(agent=supervisor) == case
    actions.case_attest_document(case_id=case.pk, agent=supervisor, note="Passport matches")
    approval = actions.case_approval_request(
        case_id=case.pk, agent=supervisor, action=CaseApproval.Action.DOCUMENT
    )

    with pytest.raises(CaseActionError, match="cannot approve your own request"):
        actions.case_approval_decide(approval_id=approval.pk, supervisor=supervisor, approve=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        CaseApproval.objects.filter(pk=approval.pk).update(
            decided_by=supervisor, decided_at=timezone.now(), approved=True
        )
    approval.refresh_from_db()
    assert approval.decided_at is None and approval.approved is None

    client = admin_client(supervisor)
    page = client.get(reverse("admin:support_approvals")).content.decode()
    assert case.reference in page and "your own request" in page
    answer = client.post(
        reverse("admin:support_approvals"),
        {
            "approval_id": approval.pk,
            "action": "approve",
            "otp_code": fresh_code(supervisor),
            "confirmed": "on",
        },
        follow=True,
    )
    assert "You cannot approve your own request." in answer.content.decode()
    approval.refresh_from_db()
    assert approval.decided_at is None

    actions.case_approval_decide(
        approval_id=approval.pk, supervisor=second_supervisor, approve=True
    )
    approval.refresh_from_db()
    assert (approval.approved, approval.decided_by) == (True, second_supervisor)
    assert case.events.get(type=CaseEvent.Type.APPROVAL_DECIDED).actor == second_supervisor
    with pytest.raises(CaseActionError, match="already decided"):
        actions.case_approval_decide(approval_id=approval.pk, supervisor=supervisor, approve=False)


def test_an_expired_code_is_refused(case, capture, mailoutbox, sms_outbox):
    """Proof codes live ten minutes: at 11 minutes the right code is refused."""
    with time_machine.travel("2026-05-04 09:00:00+00:00", tick=False) as clock:
        code = send_code(
            case,
            CaseProof.Kind.PHONE,
            capture=capture,
            mailoutbox=mailoutbox,
            sms_outbox=sms_outbox,
        )
        clock.shift(timedelta(minutes=11))
        assert case_proof_verify(case=case, kind=CaseProof.Kind.PHONE, code=code) == (
            CodeCheck.EXPIRED
        )
    assert not case.proofs.exists()


def test_a_code_works_once(case, capture, mailoutbox, sms_outbox):
    """A used code is refused the second time and records no second proof."""
    code = send_code(
        case, CaseProof.Kind.EMAIL, capture=capture, mailoutbox=mailoutbox, sms_outbox=sms_outbox
    )
    assert case_proof_verify(case=case, kind=CaseProof.Kind.EMAIL, code=code) == CodeCheck.OK
    again = case_proof_verify(case=case, kind=CaseProof.Kind.EMAIL, code=code)
    assert again != CodeCheck.OK
    assert case.proofs.count() == 1
    assert case.events.filter(type=CaseEvent.Type.PROOF_ADDED).count() == 1


def test_five_wrong_attempts_lock_the_code(case, capture, mailoutbox, sms_outbox):
    """After five wrong codes even the right one is refused; a new code must be sent."""
    code = send_code(
        case, CaseProof.Kind.PHONE, capture=capture, mailoutbox=mailoutbox, sms_outbox=sms_outbox
    )
    for _ in range(5):
        assert case_proof_verify(case=case, kind=CaseProof.Kind.PHONE, code=other_code(code)) == (
            CodeCheck.WRONG
        )
    assert case_proof_verify(case=case, kind=CaseProof.Kind.PHONE, code=code) == (
        CodeCheck.TOO_MANY_ATTEMPTS
    )
    assert not case.proofs.exists()
    assert case.events.filter(type=CaseEvent.Type.CODE_FAILED).count() == 5

    fresh = send_code(
        case, CaseProof.Kind.PHONE, capture=capture, mailoutbox=mailoutbox, sms_outbox=sms_outbox
    )
    assert case_proof_verify(case=case, kind=CaseProof.Kind.PHONE, code=fresh) == CodeCheck.OK


def test_a_code_sent_for_another_case_does_not_prove_this_one(
    account, case, capture, mailoutbox, sms_outbox
):
    """Codes are scoped to their case: the same account's code from a closed older case
    does not count here."""
    older = RecoveryCase.objects.create(
        reference="RC-OLD0-0001",
        status=CaseStatus.RESOLVED,
        contact_email="x@example.org",
        matched_user=account,
    )
    code = send_code(
        older, CaseProof.Kind.PHONE, capture=capture, mailoutbox=mailoutbox, sms_outbox=sms_outbox
    )
    assert case_proof_verify(case=case, kind=CaseProof.Kind.PHONE, code=code) == CodeCheck.NONE
    assert not case.proofs.exists()


def test_the_recovery_link_sets_a_password_then_2fa_and_works_once(
    agent, account, case, capture, mailoutbox, sms_outbox
):
    """The emailed link: new password, then a new authenticator confirmed with its code, then
    ten backup codes; the account can sign in again with both. The link is then used up."""
    prove(case, CaseProof.Kind.PHONE, capture=capture, mailoutbox=mailoutbox, sms_outbox=sms_outbox)
    prove(case, CaseProof.Kind.EMAIL, capture=capture, mailoutbox=mailoutbox, sms_outbox=sms_outbox)
    case_claim_next(agent=agent)
    mailoutbox.clear()
    with capture():
        actions.case_reauthenticate(case_id=case.pk, agent=agent)
    token = next(first_group(RECOVERY_LINK, m.body) for m in mailoutbox if "/reset/" in m.body)

    client = Client()
    opened = client.get(f"/recover/reset/{token}/")
    assert opened.status_code == 302 and opened["Location"] == reverse("recover_reset")
    form = client.get(reverse("recover_reset"))
    assert form.status_code == 200 and token not in form.content.decode()
    mismatch = client.post(
        reverse("recover_reset"), {"new_password1": NEW_PASSWORD, "new_password2": "other"}
    )
    assert mismatch.status_code == 400
    assert RecoveryLink.objects.get().used_at is None

    with capture():
        done = client.post(
            reverse("recover_reset"), {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
        )
    assert done.status_code == 302 and done["Location"] == reverse("recover_2fa_setup")
    user = User.objects.get(pk=account.pk)
    assert user.check_password(NEW_PASSWORD) and not user.check_password(PASSWORD)
    assert RecoveryLink.objects.get().used_at is not None

    setup = client.get(reverse("recover_2fa_setup"))
    assert setup.status_code == 200
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    with capture():
        confirmed = client.post(reverse("recover_2fa_setup"), {"code": totp_code(device)})
    assert confirmed.status_code == 200
    codes = BACKUP_CODE.findall(confirmed.content.decode())
    assert len(set(codes)) == 10
    user.refresh_from_db()
    assert user.reenrolment_required is False
    assert TOTPDevice.objects.get(user=user).confirmed
    assert user.on_security_hold, "the 48-hour hold stays"
    assert client.get(reverse("account_security")).status_code == 200

    for attempt in (Client(), client):
        again = attempt.get(f"/recover/reset/{token}/")
        assert again.status_code == 404
    assert Client().get(reverse("recover_reset")).status_code == 404
    assert User.objects.get(pk=account.pk).check_password(NEW_PASSWORD)
