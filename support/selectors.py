"""Reads on the support queue: queue position, wait estimate, the customer's timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from support.models import CaseEvent, CaseStatus, RecoveryCase

RESOLUTION_RATE_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class QueuePlace:
    position: int
    estimated_wait: timedelta | None


def case_queue_place(*, case: RecoveryCase) -> QueuePlace | None:
    """Where a waiting case stands: cases ahead of it, and that count over the recent rate."""
    if case.status != CaseStatus.WAITING:
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
    closed = RecoveryCase.objects.filter(
        closed_at__gte=since, status__in=[CaseStatus.RESOLVED, CaseStatus.REJECTED]
    ).count()
    per_hour = closed / (RESOLUTION_RATE_WINDOW.total_seconds() / 3600)
    wait = timedelta(hours=(ahead + 1) / per_hour) if per_hour else None
    return QueuePlace(position=ahead + 1, estimated_wait=wait)


def case_timeline_for_customer(*, case: RecoveryCase) -> QuerySet[CaseEvent]:
    return case.events.filter(visible_to_customer=True).order_by("created_at", "id")
