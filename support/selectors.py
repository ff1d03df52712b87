"""Reads on the support queue: queue position, wait estimate, timelines, requesters' proofs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, Min, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import TruncHour
from django.utils import timezone
from django.utils.functional import Promise
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.contacts import mask_email, mask_phone
from accounts.models import User
from accounts.policy import Action, Decision, Method, Proof, policy_check
from support.models import (
    OPEN_STATUSES,
    CaseApproval,
    CaseEvent,
    CaseEvidence,
    CasePriority,
    CaseProof,
    CaseStatus,
    EmailChange,
    RecoveryCase,
)
from support.roles import AGENTS_GROUP, SUPERVISORS_GROUP, is_supervisor

RESOLUTION_RATE_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class QueuePlace:
    position: int
    estimated_wait: timedelta | None


def case_queue_place(*, case: RecoveryCase) -> QueuePlace | None:
    """Where a waiting case stands: cases ahead of it, and that count over the recent rate.

    A request that joined an account's open case gets the place its own request would have
    had in the queue, so its page cannot tell that the number's account has an open case.
    """
    if case.status != CaseStatus.WAITING and not _reads_as_waiting(case):
        return None
    ahead = (
        RecoveryCase.objects.filter(status=CaseStatus.WAITING)
        .filter(
            Q(priority__gt=case.priority)
            | Q(priority=case.priority, queued_at__lt=case.queued_at)
            | Q(priority=case.priority, queued_at=case.queued_at, pk__lt=case.pk)
        )
        .count()
    )
    since = timezone.now() - RESOLUTION_RATE_WINDOW
    # The agents' rate: automated resolutions would make the wait look shorter than it is,
    # and each one would move every customer's estimate.
    closed = (
        RecoveryCase.objects.filter(
            closed_at__gte=since, status__in=[CaseStatus.RESOLVED, CaseStatus.REJECTED]
        )
        .exclude(resolution__in=RecoveryCase.AUTOMATED_RESOLUTIONS)
        .count()
    )
    per_hour = closed / (RESOLUTION_RATE_WINDOW.total_seconds() / 3600)
    wait = timedelta(hours=(ahead + 1) / per_hour) if per_hour else None
    return QueuePlace(position=ahead + 1, estimated_wait=wait)


def case_timeline_for_customer(*, case: RecoveryCase) -> QuerySet[CaseEvent]:
    """What a requester sees: the visible entries of their own request, nobody else's."""
    return case.events.filter(visible_to_customer=True).order_by("created_at", "id")


def _reads_as_waiting(request: RecoveryCase) -> bool:
    """A request whose page reads as one waiting for an agent whatever became of it.

    A request that joined an account's open case, and one that triage answered by itself
    (the login-email hint, or a lead to self-service), matched an account: their pages read
    as a request nobody matched (waiting, with the place its own request would have had).
    """
    return request.is_joined or (
        request.status == CaseStatus.RESOLVED
        and request.resolution in RecoveryCase.AUTOMATED_RESOLUTIONS
    )


def request_state_for_customer(*, request: RecoveryCase) -> Promise:
    """The state a requester's page shows, in words that depend on their request alone."""
    if _reads_as_waiting(request):
        return CaseStatus.WAITING.label
    return CaseStatus(request.status).label


def request_offers_self_service(*, request: RecoveryCase) -> bool:
    """Whether the page points to the self-service paths ("if you still know your
    password..."): on every help request that reads as waiting, matched or not."""
    return request.kind == RecoveryCase.Kind.HELP and (
        request.status == CaseStatus.WAITING or _reads_as_waiting(request)
    )


def request_offers_hint(*, request: RecoveryCase) -> bool:
    """Whether the page words the login-email hint ("if this number belongs to an
    account, we sent...") and offers "this did not help": on every waiting help request
    with a phone number, so it tells nobody which numbers have an account."""
    return (
        request.kind == RecoveryCase.Kind.HELP
        and bool(request.contact_phone)
        and (request.status == CaseStatus.WAITING or _reads_as_waiting(request))
    )


def request_evidence_for_customer(*, request: RecoveryCase) -> list[CaseEvidence]:
    """The files this requester uploaded, oldest first: their page says each arrived."""
    return list(
        request.evidence.only("original_name", "size", "uploaded_at").order_by("uploaded_at", "id")
    )


def request_find(*, request_id: Any) -> RecoveryCase | None:
    """The request a status-page session holds, or None (no id, or a request that is gone)."""
    return RecoveryCase.objects.filter(pk=request_id).first() if request_id else None


def request_email_change_proving(*, request: RecoveryCase) -> bool:
    """Whether this requester has a login-email change waiting for the new address's code."""
    return request.requested_email_changes.filter(status=EmailChange.Status.PROVING).exists()


def request_accepts_input(*, request: RecoveryCase) -> bool:
    """Whether a requester's page offers codes and replies (a joined request always does,
    so the page never changes with the state of the case it joined)."""
    return request.is_open or _reads_as_waiting(request)


PROOF_METHODS = {
    CaseProof.Kind.PHONE: Method.PHONE_CODE,
    CaseProof.Kind.EMAIL: Method.EMAIL_CODE,
    CaseProof.Kind.DOCUMENT: Method.DOCUMENT,
}


def _document_approver(proof: CaseProof) -> int | None:
    # Uses the prefetched approvals when there are any.
    for approval in proof.approvals.all():
        if approval.action == CaseApproval.Action.DOCUMENT and approval.approved:
            return approval.decided_by_id
    return None


def requester_proofs(*, requester: RecoveryCase) -> list[Proof]:
    """The proofs ONE requester gave, as the policy reads them.

    A document counts with the staff member who attested it and the supervisor who approved
    it; the policy refuses a document that one person both attested and approved.
    """
    proofs = []
    for proof in requester.proofs.all():
        method = PROOF_METHODS.get(CaseProof.Kind(proof.kind))
        if method is None:
            continue
        proofs.append(
            Proof(
                method=method,
                at=proof.created_at,
                attested_by=proof.attested_by_id if method == Method.DOCUMENT else None,
                approved_by=_document_approver(proof) if method == Method.DOCUMENT else None,
            )
        )
    return proofs


def email_change_proofs(*, change: EmailChange) -> list[Proof]:
    """The proofs for one login-email change: its requester's, and the new address's code."""
    proofs = requester_proofs(requester=change.requester)
    if change.proven_at is not None:
        proofs.append(Proof(method=Method.NEW_EMAIL_CODE, at=change.proven_at))
    return proofs


def requester_decision(*, requester: RecoveryCase, action: Action) -> Decision:
    return policy_check(action, requester_proofs(requester=requester), now=timezone.now())


def email_change_decision(*, change: EmailChange) -> Decision:
    return policy_check(
        Action.LOGIN_EMAIL_CHANGE, email_change_proofs(change=change), now=timezone.now()
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
                document_approved=document is not None and _document_approver(document) is not None,
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
        cases = cases.filter(status=CaseStatus.CLAIMED, claimed_by=user)
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
    """Pending approvals with what each names: a document check or one email change."""
    return (
        CaseApproval.objects.filter(decided_at__isnull=True)
        .select_related(
            "case",
            "requested_by",
            "proof__case",
            "proof__attested_by",
            "email_change__requester",
        )
        .order_by("created_at")
    )


def _hourly(queryset: QuerySet, field: str, since: datetime, hours: int) -> list[int]:
    counts = dict(
        queryset.filter(**{f"{field}__gte": since})
        .annotate(hour=TruncHour(field))
        .values("hour")
        .annotate(n=Count("id"))
        .values_list("hour", "n")
    )
    start = since.replace(minute=0, second=0, microsecond=0)
    return [counts.get(start + timedelta(hours=i), 0) for i in range(hours)]


def queue_stats(*, hours: int = 48) -> dict:
    """The supervisor's view of the queue (also `manage.py queue_stats`)."""
    now = timezone.now()
    cases = RecoveryCase.objects.all()
    backlog = {
        f"{row['status']}/{CasePriority(row['priority']).label}": row["n"]
        for row in cases.filter(status__in=OPEN_STATUSES)
        .values("status", "priority")
        .annotate(n=Count("id"))
        .order_by("status", "priority")
    }
    oldest = cases.filter(status=CaseStatus.WAITING).aggregate(oldest=Min("queued_at"))["oldest"]
    day_ago = now - timedelta(hours=24)
    resolved_24h = cases.filter(
        closed_at__gte=day_ago, status__in=[CaseStatus.RESOLVED, CaseStatus.REJECTED]
    )
    durations = sorted(
        (closed - created).total_seconds()
        for created, closed in resolved_24h.values_list("created_at", "closed_at")[:20000]
        if closed is not None
    )
    week = cases.filter(created_at__gte=now - timedelta(days=7))
    total_week = week.count()
    deflected = week.filter(resolution=RecoveryCase.Resolution.WRONG_EMAIL_HINT_SENT).count()
    rate = resolved_24h.count() / 24
    waiting = cases.filter(status=CaseStatus.WAITING).count()
    per_agent = list(
        CaseEvent.objects.filter(
            created_at__gte=day_ago,
            actor__isnull=False,
            type__in=[
                CaseEvent.Type.LOGIN_EMAIL_TOLD,
                CaseEvent.Type.REAUTHENTICATED,
                CaseEvent.Type.REJECTED,
            ],
        )
        .values("actor__email")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    since = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    return {
        "backlog": backlog,
        "waiting": waiting,
        "oldest_waiting_seconds": int((now - oldest).total_seconds()) if oldest else 0,
        "resolutions_per_hour": round(rate, 2),
        "median_resolution_seconds": int(median(durations)) if durations else None,
        "deflection_rate": round(deflected / total_week, 4) if total_week else None,
        "per_agent_24h": {row["actor__email"]: row["n"] for row in per_agent},
        "projected_clear_hours": round(waiting / rate, 1) if rate else None,
        "pending_approvals": CaseApproval.objects.filter(decided_at__isnull=True).count(),
        "arrivals_hourly": _hourly(cases, "created_at", since, hours),
        "resolutions_hourly": _hourly(
            cases.filter(status__in=[CaseStatus.RESOLVED, CaseStatus.REJECTED]),
            "closed_at",
            since,
            hours,
        ),
        "hours_start": since.isoformat(),
    }


HANDLING_RATE_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class HandlingRate:
    """Cases one agent closes per hour, and whether the queue measured it or a setting gave it."""

    cases_per_hour: float
    measured_cases: int
    source: str  # "queue" or the name of the setting


def agent_handling_rate(*, now: datetime | None = None) -> HandlingRate:
    """The agents' handling rate over the last 7 days of the queue, else the setting.

    A case counts when an agent closed it (resolved or rejected after a claim); automated
    resolutions (the login-email hint) are excluded. The time is from the agent's last claim
    to the close, and the median of those times sets the rate: a claim left open overnight
    does not drag it down.
    """
    now = now or timezone.now()
    last_claim = (
        CaseEvent.objects.filter(
            case=OuterRef("pk"), type=CaseEvent.Type.CLAIMED, created_at__lte=OuterRef("closed_at")
        )
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    spans = [
        (closed - claimed).total_seconds()
        for claimed, closed in RecoveryCase.objects.filter(
            closed_at__gte=now - HANDLING_RATE_WINDOW,
            status__in=[CaseStatus.RESOLVED, CaseStatus.REJECTED],
        )
        .exclude(resolution=RecoveryCase.Resolution.WRONG_EMAIL_HINT_SENT)
        .annotate(claimed_at=Subquery(last_claim))
        .filter(claimed_at__isnull=False)
        .values_list("claimed_at", "closed_at")
    ]
    seconds = median(spans) if spans else 0
    if seconds <= 0:
        return HandlingRate(
            cases_per_hour=float(settings.FORECAST_CASES_PER_AGENT_HOUR),
            measured_cases=0,
            source="FORECAST_CASES_PER_AGENT_HOUR",
        )
    return HandlingRate(
        cases_per_hour=round(3600 / seconds, 2), measured_cases=len(spans), source="queue"
    )
