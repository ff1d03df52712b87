"""What a requester sees of their request: state, queue place, wait, timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils.functional import Promise

from support.models import (
    CaseEvent,
    CaseEvidence,
    CaseStatus,
    EmailChange,
    RecoveryCase,
)
from support.selectors.metrics import wait_range


@dataclass(frozen=True)
class QueuePlace:
    position: int
    # The estimated wait as (shortest, longest), from the agents' recent rate; None without one.
    wait_range: tuple[timedelta, timedelta] | None


def case_queue_place(*, case: RecoveryCase) -> QueuePlace | None:
    """Where a waiting case stands: cases ahead of it, and the wait at the agents' recent
    resolution rate as a range (`wait_range`).

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
    wait = wait_range(position=ahead + 1)
    return QueuePlace(position=ahead + 1, wait_range=wait)


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
    so the page never changes with the state of the case it joined; a case closed for want
    of an answer does, so that the answer opens it again)."""
    return (
        request.is_open
        or _reads_as_waiting(request)
        or request.resolution == RecoveryCase.Resolution.NO_ANSWER
    )
