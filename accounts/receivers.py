"""Security events for changes made inside allauth's own flows, and short staff sessions."""

from __future__ import annotations

from allauth.account.signals import password_changed, password_reset, user_signed_up
from django.conf import settings
from django.contrib.auth.signals import user_logged_in
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


@receiver(user_logged_in)
def shorten_staff_session(sender, request, user, **kwargs) -> None:
    """A staff session lasts hours, not the weeks a customer's may: it can act on accounts."""
    if user.is_staff and request is not None and hasattr(request, "session"):
        request.session.set_expiry(settings.STAFF_SESSION_HOURS * 3600)
