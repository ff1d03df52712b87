"""Writing security events: one row per security-relevant change, inside its transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from accounts.models import SecurityEvent, User


@dataclass(frozen=True)
class AuditContext:
    """Who acted and from where; services take this instead of the request."""

    actor_id: int | None = None
    ip_address: str | None = None
    user_agent: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest | None) -> AuditContext:
        if request is None:
            return cls()
        user = getattr(request, "user", None)
        return cls(
            actor_id=user.pk if user is not None and user.is_authenticated else None,
            ip_address=request.META.get("REMOTE_ADDR") or None,
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        )


def security_event_record(
    *,
    user: User,
    type: SecurityEvent.Type,
    context: AuditContext | None = None,
    details: dict[str, Any] | None = None,
    notify: bool = True,
    former_emails: Sequence[str] = (),
) -> SecurityEvent:
    """Record a security event and, for types that warrant one, queue the customer's notice.

    Callers run this inside the transaction of the change itself, so the event, the change
    and the notice commit together or not at all.
    """
    from accounts.services.notifications import SECURITY_NOTICE_TYPES, security_notice_queue

    context = context or AuditContext()
    with transaction.atomic():
        event = SecurityEvent.objects.create(
            account_id=user.pk,
            type=type,
            actor_id=context.actor_id,
            ip_address=context.ip_address,
            user_agent=context.user_agent,
            details=details or {},
        )
        if notify and type in SECURITY_NOTICE_TYPES:
            security_notice_queue(event_id=event.pk, former_emails=former_emails)
    return event
