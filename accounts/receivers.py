"""Security events for changes made inside allauth's own flows."""

from __future__ import annotations

from allauth.account.signals import password_changed, password_reset, user_signed_up
from django.dispatch import receiver

from accounts.models import SecurityEvent
from accounts.services.audit import AuditContext, security_event_record
from accounts.services.users import user_signup_record


@receiver(user_signed_up)
def record_signup(sender, request, user, **kwargs) -> None:
    context = AuditContext.from_request(request)
    user_signup_record(
        user=user,
        context=AuditContext(
            actor_id=user.pk, ip_address=context.ip_address, user_agent=context.user_agent
        ),
    )


@receiver(password_changed)
def record_password_changed(sender, request, user, **kwargs) -> None:
    security_event_record(
        user=user,
        type=SecurityEvent.Type.PASSWORD_CHANGED,
        context=AuditContext.from_request(request),
    )


@receiver(password_reset)
def record_password_reset(sender, request, user, **kwargs) -> None:
    context = AuditContext.from_request(request)
    security_event_record(
        user=user,
        type=SecurityEvent.Type.PASSWORD_RESET,
        context=AuditContext(
            actor_id=user.pk, ip_address=context.ip_address, user_agent=context.user_agent
        ),
    )
