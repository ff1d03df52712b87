"""Account changes outside 2FA: signup, duplicate-phone notice, sessions, login email."""

from __future__ import annotations

from allauth.account.models import EmailAddress
from allauth.usersessions.models import UserSession
from django.db import transaction

from accounts.contacts import mask_email
from accounts.models import Notification, SecurityEvent, User
from accounts.services.audit import AuditContext, security_event_record
from accounts.services.notifications import notification_queue


def user_signup_record(*, user: User, context: AuditContext) -> SecurityEvent:
    return security_event_record(
        user=user, type=SecurityEvent.Type.SIGNED_UP, context=context, notify=False
    )


def phone_taken_notify(*, phone: str, attempt_key: str, language: str) -> Notification | None:
    """Tell the holder of a phone number that someone tried to sign up with it.

    The text names the existing account's login email, masked, so an honest customer who
    forgot which email they used learns it, and a stranger learns nothing.
    """
    holder = User.objects.filter(phone=phone).first()
    if holder is None:
        return None
    return notification_queue(
        channel=Notification.Channel.SMS,
        recipient=phone,
        template_key="accounts/account_exists",
        idempotency_key=f"account-exists:{holder.pk}:{attempt_key}",
        language=holder.language or language,
        context={"masked_email": mask_email(holder.email)},
        account_id=holder.pk,
    )


def user_sessions_end_others(
    *, user: User, current_session_key: str | None, context: AuditContext
) -> int:
    """Sign the user out of every session but the current one; returns how many ended."""
    with transaction.atomic():
        sessions = [
            s for s in UserSession.objects.filter(user=user) if s.session_key != current_session_key
        ]
        for session in sessions:
            session.end()
        if sessions:
            security_event_record(
                user=user,
                type=SecurityEvent.Type.SESSIONS_ENDED,
                context=context,
                details={"count": len(sessions)},
            )
    return len(sessions)


def user_sessions_end_all(*, user: User) -> int:
    """End every session of the user (the caller records why)."""
    sessions = list(UserSession.objects.filter(user=user))
    for session in sessions:
        session.end()
    return len(sessions)


def user_email_change(*, user: User, new_email: str, context: AuditContext) -> SecurityEvent:
    """Change the login email at once; the notice goes to the new and the old address."""
    with transaction.atomic():
        old_email = user.email
        user.email = new_email.lower()
        user.full_clean(exclude=["password"])
        user.save(update_fields=["email"])
        EmailAddress.objects.filter(user=user).delete()
        EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
        return security_event_record(
            user=user,
            type=SecurityEvent.Type.EMAIL_CHANGED,
            context=context,
            details={"old_email": mask_email(old_email)},
            former_emails=[old_email],
        )


def user_create(
    *,
    email: str,
    password: str | None,
    phone: str | None = None,
    language: str = "en",
    is_staff: bool = False,
    is_superuser: bool = False,
    context: AuditContext | None = None,
) -> User:
    """Create an account with a verified email address (operators and the demo seed)."""
    with transaction.atomic():
        user = User(
            email=email.lower(),
            phone=phone or None,
            language=language,
            is_staff=is_staff,
            is_superuser=is_superuser,
        )
        user.set_password(password) if password else user.set_unusable_password()
        user.full_clean()
        user.save()
        EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
        security_event_record(
            user=user, type=SecurityEvent.Type.SIGNED_UP, context=context, notify=False
        )
    return user
