"""Queue figures: resolution and handling rates, wait ranges and the dashboard's metrics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from django.conf import settings
from django.db.models import Count, Min, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import TruncHour
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext as _

from notifications.selectors import notification_held_counts
from support.models import (
    OPEN_STATUSES,
    CaseApproval,
    CaseEvent,
    CasePriority,
    CaseStatus,
    RecoveryCase,
)


def duration_in_words(seconds: float | None) -> str:
    """A duration as people say it, in the page's language ("2 hours, 5 minutes")."""

    if seconds is None:
        return "—"
    if seconds < 60:
        return _("less than a minute")
    now = timezone.now()
    return timesince(now - timedelta(seconds=seconds), now)


def sla_for(priority: int) -> timedelta:
    """The service level a case of `priority` is promised (`SUPPORT_SLA_HOURS`)."""
    return timedelta(hours=settings.SUPPORT_SLA_HOURS[CasePriority(priority).name.lower()])


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


AUTOMATED = RecoveryCase.AUTOMATED_RESOLUTIONS
CLOSED = [CaseStatus.RESOLVED, CaseStatus.REJECTED]
# Timeline rows that close a case, by the kind of resolution they count as for their actor.
RESOLVING_EVENTS = {
    CaseEvent.Type.REAUTHENTICATED: RecoveryCase.Resolution.REAUTHENTICATED,
    CaseEvent.Type.LOGIN_EMAIL_TOLD: RecoveryCase.Resolution.LOGIN_EMAIL_TOLD,
    CaseEvent.Type.REJECTED: RecoveryCase.Resolution.REJECTED,
    CaseEvent.Type.EMAIL_CHANGE_SCHEDULED: RecoveryCase.Resolution.EMAIL_CHANGED,
}


def _median(values: list[float]) -> float | None:
    return median(values) if values else None


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def agent_resolution_rate(*, now: datetime | None = None) -> float:
    """Cases the agents closed per hour over the last `SUPPORT_ETA_WINDOW_HOURS`, the
    automated ones left out (they never waited in the queue)."""
    now = now or timezone.now()
    hours = settings.SUPPORT_ETA_WINDOW_HOURS
    closed = (
        RecoveryCase.objects.filter(
            status__in=CLOSED, closed_at__gte=now - timedelta(hours=hours), closed_at__lte=now
        )
        .exclude(resolution__in=AUTOMATED)
        .count()
    )
    return closed / hours


def wait_range(*, position: int, now: datetime | None = None) -> tuple[timedelta, timedelta] | None:
    """How long `position` cases take at the agents' recent rate, as a range.

    With k resolutions in the window, the rate is uncertain by about √k (Poisson): the range
    runs from the wait at (k + √k) to the wait at (k - √k), never below half of k.
    """
    hours = settings.SUPPORT_ETA_WINDOW_HOURS
    resolved = agent_resolution_rate(now=now) * hours
    if not resolved:
        return None
    spread = resolved**0.5
    fast, slow = resolved + spread, max(resolved - spread, resolved / 2)
    return (
        timedelta(hours=position * hours / fast),
        timedelta(hours=position * hours / slow),
    )


def queue_stats(*, hours: int = 48, days: int = 7, now: datetime | None = None) -> dict:
    """The support metrics of the dashboard and `manage.py queue_stats`, over `days` days.

    - first response: from a request's arrival to the first thing staff sent its customer;
    - resolution time: opening to closing of the cases agents closed (automated left out);
    - SLA attainment per priority: of the cases agents closed, the share closed within the
      priority's `SUPPORT_SLA_HOURS`;
    - reopen rate: of the cases closed, the share that was reopened at some point;
    - deflection: of the distinct requests (a joined request is part of its case, not a
      request of its own), the share triage resolved automatically;
    - per agent: the cases each staff member closed, by kind of resolution;
    - arrivals and resolutions per hour for the last `hours` hours, with their hours;
    - held notifications: the notices kept from delivery now, by type.
    """
    now = now or timezone.now()
    since = now - timedelta(days=days)
    cases = RecoveryCase.objects.filter(merged_into__isnull=True)
    backlog = {
        f"{row['status']}/{CasePriority(row['priority']).label}": row["n"]
        for row in cases.filter(status__in=OPEN_STATUSES)
        .values("status", "priority")
        .annotate(n=Count("id"))
        .order_by("status", "priority")
    }
    oldest = cases.filter(status=CaseStatus.WAITING).aggregate(oldest=Min("queued_at"))["oldest"]
    oldest_seconds = int((now - oldest).total_seconds()) if oldest else 0

    arrived = cases.filter(created_at__gte=since, created_at__lte=now)
    first_staff = (
        CaseEvent.objects.filter(
            Q(case=OuterRef("pk")) | Q(case__merged_into=OuterRef("pk")),
            actor__isnull=False,
            visible_to_customer=True,
        )
        .order_by("created_at")
        .values("created_at")[:1]
    )
    first_responses = [
        (answered - created).total_seconds()
        for created, answered in arrived.annotate(answered=Subquery(first_staff)).values_list(
            "created_at", "answered"
        )
        if answered is not None
    ]
    closed = cases.filter(status__in=CLOSED, closed_at__gte=since, closed_at__lte=now)
    by_agents = [
        (priority, opened, closed_at)
        for priority, opened, closed_at in closed.exclude(resolution__in=AUTOMATED).values_list(
            "priority", "created_at", "closed_at"
        )
        if closed_at is not None
    ]
    sla: dict[str, dict[str, Any]] = {}
    for priority in CasePriority:
        key = priority.name.lower()
        limit = sla_for(priority)
        durations = [c - o for p, o, c in by_agents if p == priority]
        within = sum(1 for d in durations if d <= limit)
        sla[key] = {
            "hours": settings.SUPPORT_SLA_HOURS[key],
            "closed": len(durations),
            "within": within,
            "attainment": _ratio(within, len(durations)),
        }
    reopened = closed.filter(events__type=CaseEvent.Type.REOPENED).values("pk").distinct().count()
    requests = arrived.count()
    deflected = arrived.filter(resolution__in=AUTOMATED).count()
    per_agent: dict[str, dict[str, int]] = {}
    for row in (
        CaseEvent.objects.filter(
            created_at__gte=since,
            created_at__lte=now,
            actor__isnull=False,
            type__in=list(RESOLVING_EVENTS),
        )
        .values("actor__email", "type")
        .annotate(n=Count("id"))
        .order_by("actor__email")
    ):
        counts = per_agent.setdefault(row["actor__email"], {"total": 0})
        kind = str(RESOLVING_EVENTS[CaseEvent.Type(row["type"])])
        counts[kind] = counts.get(kind, 0) + row["n"]
        counts["total"] += row["n"]
    resolution_seconds = [(c - o).total_seconds() for _p, o, c in by_agents]
    rate = agent_resolution_rate(now=now)
    waiting = cases.filter(status=CaseStatus.WAITING).count()
    clear = wait_range(position=waiting, now=now) if waiting else None
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    first_response = _median(first_responses)
    resolution = _median(resolution_seconds)
    held = notification_held_counts()
    return {
        "backlog": backlog,
        "waiting": waiting,
        "oldest_waiting_seconds": oldest_seconds,
        "oldest_waiting_words": duration_in_words(oldest_seconds),
        "window_days": days,
        "first_response_median_seconds": first_response,
        "first_response_median_words": duration_in_words(first_response),
        "resolution_median_seconds": resolution,
        "resolution_median_words": duration_in_words(resolution),
        "sla": sla,
        "closed": closed.count(),
        "reopened": reopened,
        "reopen_rate": _ratio(reopened, closed.count()),
        "requests": requests,
        "deflected": deflected,
        "deflection_rate": _ratio(deflected, requests),
        "per_agent": per_agent,
        "agent_resolutions_per_hour": round(rate, 2),
        "projected_clear_words": (
            [duration_in_words(bound.total_seconds()) for bound in clear] if clear else None
        ),
        "pending_approvals": CaseApproval.objects.filter(decided_at__isnull=True).count(),
        "held_notifications": held,
        "held_notifications_total": sum(held.values()),
        "hours": [(start + timedelta(hours=i)).isoformat() for i in range(hours)],
        "arrivals_hourly": _hourly(cases, "created_at", start, hours),
        "resolutions_hourly": _hourly(cases.filter(status__in=CLOSED), "closed_at", start, hours),
        "hours_start": start.isoformat(),
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
        .exclude(resolution__in=RecoveryCase.AUTOMATED_RESOLUTIONS)
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
