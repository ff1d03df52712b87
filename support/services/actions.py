"""What an agent does with the case they hold; each action writes its events and notices.

Agents never set a password or a factor: re-authentication ends access and sends the
customer a single-use link to do both themselves.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.contacts import mask_email
from accounts.hashing import HashPurpose, keyed_hash, keyed_hash_candidates
from accounts.models import BackupCodeDevice, OneTimeCode, SecurityEvent, User
from accounts.services.audit import AuditContext, security_event_record
from accounts.services.tokens import (
    CodeCheck,
    one_time_code_check,
    one_time_code_issue,
)
from accounts.services.users import user_email_change, user_sessions_end_all
from notifications.models import Notification
from notifications.services import notification_queue
from support.canned import CANNED_REPLIES, REJECTION_REASONS, canned_text
from support.models import (
    CaseApproval,
    CaseEvent,
    CasePriority,
    CaseProof,
    CaseStatus,
    EmailChange,
    RecoveryCase,
    RecoveryLink,
)
from support.roles import is_supervisor
from support.services.cases import (
    case_event_add,
    case_link_issue,
    case_proof_code_send,
    case_proof_verify,
    login_email_hint_send,
    proof_code_notify,
)
from support.services.queue import CaseActionError, case_for_agent


def _close(case: RecoveryCase, *, status: CaseStatus, resolution: str) -> None:
    case.status = status
    case.resolution = resolution
    case.claimed_by = None
    case.lease_expires_at = None
    case.closed_at = timezone.now()
    case.save(
        update_fields=[
            "status",
            "resolution",
            "claimed_by",
            "lease_expires_at",
            "closed_at",
            "updated_at",
        ]
    )


def _notify_contact(case: RecoveryCase, *, key: str) -> None:
    """Tell the contact address the customer gave that the case changed, with a fresh link."""
    token, _notice = case_link_issue(case=case)
    notification_queue(
        channel=Notification.Channel.EMAIL,
        recipient=case.contact_email,
        template_key="support/case_updated",
        idempotency_key=f"case:{case.pk}:{key}",
        language=case.language,
        context={"case_reference": case.reference, "link_token": token},
    )


def _proofs(case: RecoveryCase) -> set[str]:
    return set(case.proofs.values_list("kind", flat=True))


def case_reveal_contact(*, case_id: int, agent: User, field: str, reason: str) -> str:
    """Show the agent one full contact value of the matched account; logged with the reason."""
    if not reason.strip():
        raise CaseActionError("Say why you need the full value.")
    with transaction.atomic():
        case = case_for_agent(case_id=case_id, agent=agent)
        user = case.matched_user
        if user is None or field not in ("email", "phone"):
            raise CaseActionError("There is nothing to reveal.")
        case_event_add(
            case=case,
            type=CaseEvent.Type.CONTACT_REVEALED,
            actor=agent,
            message=reason,
            details={"field": field},
        )
        return getattr(user, field) or ""


def case_send_proof_code(*, case_id: int, agent: User, kind: CaseProof.Kind) -> bool:
    with transaction.atomic():
        case = case_for_agent(case_id=case_id, agent=agent)
        return case_proof_code_send(case=case, kind=kind, agent=agent)


def case_attest_document(*, case_id: int, agent: User, note: str) -> CaseProof:
    """The agent checked the uploaded documents against the account and says so, with a note."""
    if not note.strip():
        raise CaseActionError("Describe what you checked.")
    with transaction.atomic():
        case = case_for_agent(case_id=case_id, agent=agent)
        if not case.evidence.exists():
            raise CaseActionError("The customer has not uploaded any documents.")
        proof, created = CaseProof.objects.get_or_create(
            case=case,
            kind=CaseProof.Kind.DOCUMENT,
            defaults={"by_customer": False, "attested_by": agent, "note": note},
        )
        if not created:
            raise CaseActionError("The documents were already checked.")
        case_event_add(case=case, type=CaseEvent.Type.DOCUMENT_CHECKED, actor=agent, message=note)
    return proof


def case_tell_login_email(*, case_id: int, agent: User) -> RecoveryCase:
    """Send the login email to the account's own phone and email; needs the phone proven."""
    with transaction.atomic():
        case = case_for_agent(case_id=case_id, agent=agent)
        if case.matched_user is None:
            raise CaseActionError("The case matches no account.")
        if CaseProof.Kind.PHONE not in _proofs(case):
            raise CaseActionError("The phone on file must be proven first.")
        login_email_hint_send(user=case.matched_user, idempotency_prefix=f"case:{case.pk}:told")
        case_event_add(
            case=case, type=CaseEvent.Type.LOGIN_EMAIL_TOLD, actor=agent, visible_to_customer=True
        )
        _close(
            case, status=CaseStatus.RESOLVED, resolution=RecoveryCase.Resolution.LOGIN_EMAIL_TOLD
        )
    return case


def reauthentication_allowed(case: RecoveryCase) -> bool:
    """The policy: two independent proofs, or one proof and a supervisor's approval."""
    proofs = _proofs(case) - {CaseProof.Kind.NEW_EMAIL}
    if len(proofs) >= settings.REAUTH_REQUIRED_PROOFS:
        return True
    approved = case.approvals.filter(
        action=CaseApproval.Action.REAUTHENTICATE, approved=True
    ).exists()
    return len(proofs) >= 1 and approved


def case_reauthenticate(*, case_id: int, agent: User) -> RecoveryCase:
    """End all access to the account and send a single-use recovery link to a proven channel.

    Sessions end, both kinds of 2FA device are removed, the account is flagged for
    re-enrolment and put on hold; every contact on file hears of it.
    """
    with transaction.atomic():
        case = case_for_agent(case_id=case_id, agent=agent)
        user = case.matched_user
        if user is None:
            raise CaseActionError("The case matches no account.")
        if not reauthentication_allowed(case):
            raise CaseActionError(
                "Not allowed yet: two proofs are needed, or one and a supervisor's approval."
            )
        user = User.objects.select_for_update().get(pk=user.pk)
        user_sessions_end_all(user=user)
        TOTPDevice.objects.filter(user=user).delete()
        BackupCodeDevice.objects.filter(user=user).delete()
        user.reenrolment_required = True
        user.frozen_at = None
        user.security_hold_until = timezone.now() + timedelta(
            hours=settings.SECURITY_HOLD_HOURS_RECOVERY
        )
        user.save(update_fields=["reenrolment_required", "frozen_at", "security_hold_until"])
        token = secrets.token_urlsafe(32)
        RecoveryLink.objects.create(
            case=case,
            user=user,
            token_hash=keyed_hash(token, purpose=HashPurpose.RECOVERY_LINK),
            expires_at=timezone.now() + timedelta(hours=settings.RECOVERY_LINK_HOURS),
        )
        by_email = CaseProof.Kind.EMAIL in _proofs(case) or not user.phone
        notification_queue(
            channel=Notification.Channel.EMAIL if by_email else Notification.Channel.SMS,
            recipient=user.email if by_email else (user.phone or user.email),
            template_key="support/recovery_link",
            idempotency_key=f"case:{case.pk}:recovery",
            language=user.language,
            account_id=user.pk,
            context={
                "link_token": token,
                "case_reference": case.reference,
                "hours": settings.RECOVERY_LINK_HOURS,
            },
        )
        security_event_record(
            user=user,
            type=SecurityEvent.Type.ACCOUNT_RECOVERED,
            context=AuditContext(actor_id=agent.pk),
            details={"case": case.reference, "proofs": sorted(_proofs(case))},
        )
        case_event_add(
            case=case,
            type=CaseEvent.Type.REAUTHENTICATED,
            actor=agent,
            visible_to_customer=True,
            details={"channel": "email" if by_email else "sms"},
        )
        _close(case, status=CaseStatus.RESOLVED, resolution=RecoveryCase.Resolution.REAUTHENTICATED)
    return case


def case_ask_customer(
    *, case_id: int, agent: User, message: str = "", canned: str = ""
) -> RecoveryCase:
    """Write to the customer; the case waits for their answer outside the queue."""
    with transaction.atomic():
        case = case_for_agent(case_id=case_id, agent=agent)
        if canned:
            message = canned_text(CANNED_REPLIES, canned, case.language)
        if not message.strip():
            raise CaseActionError("Write a message or pick a canned reply.")
        event = case_event_add(
            case=case,
            type=CaseEvent.Type.AGENT_MESSAGE,
            actor=agent,
            message=message,
            visible_to_customer=True,
        )
        case.status = CaseStatus.AWAITING_CUSTOMER
        case.claimed_by = None
        case.lease_expires_at = None
        case.save(update_fields=["status", "claimed_by", "lease_expires_at", "updated_at"])
        _notify_contact(case, key=f"message:{event.pk}")
    return case


def case_reject(*, case_id: int, agent: User, reason: str) -> RecoveryCase:
    with transaction.atomic():
        case = case_for_agent(case_id=case_id, agent=agent)
        try:
            text = canned_text(REJECTION_REASONS, reason, case.language)
        except KeyError:
            raise CaseActionError("Pick a reason.") from None
        case_event_add(
            case=case,
            type=CaseEvent.Type.REJECTED,
            actor=agent,
            message=text,
            visible_to_customer=True,
            details={"reason": reason},
        )
        _close(case, status=CaseStatus.REJECTED, resolution=RecoveryCase.Resolution.REJECTED)
        _notify_contact(case, key="rejected")
    return case


def case_escalate(*, case_id: int, agent: User, note: str) -> RecoveryCase:
    """Hand the case to the supervisors' queue with urgent priority."""
    if not note.strip():
        raise CaseActionError("Say why you escalate.")
    with transaction.atomic():
        case = case_for_agent(case_id=case_id, agent=agent)
        case.status = CaseStatus.ESCALATED
        case.priority = CasePriority.URGENT
        case.claimed_by = None
        case.lease_expires_at = None
        case.save(
            update_fields=["status", "priority", "claimed_by", "lease_expires_at", "updated_at"]
        )
        case_event_add(case=case, type=CaseEvent.Type.ESCALATED, actor=agent, message=note)
    return case


def case_approval_request(
    *, case_id: int, agent: User, action: CaseApproval.Action, note: str = ""
) -> CaseApproval:
    with transaction.atomic():
        case = case_for_agent(case_id=case_id, agent=agent)
        if case.approvals.filter(action=action, decided_at__isnull=True).exists():
            raise CaseActionError("An approval for this is already pending.")
        if action == CaseApproval.Action.CHANGE_EMAIL:
            change = _email_change_current(case)
            if change is None or change.status != EmailChange.Status.AWAITING_APPROVAL:
                raise CaseActionError("The new email address must be proven first.")
        approval = CaseApproval.objects.create(
            case=case, action=action, requested_by=agent, note=note
        )
        case_event_add(
            case=case,
            type=CaseEvent.Type.APPROVAL_REQUESTED,
            actor=agent,
            message=note,
            details={"action": action},
        )
        # The decision is a supervisor's step of its own; the agent moves on.
        case.status = CaseStatus.ESCALATED
        case.claimed_by = None
        case.lease_expires_at = None
        case.save(update_fields=["status", "claimed_by", "lease_expires_at", "updated_at"])
    return approval


def case_approval_decide(*, approval_id: int, supervisor: User, approve: bool) -> CaseApproval:
    """Four eyes: a supervisor who did not ask decides; an approved email change starts waiting."""
    if not is_supervisor(supervisor):
        raise CaseActionError("Only supervisors decide approvals.")
    with transaction.atomic():
        approval = (
            CaseApproval.objects.select_for_update()
            .select_related("case")
            .filter(pk=approval_id, decided_at__isnull=True)
            .first()
        )
        if approval is None:
            raise CaseActionError("This approval was already decided.")
        if approval.requested_by_id == supervisor.pk:
            raise CaseActionError("You cannot approve your own request.")
        approval.decided_by = supervisor
        approval.decided_at = timezone.now()
        approval.approved = approve
        approval.save(update_fields=["decided_by", "decided_at", "approved"])
        case = approval.case
        case_event_add(
            case=case,
            type=CaseEvent.Type.APPROVAL_DECIDED,
            actor=supervisor,
            details={"action": approval.action, "approved": approve},
        )
        case = RecoveryCase.objects.select_for_update().get(pk=case.pk)
        if approval.action == CaseApproval.Action.CHANGE_EMAIL:
            change = _email_change_current(case)
            if change is None:
                raise CaseActionError("There is no login email change to decide on.")
            if approve:
                _email_change_schedule(change, supervisor=supervisor)
                _close(
                    case,
                    status=CaseStatus.RESOLVED,
                    resolution=RecoveryCase.Resolution.EMAIL_CHANGED,
                )
                return approval
            change.status = EmailChange.Status.CANCELLED
            change.save(update_fields=["status", "updated_at"])
        if case.status == CaseStatus.ESCALATED:
            # Back to the agents, ahead of new arrivals, to finish the case.
            case.status = CaseStatus.WAITING
            case.priority = max(case.priority, CasePriority.HIGH)
            case.queued_at = timezone.now()
            case.save(update_fields=["status", "priority", "queued_at", "updated_at"])
    return approval


def _email_change_current(case: RecoveryCase) -> EmailChange | None:
    return (
        case.email_changes.exclude(
            status__in=[EmailChange.Status.APPLIED, EmailChange.Status.CANCELLED]
        )
        .order_by("-created_at")
        .first()
    )


def case_email_change_start(*, case_id: int, agent: User, new_email: str) -> EmailChange:
    """Start a change of login email: send a code to the new address for the customer."""
    new_email = new_email.strip().lower()
    with transaction.atomic():
        case = case_for_agent(case_id=case_id, agent=agent)
        user = case.matched_user
        if user is None:
            raise CaseActionError("The case matches no account.")
        if User.objects.filter(email=new_email).exists():
            raise CaseActionError("That address cannot be used.")
        EmailChange.objects.filter(case=case, status=EmailChange.Status.PROVING).update(
            status=EmailChange.Status.CANCELLED
        )
        change = EmailChange.objects.create(
            case=case, user=user, new_email=new_email, requested_by=agent
        )
        _row, code = one_time_code_issue(
            user=user,
            purpose=OneTimeCode.Purpose.PROVE_NEW_EMAIL,
            scope=f"email-change:{change.pk}",
        )
        proof_code_notify(
            case=case,
            account=user,
            channel=Notification.Channel.EMAIL,
            recipient=new_email,
            code=code,
            idempotency_key=f"email-change:{change.pk}:code",
        )
        case_event_add(
            case=case,
            type=CaseEvent.Type.EMAIL_CHANGE_STARTED,
            actor=agent,
            visible_to_customer=True,
            details={"new_email": mask_email(new_email)},
        )
    return change


def case_new_email_verify(*, case: RecoveryCase, code: str) -> CodeCheck:
    """The customer enters the code sent to the new address (on the status page)."""
    with transaction.atomic():
        change = _email_change_current(case)
        if change is None or change.status != EmailChange.Status.PROVING:
            return CodeCheck.NONE
        result = one_time_code_check(
            user=change.user,
            purpose=OneTimeCode.Purpose.PROVE_NEW_EMAIL,
            code=code,
            scope=f"email-change:{change.pk}",
        )
        if result == CodeCheck.OK:
            change.status = EmailChange.Status.AWAITING_APPROVAL
            change.save(update_fields=["status", "updated_at"])
            CaseProof.objects.get_or_create(case=case, kind=CaseProof.Kind.NEW_EMAIL)
            case_event_add(
                case=case,
                type=CaseEvent.Type.PROOF_ADDED,
                details={"kind": CaseProof.Kind.NEW_EMAIL},
                visible_to_customer=True,
            )
    return result


def case_code_verify(*, case: RecoveryCase, kind: str, code: str) -> CodeCheck:
    """A code the customer typed on the status page, for the new address or a contact on file."""
    if kind == CaseProof.Kind.NEW_EMAIL:
        return case_new_email_verify(case=case, code=code)
    return case_proof_verify(case=case, kind=CaseProof.Kind(kind), code=code)


def _email_change_schedule(change: EmailChange, *, supervisor: User) -> None:
    """Approved: the change waits; the old address and the phone can cancel it meanwhile."""
    token = secrets.token_urlsafe(32)
    change.status = EmailChange.Status.WAITING_PERIOD
    change.effective_at = timezone.now() + timedelta(hours=settings.EMAIL_CHANGE_WAIT_HOURS)
    change.cancel_token_hash = keyed_hash(token, purpose=HashPurpose.EMAIL_CHANGE_CANCEL)
    change.save(update_fields=["status", "effective_at", "cancel_token_hash", "updated_at"])
    user = change.user
    event = security_event_record(
        user=user,
        type=SecurityEvent.Type.EMAIL_CHANGE_SCHEDULED,
        context=AuditContext(actor_id=supervisor.pk),
        notify=False,
        details={"new_email": mask_email(change.new_email), "case": change.case.reference},
    )
    context = {
        "masked_new_email": mask_email(change.new_email),
        "cancel_token": token,
        "effective_at": f"{change.effective_at:%Y-%m-%d %H:%M}",
    }
    recipients = [(Notification.Channel.EMAIL, user.email)]
    if user.phone:
        recipients.append((Notification.Channel.SMS, user.phone))
    for channel, recipient in recipients:
        notification_queue(
            channel=channel,
            recipient=recipient,
            template_key="support/email_change_scheduled",
            idempotency_key=f"email-change:{change.pk}:scheduled:{channel}",
            language=user.language,
            account_id=user.pk,
            context=context,
        )
    case_event_add(
        case=change.case,
        type=CaseEvent.Type.EMAIL_CHANGE_SCHEDULED,
        actor=supervisor,
        visible_to_customer=True,
        details={"effective_at": change.effective_at.isoformat(), "security_event_id": event.pk},
    )


def email_change_cancel(*, token: str) -> EmailChange | None:
    """The old address or the phone stops a scheduled change (single-use link)."""
    with transaction.atomic():
        change = (
            EmailChange.objects.select_for_update()
            .select_related("case")
            .filter(
                cancel_token_hash__in=keyed_hash_candidates(
                    token, purpose=HashPurpose.EMAIL_CHANGE_CANCEL
                ),
                status=EmailChange.Status.WAITING_PERIOD,
            )
            .first()
        )
        if change is None:
            return None
        change.status = EmailChange.Status.CANCELLED
        change.save(update_fields=["status", "updated_at"])
        case_event_add(
            case=change.case, type=CaseEvent.Type.EMAIL_CHANGE_CANCELLED, visible_to_customer=True
        )
    return change


def email_changes_apply_due() -> int:
    """Apply changes whose waiting period is over; the notice goes to old and new address."""
    applied = 0
    due = EmailChange.objects.filter(
        status=EmailChange.Status.WAITING_PERIOD, effective_at__lte=timezone.now()
    ).values_list("pk", flat=True)
    for change_id in list(due):
        with transaction.atomic():
            change = (
                EmailChange.objects.select_for_update()
                .select_related("case", "user")
                .filter(pk=change_id, status=EmailChange.Status.WAITING_PERIOD)
                .first()
            )
            if change is None:
                continue
            user_email_change(
                user=change.user,
                new_email=change.new_email,
                context=AuditContext(actor_id=change.requested_by_id),
            )
            change.status = EmailChange.Status.APPLIED
            change.save(update_fields=["status", "updated_at"])
            case_event_add(
                case=change.case, type=CaseEvent.Type.EMAIL_CHANGE_APPLIED, visible_to_customer=True
            )
            applied += 1
    return applied
