"""What an agent does with the case they hold; each action writes its events and notices.

Actions that rest on proofs act for ONE requester of the case (`requester`, the id of their
request; the one who opened the case when not given) and ask the policy
(`accounts.policy`) with that requester's proofs only; a refusal says in words what is
still missing. Agents never set a password or a factor: re-authentication ends access and
sends the customer a single-use link to do both themselves.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from accounts.contacts import mask_email
from accounts.hashing import HashPurpose, keyed_hash, keyed_hash_candidates
from accounts.models import BackupCodeDevice, OneTimeCode, SecurityEvent, User
from accounts.policy import POLICY, SMS_SECRET_LIFETIME, Action, Decision
from accounts.services.audit import AuditContext, security_event_record
from accounts.services.holds import (
    SecurityHoldActive,
    security_changes_check,
    security_hold_extend,
)
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
    OPEN_STATUSES,
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
from support.selectors import email_change_decision, requester_decision
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
    """Close the case; a login-email change of it not yet approved ends with it.

    Otherwise its pending approval would still schedule the change after the case was
    rejected or resolved otherwise, against the word of whoever closed it.
    """
    unapproved = EmailChange.objects.select_for_update().filter(
        case=case,
        status__in=[EmailChange.Status.PROVING, EmailChange.Status.AWAITING_APPROVAL],
    )
    for change in unapproved.select_related("requester"):
        _email_change_cancel(change, reason="case_closed")
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


def _requester(case: RecoveryCase, requester: int | None) -> RecoveryCase:
    """The request of one requester of `case`: the case itself or a request that joined it."""
    if requester is None or requester == case.pk:
        return case
    found = (
        RecoveryCase.objects.select_related("matched_user")
        .filter(pk=requester, merged_into=case)
        .first()
    )
    if found is None:
        raise CaseActionError(_("This requester is not part of the case."))
    return found


def _refused(decision: Decision) -> CaseActionError:
    """The policy's refusal in words: what the requester still has to prove."""
    return CaseActionError(
        _("Not allowed yet. Still needed: %(missing)s.")
        % {"missing": "; ".join(str(item) for item in decision.missing)}
    )


def _hold_hours(action: Action) -> int:
    return int(getattr(settings, POLICY[action].hold_setting))


def _no_hold(user: User) -> None:
    """Support cannot change the login email of an account on a security hold either."""
    try:
        security_changes_check(user=user)
    except SecurityHoldActive as exc:
        raise CaseActionError(str(exc)) from None


def case_reveal_contact(
    *, case_id: int, agent: User, field: str, reason: str, requester: int | None = None
) -> str:
    """Show the agent one full contact value; logged with the reason.

    Without `requester`, a contact on file of the matched account; with it, the contact
    that requester typed.
    """
    if not reason.strip():
        raise CaseActionError(_("Say why you need the full value."))
    if field not in ("email", "phone"):
        raise CaseActionError(_("There is nothing to reveal."))
    with transaction.atomic():
        case = case_for_agent(case_id=case_id, agent=agent)
        if requester is None:
            user = case.matched_user
            if user is None:
                raise CaseActionError(_("There is nothing to reveal."))
            value = getattr(user, field) or ""
            details: dict[str, str] = {"field": field}
        else:
            request = _requester(case, requester)
            value = request.contact_email if field == "email" else request.contact_phone
            details = {"field": field, "requester": request.reference}
        case_event_add(
            case=case,
            type=CaseEvent.Type.CONTACT_REVEALED,
            actor=agent,
            message=reason,
            details=details,
        )
        return value


def case_send_proof_code(
    *, case_id: int, agent: User, kind: CaseProof.Kind, requester: int | None = None
) -> bool:
    """Send a code to the contact on file for one requester, who types it on their page."""
    with transaction.atomic():
        case = case_for_agent(case_id=case_id, agent=agent)
        return case_proof_code_send(case=_requester(case, requester), kind=kind, agent=agent)


def case_attest_document(
    *, case_id: int, agent: User, note: str, requester: int | None = None
) -> CaseProof:
    """The agent checked one requester's uploaded documents and says so, with a note.

    The attestation alone proves nothing: it counts once a supervisor other than the
    attester approves it (`case_approval_request` with `CaseApproval.Action.DOCUMENT`).
    """
    if not note.strip():
        raise CaseActionError(_("Describe what you checked."))
    with transaction.atomic():
        case = case_for_agent(case_id=case_id, agent=agent)
        request = _requester(case, requester)
        if not request.evidence.exists():
            raise CaseActionError(_("This requester has not uploaded any documents."))
        proof, created = CaseProof.objects.get_or_create(
            case=request,
            kind=CaseProof.Kind.DOCUMENT,
            defaults={"by_customer": False, "attested_by": agent, "note": note},
        )
        if not created:
            raise CaseActionError(_("The documents were already checked."))
        case_event_add(
            case=request,
            type=CaseEvent.Type.DOCUMENT_CHECKED,
            actor=agent,
            message=note,
            details={"kind": CaseProof.Kind.DOCUMENT, "proof_id": proof.pk},
        )
    return proof


def case_tell_login_email(
    *, case_id: int, agent: User, requester: int | None = None
) -> RecoveryCase:
    """Send the login email to the account's own phone and email.

    Needs the phone on file proven by this requester (policy `TELL_LOGIN_EMAIL`).
    """
    with transaction.atomic():
        case = case_for_agent(case_id=case_id, agent=agent)
        request = _requester(case, requester)
        if case.matched_user is None:
            raise CaseActionError(_("The case matches no account."))
        decision = requester_decision(requester=request, action=Action.TELL_LOGIN_EMAIL)
        if not decision:
            raise _refused(decision)
        login_email_hint_send(user=case.matched_user, idempotency_prefix=f"case:{case.pk}:told")
        case_event_add(
            case=request,
            type=CaseEvent.Type.LOGIN_EMAIL_TOLD,
            actor=agent,
            visible_to_customer=True,
        )
        _close(
            case, status=CaseStatus.RESOLVED, resolution=RecoveryCase.Resolution.LOGIN_EMAIL_TOLD
        )
    return case


def reauthentication_decision(case: RecoveryCase, requester: int | None = None) -> Decision:
    """The policy's answer for re-authenticating on the proofs of one requester of `case`."""
    return requester_decision(requester=_requester(case, requester), action=Action.REAUTHENTICATE)


def _recovery_staff(request: RecoveryCase, *, agent: User, since: datetime) -> list[int]:
    """Every staff member a recovery rests on: the agent who acts, and for a document
    check among the requester's proofs its attester, the one who asked for its approval
    and the supervisor who approved it.

    The recovery's security event names them all, so none of them can lift the hold it
    sets (`accounts.services.holds.security_hold_lift`): four eyes there means someone
    who had no part in letting the requester in.
    """
    staff: set[int | None] = {agent.pk}
    documents = request.proofs.filter(
        kind=CaseProof.Kind.DOCUMENT, created_at__gte=since
    ).prefetch_related("approvals")
    for proof in documents:
        staff.add(proof.attested_by_id)
        for approval in proof.approvals.all():
            if approval.approved:
                staff.update((approval.requested_by_id, approval.decided_by_id))
    return sorted(pk for pk in staff if pk is not None)


def case_reauthenticate(*, case_id: int, agent: User, requester: int | None = None) -> RecoveryCase:
    """End all access to the account and send a single-use recovery link to a channel this
    requester proved (policy `REAUTHENTICATE`, on their proofs alone).

    Sessions end, the password stops working, both kinds of 2FA device are removed, the
    account is flagged for re-enrolment and put on hold (never shortening a longer one);
    every contact on file hears of it. A link by email lives `RECOVERY_LINK_HOURS`; a link
    by SMS at most `SMS_SECRET_LIFETIME` (NIST SP 800-63B-4).
    """
    with transaction.atomic():
        case = case_for_agent(case_id=case_id, agent=agent)
        request = _requester(case, requester)
        user = case.matched_user
        if user is None:
            raise CaseActionError(_("The case matches no account."))
        decision = requester_decision(requester=request, action=Action.REAUTHENTICATE)
        if not decision:
            raise _refused(decision)
        since = timezone.now() - POLICY[Action.REAUTHENTICATE].window
        proven = set(request.proofs.filter(created_at__gte=since).values_list("kind", flat=True))
        user = User.objects.select_for_update().get(pk=user.pk)
        by_email = CaseProof.Kind.EMAIL in proven
        if not by_email and not (CaseProof.Kind.PHONE in proven and user.phone):
            raise CaseActionError(_("The requester has proven neither the phone nor the email."))
        user_sessions_end_all(user=user)
        TOTPDevice.objects.filter(user=user).delete()
        BackupCodeDevice.objects.filter(user=user).delete()
        # A passkey an account taker registered would survive the recovery otherwise.
        WebAuthnCredential.objects.filter(user=user).delete()
        user.reenrolment_required = True
        user.frozen_at = None
        # The old password may be the account taker's too: with it and the login inbox,
        # the re-enrolment of a mass revocation would set up their authenticator before
        # the owner opens the link. The link sets the next password.
        user.set_unusable_password()
        user.save(update_fields=["reenrolment_required", "frozen_at", "password"])
        security_hold_extend(user=user, hours=_hold_hours(Action.REAUTHENTICATE))
        token = secrets.token_urlsafe(32)
        lifetime = (
            timedelta(hours=settings.RECOVERY_LINK_HOURS) if by_email else SMS_SECRET_LIFETIME
        )
        RecoveryLink.objects.create(
            case=case,
            user=user,
            token_hash=keyed_hash(token, purpose=HashPurpose.RECOVERY_LINK),
            expires_at=timezone.now() + lifetime,
        )
        notification_queue(
            channel=Notification.Channel.EMAIL if by_email else Notification.Channel.SMS,
            recipient=user.email if by_email else (user.phone or user.email),
            template_key="support/recovery_link",
            idempotency_key=f"case:{case.pk}:recovery",
            language=user.language,
            account_id=user.pk,
            context={
                "link_token": token,
                "case_reference": request.reference,
                "hours": settings.RECOVERY_LINK_HOURS,
                "minutes": int(SMS_SECRET_LIFETIME.total_seconds() // 60),
            },
        )
        security_event_record(
            user=user,
            type=SecurityEvent.Type.ACCOUNT_RECOVERED,
            context=AuditContext(actor_id=agent.pk),
            details={
                "case": case.reference,
                "requester": request.reference,
                "proofs": sorted(proven - {CaseProof.Kind.NEW_EMAIL}),
                "staff": _recovery_staff(request, agent=agent, since=since),
            },
        )
        case_event_add(
            case=request,
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
            message = canned_text(CANNED_REPLIES, canned, case.language, case.reference)
        if not message.strip():
            raise CaseActionError(_("Write a message or pick a canned reply."))
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
        case.reminders_sent = 0
        case.save(
            update_fields=[
                "status",
                "claimed_by",
                "lease_expires_at",
                "reminders_sent",
                "updated_at",
            ]
        )
        _notify_contact(case, key=f"message:{event.pk}")
    return case


def case_reject(*, case_id: int, agent: User, reason: str) -> RecoveryCase:
    with transaction.atomic():
        case = case_for_agent(case_id=case_id, agent=agent)
        try:
            text = canned_text(REJECTION_REASONS, reason, case.language)
        except KeyError:
            raise CaseActionError(_("Pick a reason.")) from None
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
        raise CaseActionError(_("Say why you escalate."))
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
    *,
    case_id: int,
    agent: User,
    action: CaseApproval.Action,
    note: str = "",
    requester: int | None = None,
    email_change: int | None = None,
) -> CaseApproval:
    """Ask a supervisor to approve one thing, named by the approval row.

    `DOCUMENT`: the document check attested for `requester`. `CHANGE_EMAIL`: the change
    `email_change`, which must already have everything the policy asks but the approval.
    """
    with transaction.atomic():
        case = case_for_agent(case_id=case_id, agent=agent)
        if case.approvals.filter(action=action, decided_at__isnull=True).exists():
            raise CaseActionError(_("An approval for this is already pending."))
        target: dict[str, object] = {}
        if action == CaseApproval.Action.DOCUMENT:
            request = _requester(case, requester)
            proof = request.proofs.filter(kind=CaseProof.Kind.DOCUMENT).first()
            if proof is None:
                raise CaseActionError(_("Check and attest this requester's documents first."))
            if proof.approvals.filter(approved=True).exists():
                raise CaseActionError(_("This document check is already approved."))
            target = {"proof": proof}
            details: dict[str, object] = {"requester": request.reference, "proof_id": proof.pk}
        elif action == CaseApproval.Action.CHANGE_EMAIL:
            change = (
                EmailChange.objects.select_related("requester")
                .filter(pk=email_change or 0, case=case)
                .first()
            )
            if change is None or change.status != EmailChange.Status.AWAITING_APPROVAL:
                raise CaseActionError(_("The new email address must be proven first."))
            decision = email_change_decision(change=change)
            if not decision:
                raise _refused(decision)
            target = {"email_change": change}
            details = {"requester": change.requester.reference, "email_change_id": change.pk}
        else:
            raise CaseActionError(_("This needs no approval."))
        approval = CaseApproval.objects.create(
            case=case, action=action, requested_by=agent, note=note, **target
        )
        case_event_add(
            case=case,
            type=CaseEvent.Type.APPROVAL_REQUESTED,
            actor=agent,
            message=note,
            details={"action": action, **details},
        )
        # The decision is a supervisor's step of its own; the agent moves on.
        case.status = CaseStatus.ESCALATED
        case.claimed_by = None
        case.lease_expires_at = None
        case.save(update_fields=["status", "claimed_by", "lease_expires_at", "updated_at"])
    return approval


def case_approval_decide(
    *, approval_id: int, supervisor: User, approve: bool, note: str = ""
) -> CaseApproval:
    """Four eyes: a supervisor who neither asked, attested nor started the email change
    decides on what the approval names; an approved email change (that one, never
    another) starts its waiting period.

    `note` is the supervisor's word to the agent, kept with the decision and on the
    timeline. A case that waited for the decision goes back to the agent who asked: their
    next "Take next" gives it to them first (`SUPPORT_RETURN_RESERVE_MINUTES`).
    """
    if not is_supervisor(supervisor):
        raise CaseActionError(_("Only supervisors decide approvals."))
    with transaction.atomic():
        approval = (
            # Lock the approval row only: what it names is a nullable (outer) join.
            CaseApproval.objects.select_for_update(of=("self",))
            .select_related("proof")
            .filter(pk=approval_id, decided_at__isnull=True)
            .first()
        )
        if approval is None:
            raise CaseActionError(_("This approval was already decided."))
        case = RecoveryCase.objects.select_for_update().get(pk=approval.case_id)
        if not case.is_open:
            raise CaseActionError(_("This case is closed: its approvals can no longer be decided."))
        if approval.requested_by_id == supervisor.pk:
            raise CaseActionError(_("You cannot approve your own request."))
        if approval.proof is not None and approval.proof.attested_by_id == supervisor.pk:
            raise CaseActionError(
                _("You attested this document check yourself: another supervisor decides.")
            )
        change = None
        if approval.email_change_id is not None:
            # Read again under its lock: a freeze or a close that ended the change since the
            # approval was read must not be overwritten by this decision.
            change = (
                EmailChange.objects.select_for_update()
                .select_related("requester", "user")
                .get(pk=approval.email_change_id)
            )
        if change is not None and change.requested_by_id == supervisor.pk:
            raise CaseActionError(
                _("You started this email change yourself: another supervisor decides.")
            )
        if approve and change is not None:
            if change.status != EmailChange.Status.AWAITING_APPROVAL:
                raise CaseActionError(_("This email change is no longer waiting for approval."))
            decision = email_change_decision(change=change)
            if not decision:
                raise _refused(decision)
            _no_hold(change.user)
        approval.decided_by = supervisor
        approval.decided_at = timezone.now()
        approval.approved = approve
        approval.decision_note = note
        approval.save(update_fields=["decided_by", "decided_at", "approved", "decision_note"])
        case_event_add(
            case=case,
            type=CaseEvent.Type.APPROVAL_DECIDED,
            actor=supervisor,
            message=note,
            details={
                "action": approval.action,
                "approved": approve,
                "proof_id": approval.proof_id,
                "email_change_id": approval.email_change_id,
            },
        )
        if change is not None:
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
            # Back to the agent who asked, ahead of new arrivals, to finish the case.
            case.status = CaseStatus.WAITING
            case.priority = max(case.priority, CasePriority.HIGH)
            case.queued_at = timezone.now()
            case.returns_to_id = approval.requested_by_id
            case.save(update_fields=["status", "priority", "queued_at", "returns_to", "updated_at"])
    return approval


def case_approval_decide_on_case(
    *, case_id: int, agent: User, approval_id: int, approve: bool, note: str = ""
) -> CaseApproval:
    """A supervisor decides, from the case page, an approval of that very case."""
    if not CaseApproval.objects.filter(pk=approval_id, case_id=case_id).exists():
        raise CaseActionError(_("This approval does not exist or was already decided."))
    return case_approval_decide(
        approval_id=approval_id, supervisor=agent, approve=approve, note=note
    )


def case_note_add(*, case_id: int, agent: User, note: str) -> CaseEvent:
    """An internal note on the timeline: staff only, never shown to the customer.

    The agent who holds the case writes one (renewing the lease); a supervisor on any case.
    """
    if not note.strip():
        raise CaseActionError(_("Write the note."))
    with transaction.atomic():
        if is_supervisor(agent):
            case = RecoveryCase.objects.select_for_update().filter(pk=case_id).first()
            if case is None:
                raise CaseActionError(_("This case is not claimed by you any more."))
        else:
            case = case_for_agent(case_id=case_id, agent=agent)
        return case_event_add(
            case=case, type=CaseEvent.Type.NOTE, actor=agent, message=note.strip()
        )


def _email_change_current(request: RecoveryCase) -> EmailChange | None:
    """The newest change of one requester that is neither applied nor cancelled."""
    return (
        EmailChange.objects.filter(requester=request)
        .exclude(status__in=[EmailChange.Status.APPLIED, EmailChange.Status.CANCELLED])
        .order_by("-created_at", "-id")
        .first()
    )


def case_email_change_start(
    *, case_id: int, agent: User, new_email: str, requester: int | None = None
) -> EmailChange:
    """Start a change of login email for one requester: a code goes to the new address.

    The address must be a valid one no account uses; the requester types the code on
    their own status page. A change of theirs still waiting for its code is replaced.
    """
    new_email = new_email.strip().lower()
    try:
        validate_email(new_email)
    except ValidationError:
        raise CaseActionError(_("Enter a valid new email address.")) from None
    with transaction.atomic():
        case = case_for_agent(case_id=case_id, agent=agent)
        request = _requester(case, requester)
        user = case.matched_user
        if user is None:
            raise CaseActionError(_("The case matches no account."))
        if User.objects.filter(email=new_email).exists():
            raise CaseActionError(_("That address cannot be used."))
        _no_hold(user)
        EmailChange.objects.filter(requester=request, status=EmailChange.Status.PROVING).update(
            status=EmailChange.Status.CANCELLED
        )
        change = EmailChange.objects.create(
            case=case, requester=request, user=user, new_email=new_email, requested_by=agent
        )
        _row, code = one_time_code_issue(
            user=user,
            purpose=OneTimeCode.Purpose.PROVE_NEW_EMAIL,
            scope=f"email-change:{change.pk}",
        )
        proof_code_notify(
            case=request,
            account=user,
            channel=Notification.Channel.EMAIL,
            recipient=new_email,
            code=code,
            idempotency_key=f"email-change:{change.pk}:code",
        )
        case_event_add(
            case=request,
            type=CaseEvent.Type.EMAIL_CHANGE_STARTED,
            actor=agent,
            visible_to_customer=True,
            details={"new_email": mask_email(new_email), "email_change_id": change.pk},
        )
    return change


def case_new_email_verify(*, case: RecoveryCase, code: str) -> CodeCheck:
    """A requester enters, on their own status page, the code sent to their new address."""
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
            change.proven_at = timezone.now()
            change.save(update_fields=["status", "proven_at", "updated_at"])
            case_event_add(
                case=case,
                type=CaseEvent.Type.PROOF_ADDED,
                details={
                    "kind": CaseProof.Kind.NEW_EMAIL,
                    "channel": Notification.Channel.EMAIL.value,
                    "email_change_id": change.pk,
                },
                visible_to_customer=True,
            )
    return result


def case_code_verify(*, case: RecoveryCase, kind: str, code: str) -> CodeCheck:
    """A code a requester typed on their status page: for their new address or a contact
    on file."""
    if kind == CaseProof.Kind.NEW_EMAIL:
        return case_new_email_verify(case=case, code=code)
    return case_proof_verify(case=case, kind=CaseProof.Kind(kind), code=code)


def _email_change_staff(change: EmailChange) -> list[int]:
    """Every staff member a login-email change rests on: who started it, who asked for its
    approval and who approved it. The events of the change name them all, so none of them
    can lift the hold it sets (`accounts.services.holds.security_hold_lift`)."""
    staff: set[int | None] = {change.requested_by_id}
    for requested_by, decided_by in CaseApproval.objects.filter(
        email_change=change, approved=True
    ).values_list("requested_by_id", "decided_by_id"):
        staff.update((requested_by, decided_by))
    return sorted(pk for pk in staff if pk is not None)


def _email_change_schedule(change: EmailChange, *, supervisor: User) -> None:
    """Approved: the change waits; the old address and the phone can cancel it meanwhile."""
    token = secrets.token_urlsafe(32)
    wait_hours = int(getattr(settings, POLICY[Action.LOGIN_EMAIL_CHANGE].wait_setting))
    change.status = EmailChange.Status.WAITING_PERIOD
    change.effective_at = timezone.now() + timedelta(hours=wait_hours)
    change.cancel_token_hash = keyed_hash(token, purpose=HashPurpose.EMAIL_CHANGE_CANCEL)
    change.save(update_fields=["status", "effective_at", "cancel_token_hash", "updated_at"])
    user = change.user
    event = security_event_record(
        user=user,
        type=SecurityEvent.Type.EMAIL_CHANGE_SCHEDULED,
        context=AuditContext(actor_id=supervisor.pk),
        notify=False,
        details={
            "new_email": mask_email(change.new_email),
            "case": change.case.reference,
            "requester": change.requester.reference,
            "staff": _email_change_staff(change),
        },
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
        case=change.requester,
        type=CaseEvent.Type.EMAIL_CHANGE_SCHEDULED,
        actor=supervisor,
        visible_to_customer=True,
        details={
            "effective_at": change.effective_at.isoformat(),
            "security_event_id": event.pk,
            "email_change_id": change.pk,
        },
    )


def email_change_cancel(*, token: str) -> EmailChange | None:
    """The old address or the phone stops a scheduled change (single-use link).

    The owner's "no" is a security signal: the account goes on hold (never shortening a
    longer one), a security event records it, and the case goes back to the agents at high
    priority (or, when the account has another open case by now, that one is raised).
    """
    with transaction.atomic():
        change = (
            EmailChange.objects.select_for_update()
            .select_related("case", "requester", "user")
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
        user = change.user
        security_hold_extend(user=user, hours=_hold_hours(Action.LOGIN_EMAIL_CHANGE))
        event = security_event_record(
            user=user,
            type=SecurityEvent.Type.EMAIL_CHANGE_CANCELLED,
            notify=False,
            details={
                "new_email": mask_email(change.new_email),
                "case": change.case.reference,
                "requester": change.requester.reference,
            },
        )
        case_event_add(
            case=change.requester,
            type=CaseEvent.Type.EMAIL_CHANGE_CANCELLED,
            visible_to_customer=True,
            details={"email_change_id": change.pk, "security_event_id": event.pk},
        )
        _case_reopen_for_owner(change.case, user=user, email_change=change)
    return change


def email_changes_stop_for_frozen(*, user: User) -> int:
    """The owner froze the account: every change of its login email not yet applied ends.

    A freeze says someone else is at work; a change they talked support into must not
    take effect by itself when the wait is over, nor once support clears the freeze.
    Call inside the freeze's transaction. Returns how many changes ended.
    """
    changes = list(
        EmailChange.objects.select_for_update()
        .select_related("requester")
        .filter(user=user)
        .exclude(status__in=[EmailChange.Status.APPLIED, EmailChange.Status.CANCELLED])
    )
    for change in changes:
        _email_change_cancel(change, reason="account_frozen")
    return len(changes)


def _email_change_cancel(change: EmailChange, *, reason: str) -> None:
    """End a change that will not apply, with the reason on its requester's timeline."""
    change.status = EmailChange.Status.CANCELLED
    change.save(update_fields=["status", "updated_at"])
    case_event_add(
        case=change.requester,
        type=CaseEvent.Type.EMAIL_CHANGE_CANCELLED,
        visible_to_customer=True,
        details={"email_change_id": change.pk, "reason": reason},
    )


def _case_reopen_for_owner(case: RecoveryCase, *, user: User, email_change: EmailChange) -> None:
    """Put the account's case back in front of the agents at high priority."""
    case = RecoveryCase.objects.select_for_update().get(pk=case.pk)
    if not case.is_open:
        other = (
            RecoveryCase.objects.select_for_update()
            .filter(matched_user=user, status__in=OPEN_STATUSES)
            .first()
        )
        if other is not None:
            case = other
        else:
            case.status = CaseStatus.WAITING
            case.resolution = ""
            case.closed_at = None
            case.claimed_by = None
            case.lease_expires_at = None
            case.queued_at = timezone.now()
            case.save(
                update_fields=[
                    "status",
                    "resolution",
                    "closed_at",
                    "claimed_by",
                    "lease_expires_at",
                    "queued_at",
                    "updated_at",
                ]
            )
    case_event_add(
        case=case,
        type=CaseEvent.Type.REOPENED,
        details={"reason": "email_change_cancelled", "email_change_id": email_change.pk},
    )
    if case.priority < CasePriority.HIGH:
        case.priority = CasePriority.HIGH
        case.save(update_fields=["priority", "updated_at"])
        case_event_add(
            case=case, type=CaseEvent.Type.PRIORITY_RAISED, details={"to": CasePriority.HIGH}
        )


def email_changes_apply_due() -> int:
    """Apply changes whose waiting period is over; the notice goes to old and new address.

    A change whose account went on a security hold meanwhile waits until the hold ends; one
    whose address another account took meanwhile ends and its case returns to the agents.
    """
    applied = 0
    now = timezone.now()
    due = (
        EmailChange.objects.filter(
            status=EmailChange.Status.WAITING_PERIOD,
            effective_at__lte=now,
            user__frozen_at__isnull=True,
        )
        .exclude(user__security_hold_until__gt=now)
        .values_list("pk", flat=True)
    )
    for change_id in list(due):
        with transaction.atomic():
            change = (
                EmailChange.objects.select_for_update()
                .select_related("requester", "user")
                .filter(pk=change_id, status=EmailChange.Status.WAITING_PERIOD)
                .first()
            )
            if change is None:
                continue
            if User.objects.filter(email=change.new_email).exclude(pk=change.user_id).exists():
                # Taken during the wait (a sign-up, say): this change ends and goes back to
                # the agents; the others due still apply.
                _email_change_cancel(change, reason="address_taken")
                _case_reopen_for_owner(change.case, user=change.user, email_change=change)
                continue
            user_email_change(
                user=change.user,
                new_email=change.new_email,
                context=AuditContext(actor_id=change.requested_by_id),
                staff=_email_change_staff(change),
            )
            security_hold_extend(user=change.user, hours=_hold_hours(Action.LOGIN_EMAIL_CHANGE))
            change.status = EmailChange.Status.APPLIED
            change.save(update_fields=["status", "updated_at"])
            case_event_add(
                case=change.requester,
                type=CaseEvent.Type.EMAIL_CHANGE_APPLIED,
                visible_to_customer=True,
                details={"email_change_id": change.pk},
            )
            applied += 1
    return applied
