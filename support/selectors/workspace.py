"""The agent's workspace: cases, requesters, account summaries, actions offered, timelines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.contacts import mask_email, mask_phone
from accounts.models import SecurityEvent, User
from accounts.policy import SMS_SECRET_LIFETIME, Action, Decision
from notifications.models import Notification
from notifications.selectors import notification_list_after
from support.canned import REJECTION_REASONS, canned_text
from support.models import (
    OPEN_STATUSES,
    CaseApproval,
    CaseEvent,
    CaseEvidence,
    CaseProof,
    CaseStatus,
    EmailChange,
    RecoveryCase,
)
from support.roles import AGENTS_GROUP, SUPERVISORS_GROUP, is_supervisor
from support.selectors.metrics import sla_for
from support.selectors.proofs import (
    document_approver,
    email_change_decision,
    requester_decision,
)


@dataclass(frozen=True)
class EmailChangeForAgent:
    change: EmailChange
    masked_new_email: str
    decision: Decision
    approval_pending: bool


@dataclass(frozen=True)
class RequesterForAgent:
    """One requester of a case as the agent sees them: their own data, files and proofs."""

    request: RecoveryCase
    opened_case: bool
    submitted: dict
    evidence: list
    messages: list[CaseEvent]
    proofs: dict[str, CaseProof]
    document_approved: bool
    decisions: dict[str, Decision]
    email_changes: list[EmailChangeForAgent]


def case_requesters_for_agent(*, case: RecoveryCase) -> list[RequesterForAgent]:
    """Every requester of the case, the one who opened it first, each with what the policy
    still needs from them for each action (in a fixed number of queries)."""
    requests = list(
        RecoveryCase.objects.filter(Q(pk=case.pk) | Q(merged_into=case))
        .select_related("matched_user")
        .prefetch_related(
            Prefetch(
                "proofs",
                queryset=CaseProof.objects.select_related("attested_by").prefetch_related(
                    "approvals"
                ),
            ),
            "evidence",
            Prefetch(
                "requested_email_changes",
                queryset=EmailChange.objects.exclude(
                    status__in=[EmailChange.Status.APPLIED, EmailChange.Status.CANCELLED]
                )
                .prefetch_related("approvals")
                .order_by("created_at"),
            ),
        )
        .order_by("created_at", "id")
    )
    requests.sort(key=lambda request: request.pk != case.pk)
    messages: dict[int, list[CaseEvent]] = {request.pk: [] for request in requests}
    for event in CaseEvent.objects.filter(
        case__in=requests, type=CaseEvent.Type.CUSTOMER_MESSAGE
    ).order_by("created_at", "id"):
        messages[event.case_id].append(event)
    result = []
    for request in requests:
        proofs = {proof.kind: proof for proof in request.proofs.all()}
        document = proofs.get(CaseProof.Kind.DOCUMENT)
        changes = []
        for change in request.requested_email_changes.all():
            change.requester = request
            changes.append(
                EmailChangeForAgent(
                    change=change,
                    masked_new_email=mask_email(change.new_email),
                    decision=email_change_decision(change=change),
                    approval_pending=any(a.decided_at is None for a in change.approvals.all()),
                )
            )
        result.append(
            RequesterForAgent(
                request=request,
                opened_case=request.pk == case.pk,
                submitted=case_submission_for_agent(case=request),
                evidence=list(request.evidence.all()),
                messages=messages[request.pk],
                proofs=proofs,
                document_approved=document is not None and document_approver(document) is not None,
                decisions={
                    str(action): requester_decision(requester=request, action=action)
                    for action in (Action.TELL_LOGIN_EMAIL, Action.REAUTHENTICATE)
                },
                email_changes=changes,
            )
        )
    return result


@dataclass(frozen=True)
class AccountSummary:
    """What an agent may see of the matched account: masked contacts, ages, states."""

    masked_email: str
    masked_phone: str
    joined: datetime
    last_login: datetime | None
    two_factor_enabled: bool
    reenrolment_required: bool
    frozen: bool
    on_hold_until: datetime | None
    recent_events: list


def account_summary_for_agent(*, user: User | None) -> AccountSummary | None:
    if user is None:
        return None
    from accounts.selectors import security_event_list_recent, user_has_authenticator

    return AccountSummary(
        masked_email=mask_email(user.email),
        masked_phone=mask_phone(user.phone),
        joined=user.date_joined,
        last_login=user.last_login,
        two_factor_enabled=user_has_authenticator(user=user),
        reenrolment_required=user.reenrolment_required,
        frozen=user.frozen_at is not None,
        on_hold_until=user.security_hold_until if user.on_security_hold else None,
        recent_events=list(security_event_list_recent(user=user, limit=10)),
    )


def case_submission_for_agent(*, case: RecoveryCase) -> dict:
    """What the customer typed, masked, with whether it matches the account's contacts."""
    user = case.matched_user
    return {
        "contact_email": mask_email(case.contact_email),
        "contact_phone": mask_phone(case.contact_phone),
        "emails_tried": [mask_email(email) for email in case.emails_tried],
        "contact_email_on_file": user is not None and case.contact_email == user.email,
        "contact_phone_on_file": user is not None
        and bool(case.contact_phone)
        and case.contact_phone == user.phone,
        "email_tried_on_file": user is not None and user.email in case.emails_tried,
    }


def case_get_for_agent(*, case_id: int, user: User) -> RecoveryCase:
    """The case a staff member may open: any case for a supervisor, else the one they hold.

    Raises `RecoveryCase.DoesNotExist` both for a case that does not exist and for one that
    is not theirs (held by another agent, waiting in the queue, closed), so the answer never
    tells an agent which case ids exist or what happens to cases they do not hold.
    """
    cases = RecoveryCase.objects.select_related("matched_user", "claimed_by").prefetch_related(
        "proofs", "approvals", "email_changes"
    )
    # A request that joined another case is a requester of that case, not a case.
    cases = cases.filter(merged_into__isnull=True)
    if not is_supervisor(user):
        cases = cases.filter(
            status=CaseStatus.CLAIMED, claimed_by=user, lease_expires_at__gt=timezone.now()
        )
    return cases.get(pk=case_id)


def case_rows_for_staff(queryset: QuerySet, *, user: User, case_field: str = "") -> QuerySet:
    """The rows of `queryset` that belong to cases `user` may open, by the rule of
    `case_get_for_agent`: every case for a supervisor; for anyone else the case they hold
    and the requests that joined it.

    `case_field` leads from a row to its case ("" when the rows are cases). Every admin
    list, page and autocomplete that names cases reads through this, so an agent learns no
    reference or contact of a case they do not hold, and a case that is not theirs answers
    as one that does not exist.
    """
    if is_supervisor(user):
        return queryset
    at = f"{case_field}__" if case_field else ""
    held = Q(
        **{
            f"{at}status": CaseStatus.CLAIMED,
            f"{at}claimed_by": user,
            f"{at}merged_into__isnull": True,
        }
    )
    joined_to_held = Q(
        **{f"{at}merged_into__status": CaseStatus.CLAIMED, f"{at}merged_into__claimed_by": user}
    )
    return queryset.filter(held | joined_to_held)


def case_evidence_get(*, case: RecoveryCase, evidence_id: int) -> CaseEvidence:
    """A file of any requester of the case (raises `CaseEvidence.DoesNotExist` otherwise)."""
    return CaseEvidence.objects.get(Q(case=case) | Q(case__merged_into=case), pk=evidence_id)


def agent_list_active() -> QuerySet[User]:
    """Staff who can hold a case: active agents and supervisors (a supervisor reassigns to them)."""
    return (
        User.objects.filter(is_staff=True, is_active=True)
        .filter(Q(groups__name__in=[AGENTS_GROUP, SUPERVISORS_GROUP]) | Q(is_superuser=True))
        .distinct()
        .order_by("email")
    )


def agent_list_assignable() -> QuerySet[User]:
    """Staff a supervisor may give a case to: they can sign in and hold no case now.

    Active staff with the agent or supervisor role and a confirmed authenticator (the
    admin asks for it at every sign-in), who hold no claimed case (one case per agent).
    """
    return (
        agent_list_active()
        .filter(Exists(TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)))
        .exclude(
            Exists(
                RecoveryCase.objects.filter(claimed_by=OuterRef("pk"), status=CaseStatus.CLAIMED)
            )
        )
    )


def case_timeline_for_staff(*, case: RecoveryCase) -> QuerySet[CaseEvent]:
    """The case's timeline with every requester's own entries, each naming its request."""
    return (
        CaseEvent.objects.filter(Q(case=case) | Q(case__merged_into=case))
        .select_related("actor", "case")
        .order_by("created_at", "id")
    )


def approval_list_pending() -> QuerySet[CaseApproval]:
    """Pending approvals of open cases, with what each names: a document check or one
    email change. A closed case's approval can no longer be decided."""
    return (
        CaseApproval.objects.filter(decided_at__isnull=True, case__status__in=OPEN_STATUSES)
        .select_related(
            "case",
            "requested_by",
            "proof__case",
            "proof__attested_by",
            "email_change__requester",
        )
        .order_by("created_at")
    )


# --- The agent's workspace ------------------------------------------------------------------

# Actions that cannot be undone: the page asks for a confirmation that says what happens.
CONFIRMED_ACTIONS = frozenset({"reauthenticate", "tell_login_email", "reject", "approve"})
# Actions that close the case: their confirmation offers to take the next case at once.
CLOSING_ACTIONS = frozenset({"reauthenticate", "tell_login_email", "reject"})


def case_lease_active(*, case: RecoveryCase, user: User) -> bool:
    """Whether `user` holds `case` now (a claim whose lease has not run out)."""
    return (
        case.status == CaseStatus.CLAIMED
        and case.claimed_by_id == user.pk
        and (case.lease_expires_at is None or case.lease_expires_at > timezone.now())
    )


@dataclass(frozen=True)
class OfferedActions:
    """What the case page offers: actions on the case, per requester, and approvals."""

    case: frozenset[str]
    requester: dict[int, frozenset[str]]
    approvals: list[CaseApproval]

    def for_requester(self, requester_id: int) -> frozenset[str]:
        return self.requester.get(requester_id, frozenset())


def _requester_actions(*, case: RecoveryCase, requester: RequesterForAgent) -> frozenset[str]:
    """What the holder can do for one requester, from the state of their proofs and the
    policy's decisions (the same `policy_check` the services ask)."""
    account = case.matched_user
    window = timezone.now() - timedelta(hours=24)
    fresh = {kind for kind, proof in requester.proofs.items() if proof.created_at >= window}
    offered = {"reveal_requester"}
    if account is not None:
        offered.add("start_email_change")
        if account.phone and CaseProof.Kind.PHONE not in fresh:
            offered.add("send_phone_code")
        if CaseProof.Kind.EMAIL not in fresh:
            offered.add("send_email_code")
    document = requester.proofs.get(CaseProof.Kind.DOCUMENT)
    if requester.evidence and document is None:
        offered.add("attest_document")
    if (
        document is not None
        and not requester.document_approved
        and not any(a.decided_at is None for a in document.approvals.all())
    ):
        offered.add("request_document_approval")
    for action, decision in requester.decisions.items():
        if decision.allowed and account is not None:
            offered.add(action)
    if any(item.decision.allowed and not item.approval_pending for item in requester.email_changes):
        offered.add("request_email_change_approval")
    return frozenset(offered)


def case_actions_offered(
    *, case: RecoveryCase, requesters: list[RequesterForAgent], user: User
) -> OfferedActions:
    """The actions the case page shows `user`: only those the case's state, the holder's
    claim, the role and each requester's proofs allow. The services check again."""
    holds = case_lease_active(case=case, user=user)
    supervisor = is_supervisor(user)
    offered: set[str] = set()
    if holds:
        offered |= {"ask_customer", "reject", "escalate", "release", "note", "renew"}
        if case.matched_user is not None:
            offered.add("reveal")
    if supervisor:
        offered.add("note")
        if case.is_open:
            offered.add("reassign")
    approvals: list[CaseApproval] = []
    if supervisor:
        approvals = [
            approval
            for approval in approval_list_pending().filter(case=case)
            if approval.requested_by_id != user.pk
            and (approval.proof is None or approval.proof.attested_by_id != user.pk)
            and (approval.email_change is None or approval.email_change.requested_by_id != user.pk)
        ]
        if approvals:
            offered |= {"approve", "deny"}
    per_requester = {
        r.request.pk: _requester_actions(case=case, requester=r) if holds else frozenset()
        for r in requesters
    }
    return OfferedActions(case=frozenset(offered), requester=per_requester, approvals=approvals)


def case_action_is_offered(
    *, case: RecoveryCase, user: User, action: str, cleaned_data: dict
) -> bool:
    """Whether the case page offers `action` to `user` for the posted requester or approval."""
    offered = case_actions_offered(
        case=case, requesters=case_requesters_for_agent(case=case), user=user
    )
    if action in ("approve", "deny"):
        return any(a.pk == cleaned_data.get("approval_id") for a in offered.approvals)
    if action in offered.case:
        return True
    requester = cleaned_data.get("requester") or case.pk
    return action in offered.for_requester(requester)


def _proven_channel(requester: RecoveryCase) -> str | None:
    """The channel re-authentication sends its link to: the email when proven, else SMS."""
    since = timezone.now() - timedelta(hours=24)
    kinds = set(requester.proofs.filter(created_at__gte=since).values_list("kind", flat=True))
    if CaseProof.Kind.EMAIL in kinds:
        return "email"
    if CaseProof.Kind.PHONE in kinds:
        return "sms"
    return None


def case_action_consequences(*, case: RecoveryCase, action: str, cleaned_data: dict) -> list[str]:
    """What an irreversible action will do, in words, for its confirmation step."""

    user = case.matched_user
    requester_id = cleaned_data.get("requester")
    requester = case
    if requester_id and requester_id != case.pk:
        requester = RecoveryCase.objects.filter(pk=requester_id, merged_into=case).first() or case
    if action == "reauthenticate" and user is not None:
        channel = _proven_channel(requester)
        link = (
            _("A single-use recovery link goes by email to %(address)s, valid %(hours)s hours.")
            % {"address": mask_email(user.email), "hours": settings.RECOVERY_LINK_HOURS}
            if channel == "email"
            else _(
                "A single-use recovery link goes by text message to %(phone)s, valid "
                "%(minutes)s minutes."
            )
            % {
                "phone": mask_phone(user.phone),
                "minutes": int(SMS_SECRET_LIFETIME.total_seconds() // 60),
            }
        )
        return [
            _("Every session of the account ends; its authenticator and backup codes are removed."),
            link,
            _("The account is on a security hold for %(hours)s hours.")
            % {"hours": settings.SECURITY_HOLD_HOURS_RECOVERY},
            _("Every contact on file is told."),
            _("The case is resolved and closed."),
        ]
    if action == "tell_login_email" and user is not None:
        told = [
            _("The login email goes by email to %(address)s.") % {"address": mask_email(user.email)}
        ]
        if user.phone:
            told.append(
                _("A text message to %(phone)s names it, masked.")
                % {"phone": mask_phone(user.phone)}
            )
        return [*told, _("The case is resolved and closed.")]
    if action == "reject":
        reason = cleaned_data.get("reason", "")
        text = canned_text(REJECTION_REASONS, reason, case.language) if reason else ""
        return [
            _("The case closes without recovery; this cannot be undone.")
            + " "
            + _("The customer is told by email at %(address)s, with this reason: %(reason)s")
            % {"address": mask_email(case.contact_email), "reason": text},
        ]
    if action == "approve":
        approval = approval_list_pending().filter(pk=cleaned_data.get("approval_id") or 0).first()
        if approval is None:
            return []
        if approval.email_change is not None:
            return [
                _(
                    "The login email changes to %(address)s after %(hours)s hours, unless the "
                    "old address or the phone cancels it; both are told now."
                )
                % {
                    "address": mask_email(approval.email_change.new_email),
                    "hours": settings.EMAIL_CHANGE_WAIT_HOURS,
                },
                _("The case is resolved and closed."),
            ]
        return [
            _("The document check of %(requester)s counts as a proof.")
            % {"requester": approval.proof.case.reference if approval.proof else case.reference},
            _("The case goes back to %(agent)s, who asked.")
            % {"agent": approval.requested_by.email},
        ]
    return []


def _sent_what(template_key: str) -> str:

    words = {
        "support/recovery_link": _("recovery link"),
        "support/login_email_hint": _("login email"),
        "support/case_updated": _("case update with a status link"),
        "support/case_link": _("status link"),
        "support/proof_code": _("verification code"),
        "support/email_change_scheduled": _("notice of the email change, with a cancel link"),
    }
    if template_key.startswith("security/"):
        return _("security notice")
    return words.get(template_key, template_key)


def case_notifications_sent_after(*, case: RecoveryCase, after_id: int) -> list[str]:
    """What went out for the case since the outbox mark `after_id`, as "what → where"
    lines with masked addresses (for the summary after an agent's action)."""

    contacts = list(
        RecoveryCase.objects.filter(Q(pk=case.pk) | Q(merged_into=case)).values_list(
            "contact_email", flat=True
        )
    )
    lines = []
    for notice in notification_list_after(
        after_id=after_id, account_id=case.matched_user_id, recipients=contacts
    ):
        if notice.channel == Notification.Channel.SMS:
            where = _("text message to %(phone)s") % {"phone": mask_phone(notice.recipient)}
        else:
            where = _("email to %(address)s") % {"address": mask_email(notice.recipient)}
        lines.append(f"{_sent_what(notice.template_key)} → {where}")
    return lines


def case_list_returning_to(*, agent: User) -> QuerySet[RecoveryCase]:
    """Cases a supervisor decided on that wait for the agent who asked."""
    return RecoveryCase.objects.filter(status=CaseStatus.WAITING, returns_to=agent).order_by(
        "queued_at"
    )


@dataclass(frozen=True)
class LapsedClaim:
    case: RecoveryCase
    expired_at: datetime


def case_claim_lapsed(*, case_id: int, user: User) -> LapsedClaim | None:
    """The case whose claim by `user` ran out, when that is the last thing that happened to
    their claim (None otherwise: the case page then answers as for any case not theirs)."""
    case = RecoveryCase.objects.filter(pk=case_id, merged_into__isnull=True).first()
    if case is None:
        return None
    if (
        case.status == CaseStatus.CLAIMED
        and case.claimed_by_id == user.pk
        and case.lease_expires_at is not None
        and case.lease_expires_at <= timezone.now()
    ):
        return LapsedClaim(case=case, expired_at=case.lease_expires_at)
    last = (
        case.events.filter(type__in=[CaseEvent.Type.CLAIMED, CaseEvent.Type.LEASE_EXPIRED])
        .order_by("-created_at", "-id")
        .first()
    )
    if (
        last is not None
        and last.type == CaseEvent.Type.LEASE_EXPIRED
        and last.details.get("agent_id") == user.pk
    ):
        return LapsedClaim(case=case, expired_at=last.created_at)
    return None


# Statuses as staff speak of them (the customers' words are the model's labels).
STAFF_STATUS_LABELS = {
    CaseStatus.NEW: _lazy("new, not yet triaged"),
    CaseStatus.WAITING: _lazy("in the queue"),
    CaseStatus.CLAIMED: _lazy("claimed by an agent"),
    CaseStatus.AWAITING_CUSTOMER: _lazy("waiting for the customer"),
    CaseStatus.RESOLVED: _lazy("resolved"),
    CaseStatus.REJECTED: _lazy("rejected"),
    CaseStatus.ESCALATED: _lazy("escalated to supervisors"),
    CaseStatus.CANCELLED: _lazy("cancelled"),
    CaseStatus.MERGED: _lazy("joined another case"),
}


def status_for_staff(status: str) -> Promise:
    return STAFF_STATUS_LABELS.get(CaseStatus(status), _lazy("unknown"))


@dataclass(frozen=True)
class EarlierCase:
    reference: str
    status: Promise
    resolution: str
    created_at: datetime


@dataclass(frozen=True)
class AccountHistory:
    earlier_cases: list[EarlierCase]
    disputed_event: Any


def account_history_for_agent(*, case: RecoveryCase) -> AccountHistory:
    """The account's earlier cases and, for a "this wasn't me" case, the event it disputes."""

    earlier: list[EarlierCase] = []
    disputed = None
    if case.matched_user_id is not None:
        for row in (
            RecoveryCase.objects.filter(matched_user_id=case.matched_user_id, merged_into=None)
            .exclude(pk=case.pk)
            .order_by("-created_at")[:10]
        ):
            earlier.append(
                EarlierCase(
                    reference=row.reference,
                    status=status_for_staff(row.status),
                    resolution=row.get_resolution_display() if row.resolution else "",
                    created_at=row.created_at,
                )
            )
    if case.kind == RecoveryCase.Kind.NOT_ME and case.matched_user_id is not None:
        frozen = case.events.filter(type=CaseEvent.Type.FROZEN).first()
        event_id = frozen.details.get("security_event_id") if frozen else None
        if event_id:
            disputed = SecurityEvent.objects.filter(
                pk=event_id, account_id=case.matched_user_id
            ).first()
    return AccountHistory(earlier_cases=earlier, disputed_event=disputed)


@dataclass(frozen=True)
class CaseAge:
    age: timedelta
    sla: timedelta
    due_at: datetime
    breached: bool
    closed: bool


def case_age_against_sla(*, case: RecoveryCase) -> CaseAge:
    """How old the case is against the time its priority promises (`SUPPORT_SLA_HOURS`)."""
    end = case.closed_at or timezone.now()
    sla = sla_for(case.priority)
    return CaseAge(
        age=end - case.created_at,
        sla=sla,
        due_at=case.created_at + sla,
        breached=end - case.created_at > sla,
        closed=case.closed_at is not None,
    )


@dataclass(frozen=True)
class TimelineRow:
    at: datetime
    what: str
    requester: str
    who: str
    note: str
    internal: bool
    to_customer: bool
    could_prove: str


def _kind_words(kind: str | None) -> str:
    try:
        return str(CaseProof.Kind(kind or "").label)
    except ValueError:
        return ""


def _channel_words(channel: str | None) -> str:

    return {"sms": _("by text message"), "email": _("by email")}.get(channel or "", "")


def _event_in_words(event: CaseEvent) -> str:
    """One timeline row in staff words: which proof, which channel, approved or denied."""

    details = event.details or {}
    kind = _kind_words(details.get("kind"))
    channel = _channel_words(details.get("channel"))
    T = CaseEvent.Type
    if event.type == T.PROOF_ADDED:
        return _("Proof recorded: %(kind)s, code %(channel)s") % {"kind": kind, "channel": channel}
    if event.type == T.CODE_SENT:
        if details.get("delivered") is False:
            return _("Customer asked for a code for %(kind)s: none on file, nothing sent") % {
                "kind": kind
            }
        return _("Verification code sent %(channel)s for %(kind)s") % {
            "channel": channel,
            "kind": kind,
        }
    if event.type == T.CODE_FAILED:
        return _("Wrong verification code for %(kind)s") % {"kind": kind}
    if event.type in (T.APPROVAL_REQUESTED, T.APPROVAL_DECIDED):
        try:
            action = str(CaseApproval.Action(details.get("action") or "").label)
        except ValueError:
            action = ""
        if event.type == T.APPROVAL_REQUESTED:
            return _("Supervisor approval asked for: %(action)s") % {"action": action}
        if details.get("approved"):
            return _("Supervisor approved: %(action)s") % {"action": action}
        return _("Supervisor denied: %(action)s") % {"action": action}
    if event.type == T.REAUTHENTICATED:
        return _("Re-authenticated: recovery link sent %(channel)s") % {"channel": channel}
    if event.type == T.LOGIN_EMAIL_TOLD:
        return _("Login email told to the email and phone on file")
    if event.type == T.RELEASED:
        return _("Given back to the queue")
    if event.type == T.LEASE_EXPIRED:
        return _("Claim ran out; back to the queue")
    if event.type == T.DOCUMENT_CHECKED:
        return _("Documents checked and attested")
    if event.type == T.CONTACT_REVEALED:
        return f"{event.get_type_display()}: {details.get('field', '')}"
    return str(event.get_type_display())


def case_timeline_in_words(*, case: RecoveryCase) -> list[TimelineRow]:
    """The staff timeline with every row in words; internal notes are marked as such."""

    return [
        TimelineRow(
            at=event.created_at,
            what=_event_in_words(event),
            requester=event.case.reference,
            who=event.actor.email if event.actor else _("customer or system"),
            note=event.message,
            internal=event.type == CaseEvent.Type.NOTE,
            to_customer=event.visible_to_customer,
            could_prove=event.could_prove_in_words,
        )
        for event in case_timeline_for_staff(case=case)
    ]


@dataclass(frozen=True)
class ApprovalWithProofs:
    approval: CaseApproval
    proofs: list[CaseProof]


def approval_list_pending_with_proofs() -> list[ApprovalWithProofs]:
    """Pending approvals, each with the proofs of the requester it concerns."""
    result = []
    for approval in approval_list_pending():
        if approval.proof is not None:
            requester = approval.proof.case
        elif approval.email_change is not None:
            requester = approval.email_change.requester
        else:
            requester = approval.case
        result.append(
            ApprovalWithProofs(
                approval=approval,
                proofs=list(requester.proofs.select_related("attested_by").order_by("created_at")),
            )
        )
    return result
